// The official Fabric Gateway client (@hyperledger/fabric-gateway) driving the private
// asset chaincode (tests/interop/chaincode-node/private.js) with transient data.
//
// Reads one JSON request on stdin: the channel, the chaincode, the asset, a marker
// string hidden in the private details, per organisation (A, B: collection members;
// C: not a member) the gateway address and a user's certificate and key, the steps to
// run and the facts earlier steps learnt. Runs those steps of the story below in order
// and writes one JSON document on stdout: per step what the client returned or what it
// threw, and the facts for later steps. Every read is evaluated on a peer of the
// reader's own organisation. pytest (tests/interop/test_node_private_data.py) starts
// the network, runs the story in two parts (looking at the peers' disks in between)
// and checks the output.
//
//   create        A creates the asset; its properties only in the transient map
//   memberReads   A and B read the public record and the shared private details;
//                 A reads its own appraisal
//   nonMember     C reads the public record and the hash of the details; C's read of
//                 the details and C's own create are refused
//   privateBlocks each organisation asks its gateway for the creating block with
//                 private data (DeliverWithPrivateData): which collections come back,
//                 and with the marker?
//   transfer      A transfers the asset to B; B sees itself as owner; A's appraisal
//                 is gone
//   purge         B purges the private details; nobody can read them or their hash
//   blocks        every block from 0 to the purge's: does it hold the marker or the
//                 hash of the private details?
'use strict';

const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, signers } = require('@hyperledger/fabric-gateway');

const DEADLINE_MS = 20000;
const SHARED = 'assetCollection';
const utf8 = new TextDecoder();

async function main() {
    const request = JSON.parse(await readStdin());
    const sessions = {};
    for (const [name, org] of Object.entries(request.orgs)) {
        sessions[name] = openSession(org, request);
    }
    const context = { request, sessions, facts: { ...request.facts } };
    const results = {};
    try {
        for (const name of request.steps) {
            const step = STEPS[name];
            try {
                results[name] = await step(context);
            } catch (err) {
                results[name] = { unexpected: describeError(err) };
            }
        }
    } finally {
        for (const session of Object.values(sessions)) {
            session.gateway.close();
            session.client.close();
        }
    }
    const document = { results, facts: context.facts };
    process.stdout.write(JSON.stringify(document, (_key, value) =>
        typeof value === 'bigint' ? Number(value) : value));
}

function openSession(org, request) {
    const client = new grpc.Client(org.address, grpc.credentials.createInsecure());
    const gateway = connect({
        client,
        identity: { mspId: org.mspId, credentials: Buffer.from(org.certPem) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(org.keyPem)),
        evaluateOptions: deadline,
        endorseOptions: deadline,
        submitOptions: deadline,
        commitStatusOptions: deadline,
    });
    const network = gateway.getNetwork(request.channel);
    return { mspId: org.mspId, client, gateway, network, contract: network.getContract(request.chaincode) };
}

function deadline() {
    return { deadline: Date.now() + DEADLINE_MS };
}

function implicitCollection(mspId) {
    return `_implicit_org_${mspId}`;
}

// Evaluate on a peer of the caller's own organisation; the result as text.
async function read(session, name, ...args) {
    const result = await session.contract.evaluate(name, {
        arguments: args,
        endorsingOrganizations: [session.mspId],
    });
    return utf8.decode(result);
}

function transient(field, value) {
    return { [field]: Buffer.from(JSON.stringify(value)) };
}

const STEPS = {
    create: async ({ request, sessions, facts }) => {
        const properties = {
            objectType: 'asset',
            assetID: request.assetID,
            color: 'blue',
            size: 5,
            appraisedValue: 300,
            note: request.marker,
        };
        const committed = await submit(sessions.A.contract, 'CreateAsset', transient('asset_properties', properties));
        facts.createBlock = committed.blockNumber;
        await settle(sessions, committed.blockNumber);
        return committed;
    },

    memberReads: async ({ request, sessions, facts }) => {
        const { A, B } = sessions;
        const id = request.assetID;
        facts.details = await read(A, 'ReadAssetPrivateDetails', SHARED, id);
        return {
            publicA: await read(A, 'ReadAsset', id),
            publicB: await read(B, 'ReadAsset', id),
            detailsA: facts.details,
            detailsB: await read(B, 'ReadAssetPrivateDetails', SHARED, id),
            appraisalA: await read(A, 'ReadAssetPrivateDetails', implicitCollection(A.mspId), id),
            hashA: await read(A, 'GetAssetHash', SHARED, id),
        };
    },

    nonMember: async ({ request, sessions }) => {
        const { A, C } = sessions;
        const id = request.assetID;
        return {
            publicC: await read(C, 'ReadAsset', id),
            hashC: await read(C, 'GetAssetHash', SHARED, id),
            detailsC: await failure(() => read(C, 'ReadAssetPrivateDetails', SHARED, id)),
            appraisalOfAByC: await failure(() =>
                read(C, 'ReadAssetPrivateDetails', implicitCollection(A.mspId), id)),
            createC: await failure(() => submit(C.contract, 'CreateAsset', transient('asset_properties', {
                assetID: `${id}-by-c`, color: 'red', size: 1, appraisedValue: 1, note: request.marker,
            }))),
            transferC: await failure(() => submit(C.contract, 'TransferAsset', transient('asset_owner', {
                assetID: id, buyerMSP: C.mspId,
            }))),
        };
    },

    privateBlocks: async ({ request, sessions, facts }) => {
        const marker = Buffer.from(request.marker);
        const seen = {};
        for (const [name, session] of Object.entries(sessions)) {
            const events = await session.network.getBlockAndPrivateDataEvents({
                startBlock: BigInt(facts.createBlock),
            });
            try {
                for await (const event of events) {
                    seen[name] = privateCollections(event, marker);
                    break;
                }
            } finally {
                events.close();
            }
        }
        return seen;
    },

    transfer: async ({ request, sessions }) => {
        const { A, B } = sessions;
        const id = request.assetID;
        const committed = await submit(A.contract, 'TransferAsset', transient('asset_owner', {
            assetID: id, buyerMSP: B.mspId,
        }));
        await settle(sessions, committed.blockNumber);
        return {
            ...committed,
            publicB: await read(B, 'ReadAsset', id),
            detailsB: await read(B, 'ReadAssetPrivateDetails', SHARED, id),
            detailsA: await read(A, 'ReadAssetPrivateDetails', SHARED, id),
            appraisalA: await failure(() => read(A, 'ReadAssetPrivateDetails', implicitCollection(A.mspId), id)),
            purgeByA: await failure(() => submit(A.contract, 'PurgeAsset', transient('asset_purge', {
                assetID: id,
            }))),
        };
    },

    purge: async ({ request, sessions, facts }) => {
        const { A, B, C } = sessions;
        const id = request.assetID;
        const committed = await submit(B.contract, 'PurgeAsset', transient('asset_purge', { assetID: id }));
        facts.purgeBlock = committed.blockNumber;
        await settle(sessions, committed.blockNumber);
        return {
            ...committed,
            detailsA: await failure(() => read(A, 'ReadAssetPrivateDetails', SHARED, id)),
            detailsB: await failure(() => read(B, 'ReadAssetPrivateDetails', SHARED, id)),
            hashA: await failure(() => read(A, 'GetAssetHash', SHARED, id)),
            hashC: await failure(() => read(C, 'GetAssetHash', SHARED, id)),
            publicB: await failure(() => read(B, 'ReadAsset', id)),
        };
    },

    blocks: async ({ request, sessions, facts }) => {
        // Every block from 0 to the purge's, through the non-member's gateway.
        const marker = Buffer.from(request.marker);
        const detailsHash = crypto.createHash('sha256').update(Buffer.from(facts.details)).digest();
        const found = [];
        const events = await sessions.C.network.getBlockEvents({ startBlock: 0n });
        try {
            for await (const block of events) {
                const bytes = Buffer.from(block.serializeBinary());
                const number = block.getHeader().getNumber();
                found.push({
                    number,
                    marker: bytes.includes(marker),
                    detailsHash: bytes.includes(detailsHash),
                });
                if (number >= BigInt(facts.purgeBlock)) {
                    break;
                }
            }
        } finally {
            events.close();
        }
        return { detailsHash: detailsHash.toString('hex'), blocks: found };
    },
};

// The block number, and per collection of the private data delivered with the block
// whether it holds the marker.
function privateCollections(event, marker) {
    const collections = {};
    event.getPrivateDataMapMap().forEach((txRwset) => {
        for (const ns of txRwset.getNsPvtRwsetList()) {
            for (const collection of ns.getCollectionPvtRwsetList()) {
                const rwset = Buffer.from(collection.getRwset_asU8());
                collections[`${ns.getNamespace()}/${collection.getCollectionName()}`] = rwset.includes(marker);
            }
        }
    });
    return { number: event.getBlock().getHeader().getNumber(), collections };
}

// Wait until each organisation's gateway delivers block `number`: the block events come
// from a peer of that organisation, which has then committed it. (A commit status only
// says that some peer committed the transaction; another organisation's peer may lag.)
async function settle(sessions, number) {
    for (const session of Object.values(sessions)) {
        const events = await session.network.getFilteredBlockEvents({ startBlock: BigInt(number) });
        try {
            for await (const block of events) {
                if (BigInt(block.getNumber()) >= BigInt(number)) {
                    break;
                }
            }
        } finally {
            events.close();
        }
    }
}

async function submit(contract, name, transientData) {
    const proposal = contract.newProposal(name, { transientData });
    const transaction = await proposal.endorse();
    const commit = await transaction.submit();
    const status = await commit.getStatus();
    return {
        result: utf8.decode(transaction.getResult()),
        transactionId: transaction.getTransactionId(),
        code: status.code,
        successful: status.successful,
        blockNumber: status.blockNumber,
    };
}

async function failure(action) {
    try {
        await action();
    } catch (err) {
        return describeError(err);
    }
    return { thrown: false };
}

function describeError(err) {
    return {
        thrown: true,
        name: err.constructor ? err.constructor.name : typeof err,
        message: err.message,
        code: err.code,
        details: (err.details || []).map((detail) => ({
            address: detail.address,
            mspId: detail.mspId,
            message: detail.message,
        })),
    };
}

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) {
        chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
}

main().catch((err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
});
