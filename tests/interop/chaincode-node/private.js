'use strict';

// Private asset transfer on the official fabric-contract-api, for medledger's interop tests.
//
// Modelled on the shape of Fabric's private-data sample, written for these tests:
// every secret arrives as transient data and lands in private data collections only.
//
//   public state           {ID, ownerOrg}                         who owns the asset
//   assetCollection        {ID, color, size, note, ownerOrg}      shared by the member orgs
//   _implicit_org_<owner>  {ID, appraisedValue}                   the owner org's own figure
//
// A transaction that writes private data must run on a peer of the caller's own
// organisation, so that the plaintext never leaves it before dissemination.

const { Contract } = require('fabric-contract-api');

const SHARED_COLLECTION = 'assetCollection';

function implicitCollection(mspid) {
    return `_implicit_org_${mspid}`;
}

function transientObject(ctx, field) {
    const raw = ctx.stub.getTransient().get(field);
    if (!raw || raw.length === 0) {
        throw new Error(`the transient field ${field} is missing`);
    }
    let parsed;
    try {
        parsed = JSON.parse(Buffer.from(raw).toString('utf8'));
    } catch (err) {
        throw new Error(`the transient field ${field} is not JSON: ${err.message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new Error(`the transient field ${field} must be a JSON object`);
    }
    return parsed;
}

function requireText(value, name) {
    if (typeof value !== 'string' || value.length === 0) {
        throw new Error(`${name} must be a non-empty string`);
    }
    return value;
}

function requirePositive(value, name) {
    if (!Number.isInteger(value) || value <= 0) {
        throw new Error(`${name} must be a positive integer`);
    }
    return value;
}

function callerOnOwnPeer(ctx) {
    const caller = ctx.clientIdentity.getMSPID();
    const peer = ctx.stub.getMspID();
    if (caller !== peer) {
        throw new Error(`a client of ${caller} may not write private data through a peer of ${peer}`);
    }
    return caller;
}

function encode(value) {
    return Buffer.from(JSON.stringify(value));
}

class PrivateAssetContract extends Contract {
    constructor() {
        super('PrivateAssetContract');
    }

    async CreateAsset(ctx) {
        const input = transientObject(ctx, 'asset_properties');
        const id = requireText(input.assetID, 'assetID');
        const color = requireText(input.color, 'color');
        const size = requirePositive(input.size, 'size');
        const appraisedValue = requirePositive(input.appraisedValue, 'appraisedValue');
        const note = typeof input.note === 'string' ? input.note : '';
        const ownerOrg = callerOnOwnPeer(ctx);

        const existing = await ctx.stub.getState(id);
        if (existing && existing.length > 0) {
            throw new Error(`asset ${id} already exists`);
        }
        const record = { ID: id, ownerOrg };
        await ctx.stub.putState(id, encode(record));
        await ctx.stub.putPrivateData(SHARED_COLLECTION, id, encode({ ID: id, color, size, note, ownerOrg }));
        await ctx.stub.putPrivateData(implicitCollection(ownerOrg), id, encode({ ID: id, appraisedValue }));
        ctx.stub.setEvent('AssetCreated', encode(record));
        return JSON.stringify(record);
    }

    async ReadAsset(ctx, id) {
        const data = await ctx.stub.getState(id);
        if (!data || data.length === 0) {
            throw new Error(`asset ${id} does not exist`);
        }
        return Buffer.from(data).toString('utf8');
    }

    async ReadAssetPrivateDetails(ctx, collection, id) {
        const data = await ctx.stub.getPrivateData(collection, id);
        if (!data || data.length === 0) {
            throw new Error(`no private details of asset ${id} in ${collection}`);
        }
        return Buffer.from(data).toString('utf8');
    }

    async GetAssetHash(ctx, collection, id) {
        const digest = await ctx.stub.getPrivateDataHash(collection, id);
        if (!digest || digest.length === 0) {
            throw new Error(`no hash of asset ${id} in ${collection}`);
        }
        return Buffer.from(digest).toString('hex');
    }

    async TransferAsset(ctx) {
        const input = transientObject(ctx, 'asset_owner');
        const id = requireText(input.assetID, 'assetID');
        const buyerOrg = requireText(input.buyerMSP, 'buyerMSP');
        const seller = callerOnOwnPeer(ctx);
        const record = JSON.parse(await this.ReadAsset(ctx, id));
        if (record.ownerOrg !== seller) {
            throw new Error(`asset ${id} belongs to ${record.ownerOrg}, not to ${seller}`);
        }
        const details = JSON.parse(await this.ReadAssetPrivateDetails(ctx, SHARED_COLLECTION, id));
        details.ownerOrg = buyerOrg;
        record.ownerOrg = buyerOrg;
        await ctx.stub.putState(id, encode(record));
        await ctx.stub.putPrivateData(SHARED_COLLECTION, id, encode(details));
        await ctx.stub.deletePrivateData(implicitCollection(seller), id);
        ctx.stub.setEvent('AssetTransferred', encode(record));
        return JSON.stringify(record);
    }

    async PurgeAsset(ctx) {
        const input = transientObject(ctx, 'asset_purge');
        const id = requireText(input.assetID, 'assetID');
        const owner = callerOnOwnPeer(ctx);
        const record = JSON.parse(await this.ReadAsset(ctx, id));
        if (record.ownerOrg !== owner) {
            throw new Error(`asset ${id} belongs to ${record.ownerOrg}, not to ${owner}`);
        }
        await ctx.stub.purgePrivateData(SHARED_COLLECTION, id);
        await ctx.stub.purgePrivateData(implicitCollection(owner), id);
        await ctx.stub.deleteState(id);
        return id;
    }
}

module.exports.PrivateAssetContract = PrivateAssetContract;
module.exports.contracts = [PrivateAssetContract];
