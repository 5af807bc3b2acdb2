// Golden vectors from the official Fabric Gateway client (@hyperledger/fabric-gateway).
//
// Reads one JSON request on stdin, writes one JSON document on stdout. Nothing here
// dials a server: the client runs in offline-signing mode and the official signer
// (signers.newPrivateKeySigner) signs the digests it hands out.
//
//   {"command": "client-vectors", ...}  a signed proposal and a signed block-events
//                                       envelope built by the client, plus the client's
//                                       view of a proposal that medledger signed
//   {"command": "sign-transaction", ...} parse a PreparedTransaction that medledger
//                                       assembled and sign its envelope
'use strict';

const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, signers } = require('@hyperledger/fabric-gateway');
const { peer, common, msp } = require('@hyperledger/fabric-protos');

async function main() {
    const request = JSON.parse(await readStdin());
    const client = new grpc.Client('127.0.0.1:1', grpc.credentials.createInsecure());
    const identity = { mspId: request.mspId, credentials: Buffer.from(request.certPem) };
    const gateway = connect({ client, identity });
    const signer = signers.newPrivateKeySigner(crypto.createPrivateKey(request.keyPem));
    try {
        const handler = COMMANDS[request.command];
        if (handler === undefined) {
            throw new Error(`unknown command ${request.command}`);
        }
        process.stdout.write(JSON.stringify(await handler({ request, gateway, signer })));
    } finally {
        gateway.close();
        client.close();
    }
}

const COMMANDS = {
    'client-vectors': clientVectors,
    'sign-transaction': signTransaction,
};

async function clientVectors({ request, gateway, signer }) {
    const network = gateway.getNetwork(request.channel);
    const contract = network.getContract(request.chaincode);
    const unsigned = contract.newProposal(request.transactionName, {
        arguments: request.arguments,
        transientData: mapValues(request.transient, (value) => Buffer.from(value, 'utf8')),
    });
    const proposal = gateway.newSignedProposal(unsigned.getBytes(), await signer(unsigned.getDigest()));

    const unsignedEvents = network.newBlockEventsRequest({ startBlock: BigInt(request.startBlock) });
    const events = gateway.newSignedBlockEventsRequest(
        unsignedEvents.getBytes(),
        await signer(unsignedEvents.getDigest()),
    );

    return {
        proposedTransaction: hex(proposal.getBytes()),
        transactionId: proposal.getTransactionId(),
        blockEventsEnvelope: hex(events.getBytes()),
        medledgerProposal: request.medledgerSignedProposal
            ? inspectSignedProposal(Buffer.from(request.medledgerSignedProposal, 'hex'))
            : null,
    };
}

async function signTransaction({ request, gateway, signer }) {
    const unsigned = gateway.newTransaction(Buffer.from(request.preparedTransaction, 'hex'));
    const transaction = gateway.newSignedTransaction(unsigned.getBytes(), await signer(unsigned.getDigest()));
    return {
        preparedTransaction: hex(transaction.getBytes()),
        transactionId: transaction.getTransactionId(),
        result: Buffer.from(transaction.getResult()).toString('utf8'),
    };
}

// Decode a SignedProposal that medledger produced with the official protobuf classes,
// check the tx id rule and the signature with Node's own crypto.
function inspectSignedProposal(bytes) {
    const signed = peer.SignedProposal.deserializeBinary(bytes);
    const proposal = peer.Proposal.deserializeBinary(signed.getProposalBytes_asU8());
    const header = common.Header.deserializeBinary(proposal.getHeader_asU8());
    const channelHeader = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
    const signatureHeader = common.SignatureHeader.deserializeBinary(header.getSignatureHeader_asU8());
    const creator = msp.SerializedIdentity.deserializeBinary(signatureHeader.getCreator_asU8());
    const extension = peer.ChaincodeHeaderExtension.deserializeBinary(channelHeader.getExtension_asU8());
    const payload = peer.ChaincodeProposalPayload.deserializeBinary(proposal.getPayload_asU8());
    const invocation = peer.ChaincodeInvocationSpec.deserializeBinary(payload.getInput_asU8());
    const input = invocation.getChaincodeSpec().getInput();

    const expectedTxId = crypto
        .createHash('sha256')
        .update(Buffer.concat([signatureHeader.getNonce_asU8(), signatureHeader.getCreator_asU8()]))
        .digest('hex');
    const publicKey = crypto.createPublicKey(Buffer.from(creator.getIdBytes_asU8()).toString('utf8'));
    const signatureOk = crypto.verify(
        'sha256',
        signed.getProposalBytes_asU8(),
        publicKey,
        signed.getSignature_asU8(),
    );
    return {
        type: channelHeader.getType(),
        channelId: channelHeader.getChannelId(),
        txId: channelHeader.getTxId(),
        txIdRuleHolds: channelHeader.getTxId() === expectedTxId,
        mspId: creator.getMspid(),
        chaincode: extension.getChaincodeId().getName(),
        args: input.getArgsList_asU8().map((arg) => Buffer.from(arg).toString('utf8')),
        transientKeys: [...payload.getTransientmapMap().keys()].sort(),
        signatureOk,
    };
}

function mapValues(object, fn) {
    return Object.fromEntries(Object.entries(object ?? {}).map(([key, value]) => [key, fn(value)]));
}

function hex(bytes) {
    return Buffer.from(bytes).toString('hex');
}

function readStdin() {
    return new Promise((resolve, reject) => {
        const chunks = [];
        process.stdin.on('data', (chunk) => chunks.push(chunk));
        process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        process.stdin.on('error', reject);
    });
}

main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
});
