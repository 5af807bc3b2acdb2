"""`medledger bench orderer`: Broadcast throughput of the ordering service, and Deliver fan-out.

The benchmark starts real orderer processes through the CLI (network.bench_orderer_nodes:
one solo orderer, or with `backend="etcd"` three orderers on a local three-member etcd
cluster) and, from this process:

1. broadcasts `envelopes` pre-signed ENDORSER_TRANSACTION envelopes on one stream to
   the orderer that cuts blocks and times them from the first write to the last SUCCESS
   (SUCCESS means "in a block on that orderer's disk"): `<backend>.envelopes_per_s`,
   with the CPU every process of the service spent per envelope (the figure to compare
   on a shared machine; an orderer's figure includes its worker processes, such as its
   signature worker, whose share `worker_cpu_us_per_envelope_by_orderer` shows);
2. etcd only: the same through a follower, which forwards to the cutter:
   `broadcast_follower`;
3. does step 1 again while `subscribers` Deliver clients, each on its own connection
   as peers are, follow the chain from its current height: `deliver.envelopes_per_s`,
   the slowdown against step 1, and how long after the last SUCCESS the slowest
   subscriber had every envelope.

Steps 1 and 3 alternate `rounds` times (1, 3, 1, 3, ...) so that drift of a shared
machine falls on both phases alike; each phase reports the median of its rounds (and
every round under `rounds`), and the slowdown compares the two medians. Both phases
report the orderer's and the client's CPU per envelope, so the cost of the
subscribers shows apart from the noise of wall-clock time.

Envelopes carry `envelope_bytes` of random data; the orderer checks every signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from common.msp import SigningIdentity
from common.node import loop_factory
from common.protoutil import (
    BLOCK_UNTIL_READY,
    FAIL_IF_NOT_READY,
    SeekPosition,
    create_seek_envelope,
)
from common.tls import TlsFiles, channel_credentials
from network.bench_orderer_nodes import (
    OrdererProcess,
    OrderingNodes,
    running_orderers,
)
from network.orderer_material import HOSPITAL, new_envelope
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["BenchOptions", "run_orderer_bench"]

RUN_TIMEOUT_S = 600.0
WARM_UP_ENVELOPES = 500
_FOREVER = 2**63 - 1
_SUCCESS = ab_pb2.BroadcastResponse(status=common_pb2.SUCCESS).SerializeToString()


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    envelopes: int = 20_000
    envelope_bytes: int = 3000
    subscribers: int = 3
    tls: bool = False
    backend: str = "solo"
    """solo, or etcd (three orderers on a local etcd cluster)."""
    rounds: int = 3
    """How many times the phases without and with subscribers alternate."""


def run_orderer_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every phase; returns the JSON-ready result.

    The client runs on the event loop every process prefers (uvloop when installed),
    so that the load generator takes as little of the shared cores as it can.
    """
    with (
        tempfile.TemporaryDirectory(prefix="medledger-bench-") as folder,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        result = runner.run(_bench(options, Path(folder)))
    result["event_loop"] = "asyncio" if loop_factory() is None else "uvloop"
    return result


async def _bench(options: BenchOptions, folder: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    async with running_orderers(
        folder, backend=options.backend, tls=options.tls
    ) as nodes:
        result = await _measure(options, nodes)
    return {
        "options": asdict(options),
        **result,
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


async def _measure(options: BenchOptions, nodes: OrderingNodes) -> dict[str, Any]:
    signer = nodes.material.signing_identity(HOSPITAL, "dr-lee")
    count = options.envelopes

    def envelopes(number: int) -> list[bytes]:
        return [
            new_envelope(signer, data=os.urandom(options.envelope_bytes))
            for _ in range(number)
        ]

    cutter = nodes.orderers[await nodes.cutter_index()]
    result: dict[str, Any] = {"envelope_size_bytes": 0}
    alone: list[dict[str, Any]] = []
    followed: list[dict[str, Any]] = []
    async with _open_channel(cutter.address, nodes, tls=options.tls) as channel:
        await _broadcast(channel, envelopes(WARM_UP_ENVELOPES))
        for _ in range(max(options.rounds, 1)):
            batch = envelopes(count)
            result["envelope_size_bytes"] = len(batch[0])
            alone.append(await _timed_broadcast(channel, batch, nodes))
            followed.append(
                await _with_subscribers(
                    channel, envelopes(count), signer, nodes, cutter, options=options
                )
            )
        if len(nodes.orderers) > 1:
            result["broadcast_follower"] = await _via_follower(
                options, nodes, cutter, envelopes
            )
    result[options.backend] = {"cutter": cutter.name, **_median_round(alone)}
    deliver = _median_round(followed)
    deliver["slowdown_percent"] = _slowdown(deliver, result[options.backend])
    deliver["slowdown_percent_by_round"] = [
        _slowdown(with_, without)
        for with_, without in zip(followed, alone, strict=True)
    ]
    result["deliver"] = deliver
    return result


async def _via_follower(
    options: BenchOptions,
    nodes: OrderingNodes,
    cutter: OrdererProcess,
    envelopes: Callable[[int], list[bytes]],
) -> dict[str, Any]:
    """Step 2: one stream to a follower, which forwards to the cutter."""
    follower = next(o for o in nodes.orderers if o is not cutter)
    async with _open_channel(follower.address, nodes, tls=options.tls) as forwarding:
        await _broadcast(forwarding, envelopes(WARM_UP_ENVELOPES))
        timed = await _timed_broadcast(forwarding, envelopes(options.envelopes), nodes)
    return {"orderer": follower.name, **timed}


_ROUND_FIGURES = (
    "seconds",
    "envelopes_per_s",
    "orderer_cpu_us_per_envelope",
    "client_cpu_us_per_envelope",
)


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median time, its headline figures replaced by the
    medians over all rounds, and every round's figures under `rounds`."""
    ordered = sorted(rounds, key=lambda figures: figures["seconds"])
    merged = dict(ordered[(len(ordered) - 1) // 2])
    for name in _ROUND_FIGURES:
        merged[name] = _median([figures[name] for figures in rounds])
    merged["rounds"] = [
        {name: figures[name] for name in _ROUND_FIGURES} for figures in rounds
    ]
    return merged


def _median(values: list[float]) -> float:
    return round(float(statistics.median(values)), 3)


def _slowdown(with_: dict[str, Any], without: dict[str, Any]) -> float:
    ratio = float(with_["seconds"]) / float(without["seconds"])
    return round((ratio - 1) * 100, 1)


async def _timed_broadcast(
    channel: grpc.aio.Channel, envelopes: list[bytes], nodes: OrderingNodes
) -> dict[str, Any]:
    """One stream's figures: rate, and CPU per envelope of every process."""
    pids = nodes.pids()
    workers = {name: found for name, found in nodes.worker_pids().items() if found}
    before = {name: _cpu_s(pid) for name, pid in pids.items()}
    workers_before = {name: _cpu_s(*found) for name, found in workers.items()}
    client_before = time.process_time()
    seconds = await _broadcast(channel, envelopes)
    client_cpu = time.process_time() - client_before
    count = len(envelopes)
    by_worker = {
        name: round((_cpu_s(*found) - workers_before[name]) / count * 1e6, 1)
        for name, found in workers.items()
    }
    per_process = {
        name: round(
            (_cpu_s(pid) - before[name]) / count * 1e6 + by_worker.get(name, 0.0), 1
        )
        for name, pid in pids.items()
    }
    orderers_us = sum(v for k, v in per_process.items() if k.startswith("orderer"))
    return {
        "envelopes": count,
        "seconds": round(seconds, 3),
        "envelopes_per_s": round(count / seconds),
        "orderer_cpu_us_per_envelope": round(orderers_us, 1),
        "service_cpu_us_per_envelope": round(sum(per_process.values()), 1),
        "client_cpu_us_per_envelope": round(client_cpu / count * 1e6, 1),
        "cpu_us_per_envelope_by_process": per_process,
        "worker_cpu_us_per_envelope_by_orderer": by_worker,
    }


async def _with_subscribers(
    channel: grpc.aio.Channel,
    envelopes: list[bytes],
    signer: SigningIdentity,
    nodes: OrderingNodes,
    cutter: OrdererProcess,
    *,
    options: BenchOptions,
) -> dict[str, Any]:
    """Broadcast again while `subscribers` Deliver streams follow the chain.

    Each subscriber is its own client on its own connection (as peers are), and
    asks for every block from the chain's current height on, so none can miss the
    first block of the round however late its request arrives.
    """

    def seek(start: SeekPosition, stop: SeekPosition, behavior: int) -> bytes:
        return create_seek_envelope(
            channel_id=nodes.material.channel,
            start=start,
            stop=stop,
            behavior=behavior,
            creator=signer.serialized,
            signer=signer.sign,
        ).SerializeToString()

    newest = SeekPosition.newest()
    height = 1 + await _newest_number(channel, seek(newest, newest, FAIL_IF_NOT_READY))
    follow = seek(
        SeekPosition.specified(height),
        SeekPosition.specified(_FOREVER),
        BLOCK_UNTIL_READY,
    )
    count = len(envelopes)
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for _ in range(options.subscribers):
            own = await stack.enter_async_context(
                _open_channel(cutter.address, nodes, tls=options.tls)
            )
            await own.channel_ready()
            streams.append(own)
        subscribers = [
            asyncio.ensure_future(_follow(own, follow, count)) for own in streams
        ]
        timed = await _timed_broadcast(channel, envelopes, nodes)
        broadcast_done = time.perf_counter()
        followed = await asyncio.gather(*subscribers)
    lag_s = max((done - broadcast_done for done, _ in followed), default=0.0)
    return {
        "subscribers": options.subscribers,
        **{name: timed[name] for name in _ROUND_FIGURES},
        "blocks_per_subscriber": followed[0][1] if followed else 0,
        "last_subscriber_lag_s": round(lag_s, 3),
    }


async def _newest_number(channel: grpc.aio.Channel, seek: bytes) -> int:
    """The number of the chain's newest block (one Deliver request)."""
    call: Any = channel.stream_stream(  # type: ignore[call-arg]
        "/orderer.AtomicBroadcast/Deliver"
    )(timeout=RUN_TIMEOUT_S)
    await call.write(seek)
    await call.done_writing()
    response = ab_pb2.DeliverResponse.FromString(await call.read())
    if response.WhichOneof("Type") != "block":
        raise RuntimeError(f"no newest block: {response}")
    number: int = response.block.header.number
    call.cancel()
    return number


async def _broadcast(channel: grpc.aio.Channel, envelopes: list[bytes]) -> float:
    """Send on one stream; seconds until the last SUCCESS (fails on any other)."""
    call: Any = channel.stream_stream(  # type: ignore[call-arg]
        "/orderer.AtomicBroadcast/Broadcast"
    )(timeout=RUN_TIMEOUT_S)

    async def write_all() -> None:
        for envelope in envelopes:
            await call.write(envelope)
        await call.done_writing()

    started = time.perf_counter()
    writer = asyncio.ensure_future(write_all())
    answered = 0
    async for response in call:
        if response != _SUCCESS:
            writer.cancel()
            decoded = ab_pb2.BroadcastResponse.FromString(response)
            raise RuntimeError(f"envelope {answered} rejected: {decoded}")
        answered += 1
    await writer
    if answered != len(envelopes):
        raise RuntimeError(f"{answered} answers for {len(envelopes)} envelopes")
    return time.perf_counter() - started


async def _follow(
    channel: grpc.aio.Channel, seek: bytes, envelopes: int
) -> tuple[float, int]:
    """Read blocks until `envelopes` transactions arrived; (when, blocks)."""
    call: Any = channel.stream_stream(  # type: ignore[call-arg]
        "/orderer.AtomicBroadcast/Deliver"
    )(timeout=RUN_TIMEOUT_S)
    await call.write(seek)
    seen = blocks = 0
    while seen < envelopes:
        response = ab_pb2.DeliverResponse.FromString(await call.read())
        if response.WhichOneof("Type") != "block":
            raise RuntimeError(f"deliver ended early: {response}")
        seen += len(response.block.data.data)
        blocks += 1
    done = time.perf_counter()
    call.cancel()
    return done, blocks


def _cpu_s(*pids: int) -> float:
    """CPU seconds (user + system) processes have used, from /proc; 0 elsewhere."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _open_channel(address: str, nodes: OrderingNodes, *, tls: bool) -> grpc.aio.Channel:
    options = [("grpc.max_receive_message_length", 100 * 1024 * 1024)]
    if not tls:
        return grpc.aio.insecure_channel(address, options=options)
    credentials = channel_credentials(TlsFiles(root_cas=(nodes.tls_ca,)))
    return grpc.aio.secure_channel(address, credentials, options=options)
