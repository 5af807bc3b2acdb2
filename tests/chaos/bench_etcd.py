"""Throughput of the etcd ordering backend on this machine, as JSON.

    python -m tests.chaos.bench_etcd [--envelopes 20000] [--envelope-bytes 3000]

Starts a 3-member etcd cluster (real processes, plaintext loopback) and measures:

- `backend`: `EtcdChain.order` on three in-process orderers (one event loop), the
  envelopes spread over them so two thirds are forwarded to the cutter; no signature
  checks, this is the backend alone;
- `broadcast_cutter` / `broadcast_follower`: three `medledger orderer start` processes
  (plaintext listeners unless `--tls`; signature checks), every envelope on one
  Broadcast stream to the cutter, then to a follower; from the first write to the last
  SUCCESS (SUCCESS means "in a block in that orderer's store"). Forwarding between the
  orderers uses their listeners, so it is TLS exactly when `--tls` is given;
- `broadcast_all`: one stream to each of the three orderers at once, the envelopes
  shared between them; total envelopes/s (the cluster's throughput when clients spread
  over the orderers, as each orderer checks its own clients' signatures).

Batch size 500 envelopes, batch timeout 100 ms. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import CutterInfo
from orderer.consensus.etcd_log import ChannelKeys
from protos.common import common_pb2
from protos.orderer import ab_pb2
from tests.chaos.cluster import OrdererCluster
from tests.chaos.orderers import ChannelFixture, Consortium
from tests.chaos.processes import BROADCAST, CliOrderer, LoadRecord, open_channel
from tests.support.etcd import EtcdCluster, free_ports

WINDOW = 2000
"""Envelopes in flight at once in the in-process measurement (like a Broadcast window)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--envelopes", type=int, default=20_000)
    parser.add_argument("--envelope-bytes", type=int, default=3000)
    parser.add_argument(
        "--tls", action="store_true", help="TLS on the orderers' listeners"
    )
    arguments = parser.parse_args()
    result = asyncio.run(
        run_etcd_bench(arguments.envelopes, arguments.envelope_bytes, tls=arguments.tls)
    )
    print(json.dumps(result, indent=2))
    return 0


async def run_etcd_bench(
    envelopes: int, envelope_bytes: int, *, tls: bool = False
) -> dict[str, Any]:
    """Both measurements on a fresh 3-member etcd cluster in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="medledger-bench-etcd-") as name:
        folder = Path(name)
        consortium = Consortium.create(folder / "crypto")
        async with await EtcdCluster.start(folder / "etcd", size=3) as etcd:
            backend = await _bench_backend(
                consortium.channel("bench-backend", max_message_count=500),
                etcd,
                folder / "backend",
                envelopes=envelopes,
                envelope_bytes=envelope_bytes,
            )
            broadcast = await _bench_broadcast(
                consortium,
                consortium.channel("bench-broadcast", max_message_count=500),
                etcd,
                folder / "broadcast",
                envelopes=envelopes,
                envelope_bytes=envelope_bytes,
                tls=tls,
            )
    return {
        "etcd_members": 3,
        "envelopes": envelopes,
        "envelope_bytes": envelope_bytes,
        "tls": tls,
        "backend": backend,
        **broadcast,
    }


async def _bench_backend(
    channel: ChannelFixture,
    etcd: EtcdCluster,
    folder: Path,
    *,
    envelopes: int,
    envelope_bytes: int,
) -> dict[str, Any]:
    cluster = await OrdererCluster(
        folder, channel=channel, endpoints=etcd.endpoints
    ).start()
    try:
        await cluster.cutter()
        batch = [channel.envelope(bytes(envelope_bytes))[0] for _ in range(envelopes)]
        numbers: list[int] = []
        slots = asyncio.Semaphore(WINDOW)

        async def one(index: int, envelope: bytes) -> None:
            try:
                numbers.append(await cluster.nodes[index % 3].chain.order(envelope))
            finally:
                slots.release()

        started = time.monotonic()
        async with asyncio.TaskGroup() as ordering:
            for index, envelope in enumerate(batch):
                await slots.acquire()
                ordering.create_task(one(index, envelope))
        elapsed = time.monotonic() - started
    finally:
        await cluster.stop()
    return {
        "orderers_in_process": 3,
        "envelopes_per_s": round(envelopes / elapsed),
        "blocks": len(set(numbers)),
    }


async def _bench_broadcast(
    consortium: Consortium,
    channel: ChannelFixture,
    etcd: EtcdCluster,
    folder: Path,
    *,
    envelopes: int,
    envelope_bytes: int,
    tls: bool,
) -> dict[str, Any]:
    ports = free_ports(3)
    orderers = [
        CliOrderer(
            index,
            folder=folder / f"orderer{index}",
            consortium=consortium,
            channel=channel,
            endpoints=etcd.endpoints,
            etcd_tls=None,
            port=ports[index],
            record=LoadRecord(),
            tls=tls,
        )
        for index in range(3)
    ]
    client = EtcdClient(etcd.endpoints)
    try:
        await asyncio.gather(*(orderer.start() for orderer in orderers))
        for orderer in orderers:
            await orderer.close_stream()
        cutter_name = await _cutter_name(client, ChannelKeys(channel.channel_id))
        cutter = next(o for o in orderers if o.name == cutter_name)
        follower = next(o for o in orderers if o is not cutter)
        results: dict[str, Any] = {}
        for label, target in (
            ("broadcast_cutter", cutter),
            ("broadcast_follower", follower),
        ):
            batch = [
                channel.envelope(bytes(envelope_bytes))[0] for _ in range(envelopes)
            ]
            results[label] = {"envelopes_per_s": await _broadcast(target, batch)}
        share = envelopes // len(orderers)
        batches = [
            [channel.envelope(bytes(envelope_bytes))[0] for _ in range(share)]
            for _ in orderers
        ]
        started = time.monotonic()
        await asyncio.gather(
            *(_broadcast(o, b) for o, b in zip(orderers, batches, strict=True))
        )
        elapsed = time.monotonic() - started
        results["broadcast_all"] = {
            "streams": len(orderers),
            "envelopes_per_s": round(share * len(orderers) / elapsed),
        }
        return results
    finally:
        await asyncio.gather(*(orderer.terminate() for orderer in orderers))
        await client.close()


async def _cutter_name(client: EtcdClient, keys: ChannelKeys) -> str:
    deadline = time.monotonic() + 20
    while (current := await client.get(keys.cutter)) is None:
        assert time.monotonic() < deadline, "no cutter elected"
        await asyncio.sleep(0.05)
    return CutterInfo.decode(current.value).orderer_name


async def _broadcast(orderer: CliOrderer, envelopes: list[bytes]) -> int:
    """Envelopes/s on one Broadcast stream, first write to last SUCCESS."""
    async with open_channel(orderer) as channel:
        method = channel.stream_stream(  # type: ignore[call-arg]
            BROADCAST, response_deserializer=ab_pb2.BroadcastResponse.FromString
        )
        started = time.monotonic()
        call: Any = method(iter(envelopes), timeout=600)
        answered = 0
        async for response in call:
            assert response.status == common_pb2.SUCCESS, response
            answered += 1
        elapsed = time.monotonic() - started
    assert answered == len(envelopes)
    return round(len(envelopes) / elapsed)


if __name__ == "__main__":
    raise SystemExit(main())
