// The official Fabric Gateway client (@hyperledger/fabric-gateway) against a live gateway.
//
// Reads one JSON request on stdin, runs every scenario against the gateway at
// `address` (plaintext gRPC) as the identity given, and writes one JSON document on
// stdout: per scenario what the client returned or threw. pytest
// (tests/interop/test_node_gateway_client.py) starts the network and checks the output.
//
//   evaluate        submitTransaction(CreateAsset) then evaluateTransaction(ReadAsset)
//   submitAsync     submitAsync(TransferAsset) + getStatus()
//   errors          evaluate of a missing asset; submit of an existing one
//   conflict        two transfers endorsed before either is submitted; a commit
//                   that breaks the endorsement policy (CommitError)
//   transient       private input through the transient map (evaluate and submit)
//   events          chaincode events from block 0, then resumed from a checkpoint
//   blocks          block and filtered block events from block 0 to the last event's
'use strict';

const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, checkpointers, signers } = require('@hyperledger/fabric-gateway');
const { common } = require('@hyperledger/fabric-protos');

const DEADLINE_MS = 20000;
const utf8 = new TextDecoder();

async function main() {
    const request = JSON.parse(await readStdin());
    const client = new grpc.Client(request.address, grpc.credentials.createInsecure());
    const gateway = connect({
        client,
        identity: { mspId: request.mspId, credentials: Buffer.from(request.certPem) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(request.keyPem)),
        evaluateOptions: deadline,
        endorseOptions: deadline,
        submitOptions: deadline,
        commitStatusOptions: deadline,
    });
    const context = {
        request,
        network: gateway.getNetwork(request.channel),
        contract: gateway.getNetwork(request.channel).getContract(request.chaincode),
        last: {},
    };
    const results = {};
    try {
        for (const [name, scenario] of Object.entries(SCENARIOS)) {
            try {
                results[name] = await scenario(context);
            } catch (err) {
                results[name] = { unexpected: describeError(err) };
            }
        }
    } finally {
        gateway.close();
        client.close();
    }
    process.stdout.write(JSON.stringify(results, (_key, value) =>
        typeof value === 'bigint' ? Number(value) : value));
}

function deadline() {
    return { deadline: Date.now() + DEADLINE_MS };
}

const SCENARIOS = {
    evaluate: async ({ request, contract }) => {
        const id = `${request.prefix}-eval`;
        const created = await contract.submitTransaction('CreateAsset', id, 'blue', '5', 'Tomoko', '300');
        const read = await contract.evaluateTransaction('ReadAsset', id);
        return { created: utf8.decode(created), read: utf8.decode(read) };
    },

    submitAsync: async ({ request, contract }) => {
        const id = `${request.prefix}-async`;
        await contract.submitTransaction('CreateAsset', id, 'red', '1', 'Brad', '10');
        const commit = await contract.submitAsync('TransferAsset', { arguments: [id, 'Max'] });
        const status = await commit.getStatus();
        return {
            result: utf8.decode(commit.getResult()),
            transactionId: commit.getTransactionId(),
            code: status.code,
            blockNumber: status.blockNumber,
            successful: status.successful,
            statusTransactionId: status.transactionId,
        };
    },

    errors: async ({ request, contract }) => {
        const id = `${request.prefix}-err`;
        await contract.submitTransaction('CreateAsset', id, 'green', '2', 'Jin Soo', '20');
        const evaluate = await failure(() => contract.evaluateTransaction('ReadAsset', `${id}-missing`));
        const endorse = await failure(() =>
            contract.submitTransaction('CreateAsset', id, 'green', '2', 'Jin Soo', '20'));
        return { evaluate, endorse };
    },

    conflict: async ({ request, contract }) => {
        const id = `${request.prefix}-mvcc`;
        await contract.submitTransaction('CreateAsset', id, 'yellow', '3', 'Ann', '30');
        const first = await contract.newProposal('TransferAsset', { arguments: [id, 'Bob'] }).endorse();
        const second = await contract.newProposal('TransferAsset', { arguments: [id, 'Cat'] }).endorse();
        const statuses = [];
        for (const transaction of [first, second]) {
            const commit = await transaction.submit();
            const status = await commit.getStatus();
            statuses.push({ code: status.code, successful: status.successful, blockNumber: status.blockNumber });
        }
        // A transaction only Hospital A endorses breaks the majority policy: the
        // client's submit() throws its own CommitError.
        const commitError = await failure(() =>
            contract.submit('CreateAsset', {
                arguments: [`${id}-lonely`, 'black', '1', 'Nobody', '1'],
                endorsingOrganizations: [request.mspId],
            }));
        return { statuses, commitError };
    },

    transient: async ({ request, network }) => {
        const secrets = network.getContract(request.secretChaincode);
        const transientData = { secret: Buffer.from(request.secret) };
        const size = await secrets.evaluate('TransientSize', { transientData });
        const proposal = secrets.newProposal('StoreDigest', {
            arguments: [`${request.prefix}-secret`],
            transientData,
        });
        const transaction = await proposal.endorse();
        const commit = await transaction.submit();
        const status = await commit.getStatus();
        return {
            size: utf8.decode(size),
            digest: utf8.decode(transaction.getResult()),
            transactionId: commit.getTransactionId(),
            code: status.code,
            blockNumber: status.blockNumber,
        };
    },

    events: async ({ request, network, contract, last }) => {
        const id = `${request.prefix}-events`;
        await contract.submitTransaction('CreateAsset', id, 'white', '4', 'Owner0', '40');
        const transfers = [];
        for (const owner of ['Owner1', 'Owner2', 'Owner3']) {
            const commit = await contract.submitAsync('TransferAsset', { arguments: [id, owner] });
            await commit.getStatus();
            transfers.push(commit.getTransactionId());
        }
        last.transactionId = transfers[transfers.length - 1];
        const replayed = await collectEvents(network, request.chaincode, { startBlock: 0n }, transfers, 3);

        const checkpointer = checkpointers.inMemory();
        await checkpointer.checkpointChaincodeEvent(replayed.events[0]);
        const resumed = await collectEvents(network, request.chaincode, { checkpoint: checkpointer }, transfers, 2);
        const fileCheckpointer = await checkpointers.file(request.checkpointFile);
        await fileCheckpointer.checkpointChaincodeEvent(replayed.events[1]);
        const fromFile = await collectEvents(
            network, request.chaincode, { checkpoint: await checkpointers.file(request.checkpointFile) },
            transfers, 1);
        return {
            transfers,
            replayed: replayed.summary,
            resumed: resumed.summary,
            fromFile: fromFile.summary,
            checkpointBlock: checkpointer.getBlockNumber(),
            checkpointTransaction: checkpointer.getTransactionId(),
        };
    },

    blocks: async ({ network, last }) => {
        // Read from block 0 until the block holding the last transaction committed above.
        const numbers = [];
        let lastBlock;
        const blocks = await network.getBlockEvents({ startBlock: 0n });
        try {
            for await (const block of blocks) {
                numbers.push(block.getHeader().getNumber());
                if (txIdsOf(block).includes(last.transactionId)) {
                    lastBlock = block.getHeader().getNumber();
                    break;
                }
            }
        } finally {
            blocks.close();
        }
        const filteredNumbers = [];
        const codes = [];
        const filtered = await network.getFilteredBlockEvents({ startBlock: 0n });
        try {
            for await (const block of filtered) {
                filteredNumbers.push(block.getNumber());
                for (const tx of block.getFilteredTransactionsList()) {
                    codes.push({ txId: tx.getTxid(), code: tx.getTxValidationCode() });
                }
                if (block.getNumber() >= lastBlock) {
                    break;
                }
            }
        } finally {
            filtered.close();
        }
        return { numbers, lastBlock, filteredNumbers, codes, lastTransactionId: last.transactionId };
    },
};

function txIdsOf(block) {
    return block.getData().getDataList_asU8().map((data) => {
        const envelope = common.Envelope.deserializeBinary(data);
        const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
        const header = common.ChannelHeader.deserializeBinary(
            payload.getHeader().getChannelHeader_asU8());
        return header.getTxId();
    });
}

async function collectEvents(network, chaincode, options, wanted, count) {
    const events = [];
    const stream = await network.getChaincodeEvents(chaincode, options);
    try {
        for await (const event of stream) {
            if (wanted.includes(event.transactionId)) {
                events.push(event);
            }
            if (events.length >= count) {
                break;
            }
        }
    } finally {
        stream.close();
    }
    return {
        events,
        summary: events.map((event) => ({
            blockNumber: event.blockNumber,
            transactionId: event.transactionId,
            chaincodeName: event.chaincodeName,
            eventName: event.eventName,
            payload: JSON.parse(utf8.decode(event.payload)),
        })),
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
        transactionId: err.transactionId,
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
