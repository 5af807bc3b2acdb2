"""An orderer that needs blocks etcd has pruned pulls them from another orderer.

Method: one etcd member (TLS with client certificates) and `medledger orderer start`
processes with TLS listeners. Two orderers order a steady load; the test then prunes
etcd below its height (what the cutter does once every registered orderer has the
blocks) and starts a third orderer with an empty store. Its follower finds the blocks
it needs below etcd's base and pulls them over the others' Deliver services (signed
seek, mutual TLS, block signatures checked against BlockValidation); it then follows
etcd, takes load, and all three end with byte-identical block files.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_log import BlockLog, ChannelKeys
from tests.chaos.cluster import verify_stores
from tests.chaos.orderers import Consortium
from tests.chaos.processes import CliOrderer, Load, LoadRecord
from tests.chaos.test_etcd_faults import Run, client_tls, settle
from tests.support.etcd import EtcdCluster, EtcdTls, free_ports, running_cluster

RATE_PER_S = 200.0


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    folder = tmp_path_factory.mktemp("etcd")
    with running_cluster(folder, size=1, tls=EtcdTls.issue(folder / "tls")) as cluster:
        yield cluster


async def test_a_new_orderer_pulls_pruned_blocks_from_another_orderers_deliver(
    seed: int, etcd: EtcdCluster, tmp_path: Path
) -> None:
    """Pruned below the height two orderers reached; the third catches up by Deliver."""
    rng = random.Random(seed)
    consortium = Consortium.create(tmp_path / "crypto")
    channel = consortium.channel(f"pull-{uuid.uuid4().hex[:8]}", max_message_count=20)
    record = LoadRecord()
    ports = free_ports(3)
    orderers = [
        CliOrderer(
            index,
            folder=tmp_path / f"orderer{index}",
            consortium=consortium,
            channel=channel,
            endpoints=etcd.endpoints,
            etcd_tls=etcd.tls,
            port=ports[index],
            record=record,
        )
        for index in range(3)
    ]
    client = EtcdClient(etcd.endpoints, tls=client_tls(etcd.tls))
    keys = ChannelKeys(channel.channel_id)
    run = Run(rng, etcd, orderers, record, client, keys)
    log = BlockLog(client, keys)
    try:
        await asyncio.gather(*(orderer.start() for orderer in orderers[:2]))
        await load_until(record, orderers[:2], channel, rng, acked=150)
        run.orderers = orderers[:2]
        await settle(run)
        pruned_below = (await log.state()).height
        await log.prune(below=pruned_below)
        assert (await log.state()).base == pruned_below

        await orderers[2].start()
        await load_until(record, orderers, channel, rng, acked=len(record.acked) + 60)
        run.orderers = orderers
        await settle(run)
    finally:
        await asyncio.gather(*(orderer.terminate() for orderer in orderers))
        await client.close()

    report = verify_stores([o.storage for o in orderers], acked=record.acked_tx())
    assert report.height > pruned_below > 2
    assert not record.errors, record.errors


async def load_until(
    record: LoadRecord,
    orderers: list[CliOrderer],
    channel: object,
    rng: random.Random,
    *,
    acked: int,
) -> None:
    """A steady load on `orderers` until `acked` envelopes were acknowledged."""
    load = Load(record, orderers, channel=channel, rng=rng, rate_per_s=RATE_PER_S)  # type: ignore[arg-type]
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(load.run())
        try:
            await record.wait(
                lambda: len(record.acked) >= acked, timeout_s=30, what="load"
            )
        finally:
            load.stopped.set()
