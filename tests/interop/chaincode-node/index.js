'use strict';

// An asset registry on the official fabric-contract-api, for medledger's interop tests.
// Each transaction exercises one part of the stub the peer must serve.

const { Contract } = require('fabric-contract-api');

const OWNER_INDEX = 'owner~id';

async function collect(iterator, convert) {
    const found = [];
    try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
            found.push(convert(next.value));
        }
    } finally {
        await iterator.close();
    }
    return found;
}

class AssetContract extends Contract {
    constructor() {
        super('AssetContract');
    }

    async CreateAsset(ctx, id, color, owner) {
        const existing = await ctx.stub.getState(id);
        if (existing && existing.length > 0) {
            throw new Error(`asset ${id} already exists`);
        }
        const asset = { id, color, owner };
        await ctx.stub.putState(id, Buffer.from(JSON.stringify(asset)));
        const indexKey = ctx.stub.createCompositeKey(OWNER_INDEX, [owner, id]);
        await ctx.stub.putState(indexKey, Buffer.from([0]));
        ctx.stub.setEvent('AssetCreated', Buffer.from(id));
        return JSON.stringify(asset);
    }

    async ReadAsset(ctx, id) {
        const data = await ctx.stub.getState(id);
        if (!data || data.length === 0) {
            throw new Error(`asset ${id} does not exist`);
        }
        return data.toString();
    }

    async DeleteAsset(ctx, id) {
        const asset = JSON.parse(await this.ReadAsset(ctx, id));
        await ctx.stub.deleteState(id);
        await ctx.stub.deleteState(ctx.stub.createCompositeKey(OWNER_INDEX, [asset.owner, id]));
        return id;
    }

    async AssetsInRange(ctx, start, end) {
        const iterator = await ctx.stub.getStateByRange(start, end);
        return JSON.stringify(await collect(iterator, (kv) => kv.key));
    }

    async AssetsPage(ctx, start, end, pageSize, bookmark) {
        const { iterator, metadata } = await ctx.stub.getStateByRangeWithPagination(
            start, end, parseInt(pageSize, 10), bookmark);
        const keys = await collect(iterator, (kv) => kv.key);
        return JSON.stringify({ keys, fetched: metadata.fetchedRecordsCount, bookmark: metadata.bookmark });
    }

    async AssetsOfOwner(ctx, owner) {
        const iterator = await ctx.stub.getStateByPartialCompositeKey(OWNER_INDEX, [owner]);
        const ids = await collect(iterator, (kv) => ctx.stub.splitCompositeKey(kv.key).attributes[1]);
        return JSON.stringify(ids);
    }

    async AssetHistory(ctx, id) {
        const iterator = await ctx.stub.getHistoryForKey(id);
        const entries = await collect(iterator, (entry) => ({
            txId: entry.txId,
            isDelete: entry.isDelete,
            value: Buffer.from(entry.value).toString(),
            hasTimestamp: entry.timestamp !== null && entry.timestamp !== undefined,
        }));
        return JSON.stringify(entries);
    }

    async Fill(ctx, prefix, count) {
        for (let i = 0; i < parseInt(count, 10); i++) {
            await ctx.stub.putState(`${prefix}${String(i).padStart(4, '0')}`, Buffer.from(String(i)));
        }
        return count;
    }

    async WhoAmI(ctx) {
        return JSON.stringify({
            id: ctx.clientIdentity.getID(),
            mspid: ctx.clientIdentity.getMSPID(),
            txId: ctx.stub.getTxID(),
            channel: ctx.stub.getChannelID(),
        });
    }

    async Fail(ctx, message) {
        throw new Error(message);
    }
}

module.exports.AssetContract = AssetContract;
module.exports.contracts = [AssetContract];
