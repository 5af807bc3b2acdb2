// The `--client node` driver of `medledger bench e2e` (network/bench_e2e.py).
//
// Drives one workload through the official Fabric Gateway client
// (@hyperledger/fabric-gateway): many transactions in flight from this one process,
// optionally paced at an offered rate, each timed by phase on the client. Reads one
// JSON request on stdin (gateways with identity and TLS root, workload, count or
// duration, concurrency, rate, endorsing organisations, the key pool made beforehand)
// and writes one JSON record on stdout; a progress line each second goes to stderr.
//
//   create    CreateAsset of a fresh key
//   transfer  TransferAsset on a pool key not in flight (least recently used)
//   private   ehr CreateDiagnosis with the diagnosis as transient data
//   read      ReadAsset (evaluate) on a pool key
'use strict';

const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, signers } = require('@hyperledger/fabric-gateway');
const { peer } = require('@hyperledger/fabric-protos');

const DEADLINE_MS = 120000;
const CODE_NAMES = Object.fromEntries(
    Object.entries(peer.TxValidationCode).map(([name, code]) => [code, name]));
const DIAGNOSIS = Buffer.from(
    'Benchmark diagnosis: stable angina, follow-up in six weeks. '.repeat(4));

async function main() {
    const request = JSON.parse(await readStdin());
    const connections = [];
    for (const target of request.gateways) {
        for (let n = 0; n < request.connections; n++) {
            connections.push(open(target, request));
        }
    }
    const record = newRecord();
    const cpu = process.cpuUsage();
    try {
        await drive(operationOf(request, connections, record), record, request);
    } finally {
        for (const { gateway, client } of connections) {
            gateway.close();
            client.close();
        }
    }
    const used = process.cpuUsage(cpu);
    record.cpuMs = (used.user + used.system) / 1000;
    process.stdout.write(JSON.stringify(record));
}

function open(target, request) {
    const credentials = target.tlsCaPem
        ? grpc.credentials.createSsl(Buffer.from(target.tlsCaPem))
        : grpc.credentials.createInsecure();
    const client = new grpc.Client(target.address, credentials);
    const deadline = () => ({ deadline: Date.now() + DEADLINE_MS });
    const gateway = connect({
        client,
        identity: { mspId: target.mspId, credentials: Buffer.from(target.certPem) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(target.keyPem)),
        evaluateOptions: deadline,
        endorseOptions: deadline,
        submitOptions: deadline,
        commitStatusOptions: deadline,
    });
    const network = gateway.getNetwork(request.channel);
    const chaincode = request.workload === 'private'
        ? request.privateChaincode : request.chaincode;
    return { client, gateway, mspId: target.mspId, contract: network.getContract(chaincode) };
}

function newRecord() {
    return {
        issued: 0, committed: 0, evaluated: 0, elapsedMs: 0, cpuMs: 0,
        invalid: {}, errors: {}, samples: {},
        latenciesMs: {},
    };
}

function operationOf(request, connections, record) {
    const orgs = request.endorsingOrgs.length ? request.endorsingOrgs : undefined;
    const pick = (number) => connections[number % connections.length];
    const free = [...request.pool];
    const submit = (number, name, args, transientData) =>
        submitOne(pick(number).contract, record, name,
            { arguments: args, transientData, endorsingOrganizations: orgs });
    const workloads = {
        create: (number) => submit(number, 'CreateAsset',
            [`bench-${request.runId}-${number}`, 'blue', '5', 'bench', '100']),
        transfer: async (number) => {
            const key = free.shift();
            try {
                await submit(number, 'TransferAsset', [key, `owner-${number}`]);
            } finally {
                free.push(key);
            }
        },
        private: (number) => submit(number, 'CreateDiagnosis',
            [`record-${request.runId}-${number}`, pick(number).mspId,
                `P${String(number % 1000).padStart(4, '0')}`],
            { diagnosis: DIAGNOSIS }),
        read: async (number) => {
            const started = performance.now();
            try {
                await pick(number).contract.evaluate('ReadAsset', {
                    arguments: [request.pool[number % request.pool.length]],
                    endorsingOrganizations: orgs,
                });
            } catch (err) {
                failed(record, `evaluate:${err.name}`, err);
                return;
            }
            latency(record, 'evaluate', performance.now() - started);
            record.evaluated++;
        },
    };
    return workloads[request.workload];
}

async function submitOne(contract, record, name, options) {
    const proposal = contract.newProposal(name, options);
    const started = performance.now();
    let endorsedAt, submittedAt, status;
    try {
        const transaction = await proposal.endorse();
        endorsedAt = performance.now();
        const commit = await transaction.submit();
        submittedAt = performance.now();
        status = await commit.getStatus();
    } catch (err) {
        failed(record, err.name || 'Error', err);
        return;
    }
    latency(record, 'endorse', endorsedAt - started);
    latency(record, 'submit', submittedAt - endorsedAt);
    latency(record, 'commit', performance.now() - submittedAt);
    if (status.successful) {
        record.committed++;
    } else {
        const code = CODE_NAMES[status.code] || String(status.code);
        record.invalid[code] = (record.invalid[code] || 0) + 1;
    }
}

async function drive(operation, record, request) {
    const started = performance.now();
    const running = new Set();
    const waiters = [];
    const progress = request.progress
        ? setInterval(() => report(record, started, running.size, request.workload), 1000)
        : undefined;
    const more = (number) => (request.count != null
        ? number < request.count
        : performance.now() - started < request.durationMs);
    let number = 0;
    while (more(number)) {
        if (request.rate) {
            const delay = started + (number * 1000) / request.rate - performance.now();
            if (delay > 0) await sleep(delay);
        }
        while (running.size >= request.concurrency) {
            await new Promise((resolve) => waiters.push(resolve));
        }
        const task = operation(number).finally(() => {
            running.delete(task);
            const next = waiters.shift();
            if (next) next();
        });
        running.add(task);
        number++;
    }
    record.issued = number;
    await Promise.all(running);
    record.elapsedMs = performance.now() - started;
    if (progress) {
        clearInterval(progress);
        report(record, started, 0, request.workload);
    }
}

function report(record, started, inFlight, label) {
    const elapsed = (performance.now() - started) / 1000;
    const done = record.committed + record.evaluated;
    const failures = Object.values(record.errors).reduce((a, b) => a + b, 0);
    const invalid = Object.values(record.invalid).reduce((a, b) => a + b, 0);
    process.stderr.write(`${label} (node): ${elapsed.toFixed(1)} s  done ${done}  ` +
        `(${(done / elapsed).toFixed(0)}/s)  in flight ${inFlight}  invalid ${invalid}  ` +
        `failed ${failures}\n`);
}

function latency(record, phase, ms) {
    (record.latenciesMs[phase] ||= []).push(ms);
}

function failed(record, kind, err) {
    record.errors[kind] = (record.errors[kind] || 0) + 1;
    record.samples[kind] ||= String(err.message || err).slice(0, 300);
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function readStdin() {
    return new Promise((resolve, reject) => {
        const chunks = [];
        process.stdin.on('data', (chunk) => chunks.push(chunk));
        process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        process.stdin.on('error', reject);
    });
}

main().catch((err) => {
    process.stderr.write(`bench.js: ${err.stack || err}\n`);
    process.exit(1);
});
