"""`medledger bench e2e`: end-to-end workloads through the gateways of a running network.

A workload is driven from one client process with many transactions in flight
(asyncio, one gRPC connection per gateway and `--connections`), optionally paced at an
offered `--rate`. Each transaction is timed by phase on the client: `endorse` (sign
the proposal, collect the endorsements), `submit` (sign the envelope, hand it to the
orderer) and `commit` (wait for its commit status); `read` times `evaluate`.

    create    CreateAsset of a fresh key (its existence check reads a missing key)
    transfer  TransferAsset on keys of a pool created beforehand: one read, one write;
              a key is reused only after `--pool` minus `--concurrency` other
              transactions, so conflicts come from the pipeline, not from the choice
    read      ReadAsset (evaluate) on keys of the pool
    private   CreateDiagnosis of the ehr chaincode (`--private-chaincode`): the
              transient diagnosis goes to the caller's implicit collection, the
              record's metadata and hash to public state (a key-level policy too)

The network is the one in `--workdir` (its state.json names the nodes, its spec the
organisations), or one started from `--spec` for the run and stopped after it. The
report (JSON on stdout) has committed tx/s, evaluations/s, latency percentiles per
phase, invalid transactions by validation code, failures by phase, and the CPU seconds
each node (and its chaincode processes) and the client used during the run, from
/proc. `--client node` drives the same workload with the official Node gateway client
(tests/interop/node/bench.js); pools are still created with the Python client.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import MedledgerError
from common.node import run
from network.netstate import NetworkState, NodeKind

__all__ = [
    "WORKLOADS",
    "BenchError",
    "E2eOptions",
    "GatewayTarget",
    "RunRecord",
    "percentiles",
    "report",
    "run_e2e_bench",
]

WORKLOADS = ("create", "transfer", "private", "read")
PHASES = ("endorse", "submit", "commit")
NODE_SCRIPT = Path(__file__).resolve().parents[1] / "tests/interop/node/bench.js"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DIAGNOSIS = b"Benchmark diagnosis: stable angina, follow-up in six weeks. " * 4


class BenchError(MedledgerError):
    """The benchmark cannot run as asked; the message says why."""


@dataclass(frozen=True, kw_only=True)
class E2eOptions:
    """What `medledger bench e2e` runs; `count` wins over `duration_s`."""

    workload: str
    duration_s: float = 10.0
    count: int | None = None
    concurrency: int = 128
    rate: float | None = None
    endorsing_orgs: tuple[str, ...] = ()
    workdir: Path | None = None
    spec: Path | None = None
    client: str = "python"
    channel: str = "medical-records"
    chaincode: str = "asset"
    private_chaincode: str = "ehr"
    user: str = "bench"
    pool: int = 2000
    connections: int = 1
    progress: bool = True


@dataclass(frozen=True)
class GatewayTarget:
    """A gateway and the identity and TLS root to use with it."""

    name: str
    address: str
    mspid: str
    msp_dir: Path
    tls_ca: Path | None


@dataclass
class RunRecord:
    """What one measured run produced, before it is summarised."""

    issued: int = 0
    committed: int = 0
    evaluated: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    invalid: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    last_block: int = -1
    """The highest block number a committed transaction was in."""

    def latency(self, phase: str, seconds: float) -> None:
        self.latencies_s.setdefault(phase, []).append(seconds)

    def failed(self, kind: str, error: BaseException) -> None:
        self.errors[kind] += 1
        self.samples.setdefault(kind, str(error)[:300])

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RunRecord:
        """A record as the Node driver prints it (latencies in milliseconds)."""
        return cls(
            issued=int(document["issued"]),
            committed=int(document["committed"]),
            evaluated=int(document["evaluated"]),
            elapsed_s=float(document["elapsedMs"]) / 1000,
            client_cpu_s=float(document["cpuMs"]) / 1000,
            invalid=Counter({str(k): int(v) for k, v in document["invalid"].items()}),
            errors=Counter({str(k): int(v) for k, v in document["errors"].items()}),
            samples={str(k): str(v) for k, v in document["samples"].items()},
            latencies_s={
                str(phase): [float(ms) / 1000 for ms in values]
                for phase, values in document["latenciesMs"].items()
            },
        )


def run_e2e_bench(options: E2eOptions) -> dict[str, Any]:
    """Run one workload (starting and stopping a network for `--spec`); the report.

    Raises:
        BenchError: the workload or the network cannot be benchmarked as asked.
    """
    _check(options)
    if options.spec is None:
        workdir = options.workdir or Path(".medledger")
        return run(_bench_on(workdir.resolve(), options))
    return run(_bench_with_network(options.spec, options))


def _check(options: E2eOptions) -> None:
    if options.workload not in WORKLOADS:
        raise BenchError(
            f"unknown workload {options.workload!r} ({', '.join(WORKLOADS)})"
        )
    if options.client not in ("python", "node"):
        raise BenchError(f"unknown client {options.client!r} (python, node)")
    if options.concurrency < 1 or options.connections < 1:
        raise BenchError("--concurrency and --connections must be at least 1")
    if options.workload == "transfer" and options.pool <= options.concurrency:
        raise BenchError("--pool must be larger than --concurrency for transfer")


async def _bench_with_network(spec: Path, options: E2eOptions) -> dict[str, Any]:
    from network.up import UpOptions, bring_down, bring_up

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="medledger-bench-") as folder:
        workdir = (options.workdir or Path(folder) / "network").resolve()
        await bring_up(UpOptions(spec_path=spec, workdir=workdir), progress)
        try:
            return await _bench_on(workdir, options)
        finally:
            await bring_down(workdir, progress)


async def _bench_on(workdir: Path, options: E2eOptions) -> dict[str, Any]:
    state = NetworkState.load(workdir)
    targets = gateway_targets(state, options.user)
    chaincode = chaincode_of(options)
    if state.chaincodes and f"{options.channel}/{chaincode}" not in state.chaincodes:
        raise BenchError(
            f"the {options.workload} workload needs the chaincode {chaincode!r} on "
            f"{options.channel}, which the network in {workdir} has not deployed "
            "(network/examples/bench-2org.yaml deploys asset and ehr)"
        )
    from gateway.client import Gateway, identity_from_msp, signer_from_msp

    gateways = [
        Gateway.connect(
            target.address,
            identity_from_msp(target.msp_dir, target.mspid),
            signer_from_msp(target.msp_dir, target.mspid),
            tls=target.tls_ca,
        )
        for target in targets
        for _ in range(options.connections)
    ]
    try:
        contracts = [
            gateway.network(options.channel).contract(chaincode) for gateway in gateways
        ]
        run_id = secrets.token_hex(4)
        pool = await _create_pool(contracts, options, run_id)
        if pool.keys:  # a submit waited for its own org's peer only
            await _synced(gateways, options.channel, pool.last_block)
        before = node_cpu_s(state)
        if options.client == "node":
            record = await _run_node(targets, options, run_id, pool.keys)
        else:
            mspids = [t.mspid for t in targets for _ in range(options.connections)]
            record = await _run_python(contracts, mspids, options, run_id, pool.keys)
        after = node_cpu_s(state)
    finally:
        for gateway in gateways:
            await gateway.close()
    cpu = {name: round(after[name] - before.get(name, 0.0), 2) for name in after}
    cpu["client"] = round(record.client_cpu_s, 2)
    return report(options, record, cpu)


def chaincode_of(options: E2eOptions) -> str:
    """The chaincode a workload runs."""
    if options.workload == "private":
        return options.private_chaincode
    return options.chaincode


def gateway_targets(state: NetworkState, user: str) -> list[GatewayTarget]:
    """Every gateway in state.json, with `user` of its organisation (or its first).

    Raises:
        BenchError: the network has no gateway, or its spec cannot be read.
    """
    from network.spec import load_spec

    if not state.spec:
        raise BenchError(f"no network in {state.workdir} (run `medledger network up`)")
    spec = load_spec(Path(state.spec))
    mspids = {org.domain: org.mspid for org in spec.organizations}
    users = {org.domain: [u.name for u in org.users] for org in spec.organizations}
    crypto = state.workdir / "crypto" / "organizations"
    targets = []
    for name, node in sorted(state.nodes.items()):
        if node.kind != NodeKind.GATEWAY:
            continue
        domain = name.split(".", 1)[1]
        known = users.get(domain, [])
        chosen = user if user in known or not known else known[-1]
        org = crypto / domain
        targets.append(
            GatewayTarget(
                name=name,
                address=node.addresses["grpc"],
                mspid=mspids[domain],
                msp_dir=org / "users" / f"{chosen}@{domain}" / "msp",
                tls_ca=org / "tlsca" / f"tlsca.{domain}-cert.pem"
                if state.tls
                else None,
            )
        )
    if not targets:
        raise BenchError(f"the network in {state.workdir} has no gateway")
    return targets


Operation = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class _Pool:
    """The keys `transfer` and `read` work on, and the last block that created one."""

    keys: list[str]
    last_block: int


async def _create_pool(
    contracts: Sequence[Any], options: E2eOptions, run_id: str
) -> _Pool:
    """The keys `transfer` and `read` work on, created before the measurement."""
    if options.workload not in ("transfer", "read"):
        return _Pool([], -1)
    size = options.pool if options.workload == "transfer" else min(options.pool, 500)
    keys = [f"pool-{run_id}-{number}" for number in range(size)]
    record = RunRecord()

    async def create(number: int) -> None:
        await _submit(
            contracts[number % len(contracts)],
            record,
            options,
            "CreateAsset",
            keys[number],
            "blue",
            "5",
            "pool",
            "100",
        )

    await _drive(
        create,
        record,
        count=size,
        duration_s=None,
        rate=None,
        concurrency=min(options.concurrency, 256),
        label=None,
    )
    if record.committed != size:
        raise BenchError(
            f"only {record.committed} of {size} pool keys committed: "
            f"{dict(record.invalid)} {dict(record.errors)} {record.samples}"
        )
    return _Pool(keys, record.last_block)


async def _synced(gateways: Sequence[Any], channel: str, number: int) -> None:
    """Return once the peer behind every gateway has committed block `number`."""

    async def committed(gateway: Any) -> None:
        async for _ in gateway.network(channel).filtered_block_events(
            start_block=number
        ):
            return

    async with asyncio.timeout(60):
        await asyncio.gather(*(committed(gateway) for gateway in gateways))


async def _run_python(
    contracts: Sequence[Any],
    mspids: Sequence[str],
    options: E2eOptions,
    run_id: str,
    pool: Sequence[str],
) -> RunRecord:
    record = RunRecord()
    free: asyncio.Queue[str] = asyncio.Queue()
    for key in pool:
        free.put_nowait(key)

    async def create(number: int) -> None:
        await _submit(
            contracts[number % len(contracts)],
            record,
            options,
            "CreateAsset",
            f"bench-{run_id}-{number}",
            "blue",
            "5",
            "bench",
            "100",
        )

    async def transfer(number: int) -> None:
        key = free.get_nowait()
        try:
            await _submit(
                contracts[number % len(contracts)],
                record,
                options,
                "TransferAsset",
                key,
                f"owner-{number}",
            )
        finally:
            free.put_nowait(key)

    async def private(number: int) -> None:
        contract = contracts[number % len(contracts)]
        await _submit(
            contract,
            record,
            options,
            "CreateDiagnosis",
            f"record-{run_id}-{number}",
            mspids[number % len(mspids)],
            f"P{number % 1000:04d}",
            transient={"diagnosis": DIAGNOSIS},
        )

    async def read(number: int) -> None:
        contract = contracts[number % len(contracts)]
        started = time.perf_counter()
        try:
            await contract.evaluate(
                "ReadAsset",
                pool[number % len(pool)],
                endorsing_orgs=options.endorsing_orgs,
            )
        except MedledgerError as error:
            record.failed(f"evaluate:{type(error).__name__}", error)
            return
        record.latency("evaluate", time.perf_counter() - started)
        record.evaluated += 1

    operations = {"create": create, "transfer": transfer, "private": private}
    operation = operations.get(options.workload, read)
    cpu = os.times()
    await _drive(
        operation,
        record,
        count=options.count,
        duration_s=options.duration_s,
        rate=options.rate,
        concurrency=options.concurrency,
        label=options.workload if options.progress else None,
    )
    used = os.times()
    record.client_cpu_s = used.user + used.system - cpu.user - cpu.system
    return record


async def _submit(
    contract: Any,
    record: RunRecord,
    options: E2eOptions,
    transaction: str,
    *args: str,
    transient: Mapping[str, bytes] | None = None,
) -> None:
    """Endorse, submit and wait for the commit of one transaction, timing each phase."""
    from gateway.client import CommitStatusError, EndorseError, SubmitError

    proposal = contract.new_proposal(
        transaction, *args, transient=transient, endorsing_orgs=options.endorsing_orgs
    )
    started = time.perf_counter()
    try:
        endorsed = await proposal.endorse()
        endorsed_at = time.perf_counter()
        submitted = await endorsed.submit()
        submitted_at = time.perf_counter()
        status = await submitted.status()
    except (EndorseError, SubmitError, CommitStatusError) as error:
        record.failed(type(error).__name__, error)
        return
    done = time.perf_counter()
    record.latency("endorse", endorsed_at - started)
    record.latency("submit", submitted_at - endorsed_at)
    record.latency("commit", done - submitted_at)
    if status.successful:
        record.committed += 1
        record.last_block = max(record.last_block, status.block_number)
    else:
        record.invalid[status.code_name] += 1


async def _drive(
    operation: Operation,
    record: RunRecord,
    *,
    count: int | None,
    duration_s: float | None,
    rate: float | None,
    concurrency: int,
    label: str | None,
) -> None:
    """Start operations (paced at `rate`, at most `concurrency` at a time) until
    `count` were started or `duration_s` passed; then wait for those in flight."""
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    reporter = asyncio.create_task(_report_progress(record, started, running, label))

    async def one(number: int) -> None:
        try:
            await operation(number)
        finally:
            slots.release()

    number = 0
    while (count is not None and number < count) or (
        count is None and time.perf_counter() - started < (duration_s or 0.0)
    ):
        if rate:
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(number))
        running.add(task)
        task.add_done_callback(running.discard)
        number += 1
    record.issued = number
    if running:
        await asyncio.gather(*running)
    record.elapsed_s = time.perf_counter() - started
    reporter.cancel()
    if label is not None:
        _progress_line(record, started, 0, label, final=True)


async def _report_progress(
    record: RunRecord,
    started: float,
    running: set[asyncio.Task[None]],
    label: str | None,
) -> None:
    if label is None:
        return
    while True:
        await asyncio.sleep(1.0)
        _progress_line(record, started, len(running), label, final=False)


def _progress_line(
    record: RunRecord, started: float, in_flight: int, label: str, *, final: bool
) -> None:
    elapsed = time.perf_counter() - started
    done = record.committed + record.evaluated
    line = (
        f"{label}: {elapsed:6.1f} s  done {done}  ({done / max(elapsed, 1e-9):7.0f}/s)"
        f"  in flight {in_flight}  invalid {sum(record.invalid.values())}"
        f"  failed {sum(record.errors.values())}"
    )
    end = "\n" if final or not sys.stderr.isatty() else ""
    print(f"\r{line}", end=end, file=sys.stderr, flush=True)


async def _run_node(
    targets: Sequence[GatewayTarget],
    options: E2eOptions,
    run_id: str,
    pool: Sequence[str],
) -> RunRecord:
    if not (NODE_SCRIPT.parent / "node_modules" / "@hyperledger").is_dir():
        raise BenchError(
            f"the Node client is not installed in {NODE_SCRIPT.parent} "
            "(run `npm ci` there)"
        )
    request = {
        "gateways": [_node_gateway(target) for target in targets],
        "connections": options.connections,
        "channel": options.channel,
        "chaincode": options.chaincode,
        "privateChaincode": options.private_chaincode,
        "workload": options.workload,
        "count": options.count,
        "durationMs": options.duration_s * 1000,
        "rate": options.rate,
        "concurrency": options.concurrency,
        "endorsingOrgs": list(options.endorsing_orgs),
        "runId": run_id,
        "pool": list(pool),
        "progress": options.progress,
    }
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_SCRIPT),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=NODE_SCRIPT.parent,
    )
    output, _ = await process.communicate(json.dumps(request).encode())
    if process.returncode != 0:
        raise BenchError(f"the Node client failed (exit {process.returncode})")
    return RunRecord.from_json(json.loads(output))


def _node_gateway(target: GatewayTarget) -> dict[str, Any]:
    return {
        "address": target.address,
        "mspId": target.mspid,
        "certPem": _only_file(target.msp_dir / "signcerts").read_text(),
        "keyPem": _only_file(target.msp_dir / "keystore").read_text(),
        "tlsCaPem": target.tls_ca.read_text() if target.tls_ca else None,
    }


def _only_file(folder: Path) -> Path:
    files = sorted(path for path in folder.iterdir() if path.is_file())
    if not files:
        raise BenchError(f"{folder} is empty")
    return files[0]


def node_cpu_s(state: NetworkState) -> dict[str, float]:
    """CPU seconds (user + system) each node and its child processes used so far.

    A node's child processes are reported as `NAME (chaincode)` for a peer (the
    chaincode it launched) and `NAME (children)` for other nodes (an orderer's
    signature worker).
    """
    found: dict[str, float] = {}
    for name, node in state.nodes.items():
        own = process_cpu_s(node.pid)
        if own is None:
            continue
        found[name] = own
        children = [process_cpu_s(child) for child in descendants(node.pid)]
        if children:
            kind = "chaincode" if node.kind is NodeKind.PEER else "children"
            found[f"{name} ({kind})"] = sum(c for c in children if c is not None)
    return found


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process from /proc/PID/stat, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc/PID/task/*/children."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            listed = children.read_text().split()
        except OSError:
            continue
        for child in listed:
            found += [int(child), *descendants(int(child))]
    return found


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank) and max, in milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(fraction: float) -> float:
        index = min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))
        return round(ordered[index] * 1000, 1)

    return {
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 1),
    }


def report(
    options: E2eOptions, record: RunRecord, cpu_s: Mapping[str, float]
) -> dict[str, Any]:
    """The final JSON document of a run."""
    elapsed = max(record.elapsed_s, 1e-9)
    done = max(record.committed + record.evaluated, 1)
    phases = ("evaluate",) if options.workload == "read" else PHASES
    return {
        "workload": options.workload,
        "client": options.client,
        "duration_s": round(record.elapsed_s, 2),
        "concurrency": options.concurrency,
        "offered_rate": options.rate,
        "issued": record.issued,
        "offered_tx_per_s": round(record.issued / elapsed, 1),
        "committed": record.committed,
        "committed_tx_per_s": round(record.committed / elapsed, 1),
        "evaluated": record.evaluated,
        "evaluate_per_s": round(record.evaluated / elapsed, 1),
        "latency_ms": {
            phase: percentiles(record.latencies_s.get(phase, [])) for phase in phases
        },
        "invalid": dict(sorted(record.invalid.items())),
        "failed": dict(sorted(record.errors.items())),
        "failure_samples": dict(sorted(record.samples.items())),
        "cpu_s": dict(sorted(cpu_s.items())),
        "cpu_ms_per_op": {
            name: round(1000 * seconds / done, 2)
            for name, seconds in sorted(cpu_s.items())
        }
        | {"total": round(1000 * sum(cpu_s.values()) / done, 2)},
    }


def run_from_args(args: Any) -> int:
    """The `medledger bench e2e` handler."""
    orgs = tuple(org for org in (args.endorsing_orgs or "").split(",") if org)
    options = E2eOptions(
        workload=args.workload,
        duration_s=args.duration,
        count=args.count,
        concurrency=args.concurrency,
        rate=args.rate,
        endorsing_orgs=orgs,
        workdir=args.workdir,
        spec=args.spec,
        client=args.client,
        channel=args.channel,
        chaincode=args.chaincode,
        private_chaincode=args.private_chaincode,
        user=args.user,
        pool=args.pool,
        connections=args.connections,
    )
    print(json.dumps(run_e2e_bench(options), indent=2))
    return 0


def add_e2e_command(bench_commands: Any) -> None:
    """Register `medledger bench e2e` on the `bench` subcommands."""
    e2e = bench_commands.add_parser(
        "e2e",
        help="committed tx/s and latency of create|transfer|read through the gateways",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    e2e.add_argument("--workload", choices=WORKLOADS, required=True)
    e2e.add_argument(
        "--duration", type=float, default=10.0, help="seconds (default 10)"
    )
    e2e.add_argument("--count", type=int, default=None, help="transactions instead")
    e2e.add_argument("--concurrency", type=int, default=128, help="in flight at once")
    e2e.add_argument(
        "--rate", type=float, default=None, help="offered tx/s (open loop)"
    )
    e2e.add_argument("--endorsing-orgs", default="", help="MSP ids, comma-separated")
    e2e.add_argument("--workdir", type=Path, default=None, help="the network's folder")
    e2e.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="start this consortium file's network for the run, then stop it",
    )
    e2e.add_argument("--client", choices=("python", "node"), default="python")
    e2e.add_argument("--channel", default="medical-records")
    e2e.add_argument("--chaincode", default="asset")
    e2e.add_argument("--private-chaincode", default="ehr", help="for private")
    e2e.add_argument(
        "--user", default="bench", help="user of each gateway's organisation"
    )
    e2e.add_argument("--pool", type=int, default=2000, help="keys for transfer/read")
    e2e.add_argument("--connections", type=int, default=1, help="per gateway")
    e2e.set_defaults(handler=run_from_args)
