"""`medledger bench orderer`: Broadcast throughput of a solo orderer, and Deliver fan-out.

The benchmark builds the small consortium of `network.orderer_material`, starts a
real orderer process through the CLI (so it has a core of its own), joins the channel
through the participation API and, from this process:

1. broadcasts `envelopes` pre-signed ENDORSER_TRANSACTION envelopes on one stream
   and times them from the first write to the last SUCCESS (SUCCESS means "in a
   block on disk"): `solo.envelopes_per_s`;
2. does it again while `subscribers` Deliver streams follow the chain from the
   next block: `deliver.envelopes_per_s`, the slowdown against step 1, and how long
   after the last SUCCESS the slowest subscriber had every envelope.

Envelopes carry `envelope_bytes` of random data; the orderer checks every signature.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from common.node import READY_PREFIX, parse_ready_line
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from common.tls import TlsFiles, channel_credentials
from network.orderer_material import (
    HOSPITAL,
    OrdererMaterial,
    build_orderer_material,
    new_envelope,
    write_orderer_yaml,
)
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["BenchOptions", "run_orderer_bench"]

READY_TIMEOUT_S = 60.0
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


def run_orderer_bench(options: BenchOptions) -> dict[str, Any]:
    """Run both phases; returns the JSON-ready result."""
    with tempfile.TemporaryDirectory(prefix="medledger-bench-") as folder:
        return asyncio.run(_bench(options, Path(folder)))


async def _bench(options: BenchOptions, folder: Path) -> dict[str, Any]:
    material = build_orderer_material(folder / "material")
    config = write_orderer_yaml(
        folder / "orderer.yaml",
        material,
        storage=folder / "storage",
        tls=options.tls,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        "orderer",
        "start",
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        addresses = await _wait_ready(process)
        await _join(addresses["admin"], material)
        return await _measure(options, material, addresses["grpc"], process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _measure(
    options: BenchOptions, material: OrdererMaterial, address: str, pid: int
) -> dict[str, Any]:
    signer = material.signing_identity(HOSPITAL, "dr-lee")
    count = options.envelopes

    def envelopes(number: int) -> list[bytes]:
        return [
            new_envelope(signer, data=os.urandom(options.envelope_bytes))
            for _ in range(number)
        ]

    warm_up, first, second = envelopes(WARM_UP_ENVELOPES), envelopes(count), []
    second = envelopes(count)
    async with _open_channel(address, material, tls=options.tls) as channel:
        await _broadcast(channel, warm_up)
        cpu_before = _cpu_s(pid), time.process_time()
        solo_s = await _broadcast(channel, first)
        solo_cpu = _cpu_s(pid) - cpu_before[0], time.process_time() - cpu_before[1]
        seek = create_seek_envelope(
            channel_id=material.channel,
            start=SeekPosition.next_commit(),
            stop=SeekPosition.specified(_FOREVER),
            behavior=BLOCK_UNTIL_READY,
            creator=signer.serialized,
            signer=signer.sign,
        ).SerializeToString()
        subscribers = [
            asyncio.ensure_future(_follow(channel, seek, count))
            for _ in range(options.subscribers)
        ]
        deliver_s = await _broadcast(channel, second)
        broadcast_done = time.perf_counter()
        followed = await asyncio.gather(*subscribers)
    lag_s = max((done - broadcast_done for done, _ in followed), default=0.0)
    return {
        "options": asdict(options),
        "envelope_size_bytes": len(first[0]),
        "solo": {
            "envelopes": count,
            "seconds": round(solo_s, 3),
            "envelopes_per_s": round(count / solo_s),
            "orderer_cpu_percent": round(solo_cpu[0] / solo_s * 100),
            "client_cpu_percent": round(solo_cpu[1] / solo_s * 100),
        },
        "deliver": {
            "subscribers": options.subscribers,
            "envelopes_per_s": round(count / deliver_s),
            "slowdown_percent": round((deliver_s / solo_s - 1) * 100, 1),
            "blocks_per_subscriber": followed[0][1] if followed else 0,
            "last_subscriber_lag_s": round(lag_s, 3),
        },
        "cpus": os.cpu_count(),
    }


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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _open_channel(
    address: str, material: OrdererMaterial, *, tls: bool
) -> grpc.aio.Channel:
    options = [("grpc.max_receive_message_length", 100 * 1024 * 1024)]
    if not tls:
        return grpc.aio.insecure_channel(address, options=options)
    credentials = channel_credentials(TlsFiles(root_cas=(material.orderer.tls_ca,)))
    return grpc.aio.secure_channel(address, credentials, options=options)


async def _wait_ready(process: asyncio.subprocess.Process) -> dict[str, str]:
    assert process.stdout is not None
    async with asyncio.timeout(READY_TIMEOUT_S):
        while line := await process.stdout.readline():
            text = line.decode()
            if text.startswith(READY_PREFIX):
                return parse_ready_line(text.strip())
    raise RuntimeError(f"orderer exited before READY (code {process.returncode})")


async def _join(admin: str, material: OrdererMaterial) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block",
        material.genesis_file.read_bytes(),
        filename="genesis.block",
        content_type="application/octet-stream",
    )
    url = f"http://{admin}/participation/v1/channels"
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=form) as response,
    ):
        if response.status != 201:
            raise RuntimeError(
                f"join failed: {response.status} {await response.text()}"
            )
