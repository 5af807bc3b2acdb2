"""`medledger bench floor`: the CPU floor of a transaction that Fabric's protocols fix.

Issue 9 asks this 2-core machine (load generator included) for 1,500 created, 1,200
transferred and 800 private transactions committed per second and 3,000 evaluations
per second. A Fabric-compatible network must exchange a fixed number of gRPC messages
and do a fixed number of signatures per transaction, whatever the implementation;
this command measures what one of each costs here and multiplies.

1. Unit costs, measured on this machine: one unary call and one bidi-stream message
   pair (message and reply) in two real processes, TLS on, with the runtime settings
   of our nodes (uvloop through `common.node.run`, gRPC's `GRPC_EXPERIMENTS` default
   of `common.grpc_runtime`), at a few payload sizes — `network.bench_grpc.run_pair`
   does this, CPU of both processes from /proc; ECDSA P-256 sign and verify of a 3 KB
   message and SHA-256 of 4 KB with the `cryptography` package and a cached key.
2. `WORKLOADS`: per workload, the steps of one transaction — how many of each unit
   the protocol requires (`count`), how many medledger does today (`ours`), the
   process that pays each side, and the protocol fact that fixes the count. A unit
   cost at a step's payload size is interpolated between the measured sizes.
3. The report (JSON on stdout): unit costs, per workload the floor in µs of CPU per
   transaction (itemised, per process, with and without the load generator's share),
   the ceiling `cores × 1e6 / floor` next to the target, the same for our message
   counts, for Fabric 3.1's write batching, for gRPC messages alone, and (`best_runs`)
   with each side's cheapest run instead of the median; load average before and
   after, gRPC version. One human line per workload goes to stderr.

The floor leaves out everything but messages and cryptography (no protobuf work, no
simulation, no validation logic, no state database, no per-block costs, which are
shared by up to 500 transactions): a real implementation can only cost more.

The counts are checked against our code, not a live run (the nodes expose no
per-method gRPC message counters): the tests run the `bench e2e` contracts through
`chaincode.testing` and compare their stub calls with `WORKLOADS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc

from common.errors import MedledgerError
from common.grpc_runtime import apply_runtime_defaults
from network.bench_grpc import (
    BenchConfig,
    GrpcBenchOptions,
    run_pair,
    write_certificate,
)

__all__ = [
    "EXCLUDED",
    "TARGETS",
    "WORKLOADS",
    "WRITE_MESSAGES",
    "FloorBenchError",
    "FloorOptions",
    "GrpcCost",
    "Kind",
    "Step",
    "UnitCosts",
    "ceiling",
    "endorsements",
    "floor_report",
    "grpc_costs",
    "human_line",
    "measure_crypto",
    "measure_grpc",
    "run_floor_bench",
    "stub_calls",
    "unit_cost",
    "workload_floor",
    "write_batched",
]

_SIGNED_BYTES = 3 * 1024
_HASHED_BYTES = 4 * 1024


class FloorBenchError(MedledgerError):
    """The floor benchmark cannot run as asked; the message says why."""


class Kind(StrEnum):
    """A unit of cost."""

    UNARY = "unary"  # one unary call: request and response
    STREAM = "stream"  # one message on a bidi stream and its reply
    SIGN = "sign"  # ECDSA P-256 signature of a ~3 KB message (hash included)
    VERIFY = "verify"  # ECDSA P-256 verification of the same
    SHA256 = "sha256"  # SHA-256 of 4 KB


GRPC_KINDS = (Kind.UNARY, Kind.STREAM)

# The processes of the default network, as the floor attributes CPU to them.
CLIENT = "client"  # the load generator (a Gateway client), priced as Python gRPC
GATEWAY = "gateway"
PEER = "peer"
CHAINCODE = "chaincode"
ORDERER = "orderer"


@dataclass(frozen=True, kw_only=True)
class Step:
    """One kind of work a transaction needs: `count` units at the protocol minimum.

    For gRPC steps `caller` pays the client side and `callee` the server side; a
    crypto step is paid entirely by `caller`. `ours` is how many medledger does.
    `message` names the ChaincodeMessage type of a chaincode stream step.
    """

    name: str
    kind: Kind
    count: int
    ours: int
    caller: str
    callee: str = ""
    request_bytes: int = 0
    reply_bytes: int = 0
    message: str = ""
    fact: str

    @property
    def size(self) -> int:
        """The echo payload size this step is priced at: the mean of both ways."""
        return (self.request_bytes + self.reply_bytes) // 2


@dataclass(frozen=True)
class GrpcCost:
    """CPU µs of one unary call or stream pair, per side."""

    client_us: float
    server_us: float

    @property
    def total_us(self) -> float:
        return self.client_us + self.server_us


@dataclass(frozen=True, kw_only=True)
class UnitCosts:
    """What the units cost on this machine: gRPC by payload size, crypto flat."""

    unary: Mapping[int, GrpcCost]
    stream: Mapping[int, GrpcCost]
    sign_us: float
    verify_us: float
    sha256_us: float


EXCLUDED = (
    "per-block work, shared by up to 500 transactions: the orderer's block signature, "
    "Deliver of each block to both peers (and to the gateways), the peers' block "
    "signature checks",
    "protobuf encoding and decoding, proposal simulation, validation logic, the state "
    "database, private data stores, logging",
    "TLS handshakes and call set-up of long-lived connections and streams",
    "hashes of small inputs (transaction ids, private write hashes)",
)
"""What the floor leaves out: each item can only add CPU."""

TARGETS: Mapping[str, int] = {
    "create": 1500,
    "transfer": 1200,
    "read": 3000,
    "private": 800,
}
"""Issue 9's targets: committed tx/s (evaluations/s for read) on this machine."""

_ENDORSERS = 2  # AND('HospitalAMSP.peer', 'HospitalBMSP.peer')
_COMMITTERS = 2  # one peer per hospital, each validates and commits every block

_STUB_FACT = (
    "chaincode protocol (2.5): every stub call is one ChaincodeMessage from the "
    "chaincode answered by one RESPONSE from the peer, before the next call; the "
    "contract of `bench e2e` makes these calls, once on each of the {n} endorsers"
)
_STUB_BYTES = 500  # GET_STATE/PUT_STATE and their RESPONSE: key, small JSON value
WRITE_MESSAGES = frozenset({"PUT_STATE", "DEL_STATE", "PUT_STATE_METADATA"})
"""Stub calls Fabric 3.1's WRITE_BATCH_STATE can carry."""


def _stub_steps(calls: Sequence[str], endorsements: int) -> tuple[Step, ...]:
    """One step per distinct call; `TYPE (what)` names a ChaincodeMessage type and
    what it is for (private data travels as PUT_STATE with a collection)."""
    counted = {call: calls.count(call) for call in dict.fromkeys(calls)}
    return tuple(
        Step(
            name=f"chaincode {call}/RESPONSE",
            kind=Kind.STREAM,
            count=per_endorsement * endorsements,
            ours=per_endorsement * endorsements,
            caller=CHAINCODE,
            callee=PEER,
            request_bytes=_STUB_BYTES,
            reply_bytes=_STUB_BYTES,
            message=call.split(" ")[0],
            fact=_STUB_FACT.format(n=endorsements),
        )
        for call, per_endorsement in counted.items()
    )


def _execution_steps(
    endorsements: int, *, remote: int, ours_remote: int
) -> tuple[Step, ...]:
    """Running the proposal on `endorsements` peers, `remote` of them over gRPC."""
    return (
        Step(
            name="gateway -> peer ProcessProposal",
            kind=Kind.UNARY,
            count=remote,
            ours=ours_remote,
            caller=GATEWAY,
            callee=PEER,
            request_bytes=3000,
            reply_bytes=3000,
            fact=(
                "Endorser/ProcessProposal is one unary call per endorsing peer; the "
                "Fabric 2.4+ gateway is embedded in the peer and runs the proposal on "
                "its own peer in-process, so only the other organisations' peers are "
                "called over gRPC (medledger's gateway is a separate process and calls "
                "its own peer too)"
            ),
        ),
        Step(
            name="peer -> chaincode TRANSACTION/COMPLETED",
            kind=Kind.STREAM,
            count=endorsements,
            ours=endorsements,
            caller=CHAINCODE,
            callee=PEER,
            request_bytes=3000,
            reply_bytes=500,
            message="TRANSACTION",
            fact=(
                "chaincode protocol: the peer sends TRANSACTION (with the signed "
                "proposal) on the chaincode's stream, the chaincode ends with "
                "COMPLETED; user chaincode runs out of process since Fabric 2.0"
            ),
        ),
        Step(
            name="peer: verify proposal signature",
            kind=Kind.VERIFY,
            count=endorsements,
            ours=endorsements,
            caller=PEER,
            fact="every endorser verifies the client's signature of the proposal",
        ),
        Step(
            name="peer: proposal hash",
            kind=Kind.SHA256,
            count=endorsements,
            ours=endorsements,
            caller=PEER,
            fact="every endorser hashes the proposal into ProposalResponsePayload",
        ),
        Step(
            name="peer: sign proposal response",
            kind=Kind.SIGN,
            count=endorsements,
            ours=endorsements,
            caller=PEER,
            fact="every endorser signs its ProposalResponsePayload (evaluations too)",
        ),
        Step(
            name="client: sign proposal",
            kind=Kind.SIGN,
            count=1,
            ours=1,
            caller=CLIENT,
            fact="the client signs the proposal (SignedProposal.signature)",
        ),
    )


def _submit_steps(calls: Sequence[str]) -> tuple[Step, ...]:
    """A submitted transaction endorsed by both hospitals, ordered and committed."""
    return (
        Step(
            name="client -> gateway Endorse",
            kind=Kind.UNARY,
            count=1,
            ours=1,
            caller=CLIENT,
            callee=GATEWAY,
            request_bytes=3000,
            reply_bytes=4000,
            fact="Gateway client: submit = Endorse, Submit, CommitStatus unary calls",
        ),
        Step(
            name="client -> gateway Submit",
            kind=Kind.UNARY,
            count=1,
            ours=1,
            caller=CLIENT,
            callee=GATEWAY,
            request_bytes=4000,
            reply_bytes=50,
            fact="Gateway client: submit = Endorse, Submit, CommitStatus unary calls",
        ),
        Step(
            name="client -> gateway CommitStatus",
            kind=Kind.UNARY,
            count=1,
            ours=1,
            caller=CLIENT,
            callee=GATEWAY,
            request_bytes=1000,
            reply_bytes=50,
            fact="Gateway client: submit = Endorse, Submit, CommitStatus unary calls",
        ),
        *_execution_steps(_ENDORSERS, remote=_ENDORSERS - 1, ours_remote=_ENDORSERS),
        *_stub_steps(calls, _ENDORSERS),
        Step(
            name="gateway -> orderer Broadcast envelope/response",
            kind=Kind.STREAM,
            count=1,
            ours=1,
            caller=GATEWAY,
            callee=ORDERER,
            request_bytes=4000,
            reply_bytes=50,
            fact=(
                "AtomicBroadcast/Broadcast answers each envelope with one "
                "BroadcastResponse (a stream kept open: no call set-up per tx)"
            ),
        ),
        Step(
            name="client: sign envelope",
            kind=Kind.SIGN,
            count=1,
            ours=1,
            caller=CLIENT,
            fact="the client signs the prepared transaction envelope",
        ),
        Step(
            name="client: sign CommitStatus request",
            kind=Kind.SIGN,
            count=1,
            ours=1,
            caller=CLIENT,
            fact="SignedCommitStatusRequest.signature = Sign(request)",
        ),
        Step(
            name="gateway: verify CommitStatus request",
            kind=Kind.VERIFY,
            count=1,
            ours=1,
            caller=GATEWAY,
            fact="the gateway checks the signature against the Readers ACL",
        ),
        Step(
            name="orderer: verify envelope signature",
            kind=Kind.VERIFY,
            count=1,
            ours=1,
            caller=ORDERER,
            fact="Broadcast checks the envelope's creator against the channel Writers",
        ),
        Step(
            name="orderer: block data hash",
            kind=Kind.SHA256,
            count=1,
            ours=1,
            caller=ORDERER,
            fact="the block's data hash covers every envelope's bytes",
        ),
        Step(
            name="peers: block data hash",
            kind=Kind.SHA256,
            count=_COMMITTERS,
            ours=_COMMITTERS,
            caller=PEER,
            fact="every peer checks a delivered block's data hash",
        ),
        Step(
            name="peers: verify creator signature",
            kind=Kind.VERIFY,
            count=_COMMITTERS,
            ours=_COMMITTERS,
            caller=PEER,
            fact="every committing peer verifies the envelope's creator signature",
        ),
        Step(
            name="peers: verify endorsements",
            kind=Kind.VERIFY,
            count=_COMMITTERS * _ENDORSERS,
            ours=_COMMITTERS * _ENDORSERS,
            caller=PEER,
            fact=(
                "every committing peer verifies each endorsement against the "
                "endorsement policy (AND of both hospitals: 2 signatures)"
            ),
        ),
    )


def _read_steps() -> tuple[Step, ...]:
    """One evaluation: one peer runs the proposal, nothing is ordered."""
    return (
        Step(
            name="client -> gateway Evaluate",
            kind=Kind.UNARY,
            count=1,
            ours=1,
            caller=CLIENT,
            callee=GATEWAY,
            request_bytes=3000,
            reply_bytes=500,
            fact="Gateway client: evaluate = one Evaluate unary call",
        ),
        *_execution_steps(1, remote=0, ours_remote=1),
        *_stub_steps(("GET_STATE",), 1),
    )


WORKLOADS: Mapping[str, tuple[Step, ...]] = {
    # CreateAsset: existence check, the asset, its owner-index entry.
    "create": _submit_steps(("GET_STATE", "PUT_STATE", "PUT_STATE")),
    # TransferAsset: read the asset, write it, move its owner-index entry.
    "transfer": _submit_steps(("GET_STATE", "PUT_STATE", "DEL_STATE", "PUT_STATE")),
    # ReadAsset: one read on one peer.
    "read": _read_steps(),
    # CreateDiagnosis: existence check, the private diagnosis, the public record,
    # its key-level endorsement policy.
    "private": _submit_steps(
        ("GET_STATE", "PUT_STATE (private)", "PUT_STATE", "PUT_STATE_METADATA")
    ),
}
"""Per workload of `bench e2e`, the steps of one transaction (see `Step`)."""


def stub_calls(steps: Sequence[Step]) -> dict[str, int]:
    """The stub calls one endorsement of `steps` makes, by ChaincodeMessage type."""
    runs = endorsements(steps)
    calls: dict[str, int] = {}
    for step in steps:
        if step.message and step.message != "TRANSACTION":
            calls[step.message] = calls.get(step.message, 0) + step.count // runs
    return calls


def endorsements(steps: Sequence[Step]) -> int:
    """How many times `steps` run the chaincode (their TRANSACTION count).

    Raises:
        FloorBenchError: the steps never run the chaincode.
    """
    for step in steps:
        if step.message == "TRANSACTION":
            return step.count
    raise FloorBenchError("the steps have no TRANSACTION step")


# ------------------------------------------------------------------ arithmetic


def unit_cost(costs: Mapping[int, GrpcCost], size: int) -> GrpcCost:
    """The cost at `size` bytes, linear between the measured sizes, flat beyond them.

    Raises:
        FloorBenchError: nothing was measured.
    """
    if not costs:
        raise FloorBenchError("no gRPC unit cost was measured")
    sizes = sorted(costs)
    if size <= sizes[0]:
        return costs[sizes[0]]
    if size >= sizes[-1]:
        return costs[sizes[-1]]
    upper = next(s for s in sizes if s >= size)
    lower = max(s for s in sizes if s <= size)
    if upper == lower:
        return costs[upper]
    weight = (size - lower) / (upper - lower)
    low, high = costs[lower], costs[upper]
    return GrpcCost(
        client_us=low.client_us + weight * (high.client_us - low.client_us),
        server_us=low.server_us + weight * (high.server_us - low.server_us),
    )


def step_cost(step: Step, costs: UnitCosts) -> tuple[float, float]:
    """µs of one unit of `step`: (caller's share, callee's share)."""
    if step.kind is Kind.UNARY or step.kind is Kind.STREAM:
        table = costs.unary if step.kind is Kind.UNARY else costs.stream
        grpc_cost = unit_cost(table, step.size)
        return grpc_cost.client_us, grpc_cost.server_us
    flat = {
        Kind.SIGN: costs.sign_us,
        Kind.VERIFY: costs.verify_us,
        Kind.SHA256: costs.sha256_us,
    }
    return flat[step.kind], 0.0


def write_batched(steps: Sequence[Step]) -> tuple[Step, ...]:
    """The steps with Fabric 3.1's WRITE_BATCH_STATE: all writes of an endorsement
    travel as one message and one RESPONSE (the peer must offer it in READY)."""
    writes = [step for step in steps if step.message in WRITE_MESSAGES]
    if not writes:
        return tuple(steps)
    kept = [step for step in steps if step.message not in WRITE_MESSAGES]
    batch = dataclasses.replace(
        writes[0],
        name="chaincode WRITE_BATCH_STATE/RESPONSE",
        count=endorsements(steps),
        ours=0,
        message="WRITE_BATCH_STATE",
        fact="Fabric 3.1: one WRITE_BATCH_STATE carries every write of an endorsement",
    )
    return (*kept, batch)


def workload_floor(
    steps: Sequence[Step], costs: UnitCosts, *, use_ours: bool = False
) -> dict[str, Any]:
    """The itemised CPU per transaction of `steps` (their `count`, or `ours`)."""
    items = []
    by_process: dict[str, float] = {}
    by_kind: dict[str, float] = {}
    for step in steps:
        times = step.ours if use_ours else step.count
        caller_us, callee_us = step_cost(step, costs)
        by_process[step.caller] = by_process.get(step.caller, 0.0) + times * caller_us
        if step.callee:
            by_process[step.callee] = (
                by_process.get(step.callee, 0.0) + times * callee_us
            )
        us = times * (caller_us + callee_us)
        by_kind[step.kind.value] = by_kind.get(step.kind.value, 0.0) + us
        items.append(
            {
                "step": step.name,
                "kind": step.kind.value,
                "count": step.count,
                "ours": step.ours,
                "size_bytes": step.size if step.kind in GRPC_KINDS else None,
                "unit_us": _round(caller_us + callee_us),
                "us": _round(us),
                "caller": step.caller,
                "callee": step.callee or None,
                "fact": step.fact,
            }
        )
    total = sum(by_process.values())
    return {
        "us_per_tx": _round(total),
        "us_per_tx_without_client": _round(total - by_process.get(CLIENT, 0.0)),
        "by_process_us": {name: _round(us) for name, us in sorted(by_process.items())},
        "by_kind_us": {name: _round(us) for name, us in by_kind.items()},
        "steps": items,
    }


def ceiling(floor_us: float, cores: int) -> float:
    """Transactions per second `cores` fully busy can afford at `floor_us` each."""
    return cores * 1e6 / floor_us if floor_us > 0 else float("inf")


def floor_report(
    costs: UnitCosts,
    *,
    cores: int,
    targets: Mapping[str, int] = TARGETS,
    workloads: Mapping[str, Sequence[Step]] = WORKLOADS,
) -> dict[str, Any]:
    """Per workload: the floor, its ceiling against the target, and variants."""
    report: dict[str, Any] = {}
    for name, steps in workloads.items():
        target = targets[name]
        floor = workload_floor(steps, costs)
        ours = workload_floor(steps, costs, use_ours=True)
        batched = workload_floor(write_batched(steps), costs)
        budget = cores * 1e6 / target
        report[name] = {
            "target_per_s": target,
            "budget_us_per_tx": _round(budget),
            "floor_us_per_tx": floor["us_per_tx"],
            "ceiling_per_s": _round(ceiling(floor["us_per_tx"], cores)),
            "floor_over_budget": _round(floor["us_per_tx"] / budget, 2),
            "reachable": floor["us_per_tx"] <= budget,
            "ceiling_per_s_without_client": _round(
                ceiling(floor["us_per_tx_without_client"], cores)
            ),
            "ceiling_per_s_with_write_batch": _round(
                ceiling(batched["us_per_tx"], cores)
            ),
            "ceiling_per_s_messages_only": _round(
                ceiling(
                    floor["by_kind_us"].get(Kind.UNARY.value, 0.0)
                    + floor["by_kind_us"].get(Kind.STREAM.value, 0.0),
                    cores,
                )
            ),
            "ceiling_per_s_our_message_counts": _round(
                ceiling(ours["us_per_tx"], cores)
            ),
            "our_extra_us_per_tx": _round(ours["us_per_tx"] - floor["us_per_tx"]),
            "our_extra_steps": [
                {"step": s.name, "count": s.count, "ours": s.ours, "fact": s.fact}
                for s in steps
                if s.ours > s.count
            ],
            "floor": floor,
        }
    return report


def human_line(name: str, entry: Mapping[str, Any], cores: int) -> str:
    """One stderr line for a workload of `floor_report`."""
    verdict = (
        "within reach"
        if entry["reachable"]
        else f"out of reach x{entry['floor_over_budget']}"
    )
    return (
        f"{name}: floor {entry['floor_us_per_tx']:.0f} µs CPU/tx -> ceiling "
        f"{entry['ceiling_per_s']:.0f}/s on {cores} cores, target "
        f"{entry['target_per_s']}/s: {verdict} (budget "
        f"{entry['budget_us_per_tx']:.0f} µs)"
    )


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits)


# ------------------------------------------------------------------ measurement


@dataclass(frozen=True, kw_only=True)
class FloorOptions:
    """What `medledger bench floor` measures."""

    sizes: tuple[int, ...] = (512, 2048, 4096)
    messages: int = 4000
    concurrency: int = 16
    repeat: int = 3
    crypto_iterations: int = 2000


def run_floor_bench(options: FloorOptions) -> dict[str, Any]:
    """Measure the unit costs, price every workload; the report.

    Raises:
        FloorBenchError: the options are unusable or a measuring process failed.
    """
    if not options.sizes or min(options.sizes) < 1:
        raise FloorBenchError("--sizes must name at least one positive size")
    if min(options.messages, options.concurrency, options.repeat) < 1:
        raise FloorBenchError("--messages, --concurrency and --repeat must be >= 1")
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    environment: dict[str, str] = {}
    apply_runtime_defaults(environment)
    experiments = os.environ.get("GRPC_EXPERIMENTS", environment["GRPC_EXPERIMENTS"])
    started = time.perf_counter()
    runs = measure_grpc(options, experiments)
    sign_us, verify_us, sha256_us = measure_crypto(options.crypto_iterations)

    def costs(pick: Callable[[Sequence[float]], float]) -> UnitCosts:
        return UnitCosts(
            unary=grpc_costs(runs, "unary", pick),
            stream=grpc_costs(runs, "stream", pick),
            sign_us=sign_us,
            verify_us=verify_us,
            sha256_us=sha256_us,
        )

    median, best = costs(statistics.median), costs(min)
    best_report = floor_report(best, cores=cores)
    return {
        "cores": cores,
        "grpc": grpc.__version__,
        "grpc_experiments": experiments,
        "event_loop": _event_loop(),
        "tls": True,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "measure_s": round(time.perf_counter() - started, 1),
        "settings": dataclasses.asdict(options),
        "unit_costs": {
            "unary_us": _grpc_table(median.unary),
            "stream_pair_us": _grpc_table(median.stream),
            "unary_total_us_runs": _totals(runs, "unary"),
            "stream_total_us_runs": _totals(runs, "stream"),
            "ecdsa_p256_sign_us": round(sign_us, 1),
            "ecdsa_p256_verify_us": round(verify_us, 1),
            "sha256_4k_us": round(sha256_us, 2),
            "signed_message_bytes": _SIGNED_BYTES,
        },
        "excluded": list(EXCLUDED),
        "workloads": floor_report(median, cores=cores),
        "best_runs": {
            name: {
                "floor_us_per_tx": entry["floor_us_per_tx"],
                "ceiling_per_s": entry["ceiling_per_s"],
                "reachable": entry["reachable"],
            }
            for name, entry in best_report.items()
        },
    }


GrpcRuns = Mapping[int, Mapping[str, Sequence[Mapping[str, float]]]]
"""Per payload size, per pattern (`unary`, `stream`): every run's figures."""


def measure_grpc(options: FloorOptions, experiments: str) -> GrpcRuns:
    """Every run of `bench_grpc.run_pair` per size (sizes interleaved, `repeat`
    rounds), TLS on, with `GRPC_EXPERIMENTS=experiments`."""
    config = BenchConfig(env={"GRPC_EXPERIMENTS": experiments})
    figures: dict[int, dict[str, list[dict[str, float]]]] = {
        size: {"unary": [], "stream": []} for size in options.sizes
    }
    with tempfile.TemporaryDirectory(prefix="medledger-bench-floor-") as folder:
        tls = write_certificate(Path(folder))
        for _ in range(options.repeat):
            for size in options.sizes:
                result = run_pair(
                    config,
                    GrpcBenchOptions(
                        messages=options.messages,
                        concurrency=options.concurrency,
                        size=size,
                    ),
                    Path(folder),
                    tls,
                )
                for pattern in ("unary", "stream"):
                    figures[size][pattern].append(result[pattern])
    return figures


def grpc_costs(
    runs: GrpcRuns, pattern: str, pick: Callable[[Sequence[float]], float]
) -> dict[int, GrpcCost]:
    """Per size, the cost of `pattern`: `pick` (median, min) of each side's runs."""
    return {
        size: GrpcCost(
            client_us=pick([run["client_us"] for run in patterns[pattern]]),
            server_us=pick([run["server_us"] for run in patterns[pattern]]),
        )
        for size, patterns in runs.items()
    }


def _totals(runs: GrpcRuns, pattern: str) -> dict[str, list[float]]:
    return {
        str(size): [run["total_us"] for run in runs[size][pattern]]
        for size in sorted(runs)
    }


def measure_crypto(iterations: int) -> tuple[float, float, float]:
    """CPU µs of an ECDSA P-256 signature and verification of a 3 KB message (SHA-256
    and low-S normalisation included, as our nodes sign) and of SHA-256 over 4 KB,
    with one cached key; medians of 5 rounds."""
    from common.crypto.signing import PrivateKey

    key = PrivateKey.generate()
    public = key.public_key
    message = os.urandom(_SIGNED_BYTES)
    signature = key.sign(message)
    block = os.urandom(_HASHED_BYTES)
    count = max(iterations, 1)

    def sign() -> None:
        key.sign(message)

    def verify() -> None:
        public.verify(signature, message)

    def digest() -> None:
        hashlib.sha256(block).digest()

    return (
        _cpu_us_per_call(sign, count),
        _cpu_us_per_call(verify, count),
        _cpu_us_per_call(digest, count * 10),
    )


def _cpu_us_per_call(call: Callable[[], None], count: int, rounds: int = 5) -> float:
    per_round = max(count // rounds, 1)
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(per_round):
            call()
        samples.append(1e6 * (time.process_time() - started) / per_round)
    return statistics.median(samples)


def _grpc_table(costs: Mapping[int, GrpcCost]) -> dict[str, dict[str, float]]:
    return {
        str(size): {
            "client_us": round(cost.client_us, 1),
            "server_us": round(cost.server_us, 1),
            "total_us": round(cost.total_us, 1),
        }
        for size, cost in sorted(costs.items())
    }


def _event_loop() -> str:
    from common.node import EVENT_LOOP_VARIABLE

    if os.environ.get(EVENT_LOOP_VARIABLE) == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


# ------------------------------------------------------------------ command line


def add_floor_command(bench_commands: Any) -> None:
    """Register `medledger bench floor` on the `bench` subcommands."""
    bench = bench_commands.add_parser(
        "floor",
        help="protocol floor: CPU per tx from gRPC messages and signatures, vs targets",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    defaults = FloorOptions()
    bench.add_argument(
        "--sizes",
        default=",".join(str(s) for s in defaults.sizes),
        help="comma-separated payload sizes (bytes) to measure gRPC at",
    )
    bench.add_argument(
        "--messages", type=int, default=defaults.messages, help="per size and pattern"
    )
    bench.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="calls/streams"
    )
    bench.add_argument(
        "--repeat", type=int, default=defaults.repeat, help="runs per size (median)"
    )
    bench.add_argument(
        "--crypto-iterations", type=int, default=defaults.crypto_iterations
    )
    bench.set_defaults(handler=_run_from_args)


def _run_from_args(args: argparse.Namespace) -> int:
    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    except ValueError:
        raise FloorBenchError(f"--sizes must be integers: {args.sizes!r}") from None
    report = run_floor_bench(
        FloorOptions(
            sizes=sizes,
            messages=args.messages,
            concurrency=args.concurrency,
            repeat=args.repeat,
            crypto_iterations=args.crypto_iterations,
        )
    )
    print(json.dumps(report, indent=2, ensure_ascii=False))
    for name, entry in report["workloads"].items():
        print(human_line(name, entry, report["cores"]), file=sys.stderr)
    return 0
