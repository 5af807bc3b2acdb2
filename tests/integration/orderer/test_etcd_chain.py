"""Orderers on the etcd backend, in this process, against a real single-member etcd.

Three orderers per test (each its own block store and Forward server on 127.0.0.1),
one channel per test on a module-wide etcd. Checks: the stores end byte-identical, no
tx twice, every acknowledged envelope in the block its acknowledgement named; cutter
take-over after a crash and a graceful stop; restart from the stores; size limits; an
orderer that finds its blocks pruned from etcd.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orderer.consensus.etcd_cutter import VALUE_BYTES_MAX
from orderer.consensus.etcd_follow import BlockPuller
from orderer.consensus.etcd_log import BlockLog, BlocksPruned, ChannelKeys
from orderer.consensus.etcd_settings import EtcdSettings
from orderer.consensus.etcd_types import EnvelopeTooLarge
from orderer.errors import BackendUnavailable
from protos.common import common_pb2
from tests.chaos.cluster import OrdererCluster, until, verify_stores
from tests.chaos.orderers import ChannelFixture, Consortium, OrdererNode
from tests.support import etcd_fixtures
from tests.support.etcd import EtcdCluster

TAKEOVER_MAX_S = 5.0


etcd = etcd_fixtures.etcd


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("crypto"))


@pytest.fixture
def channel(consortium: Consortium) -> ChannelFixture:
    return consortium.channel(
        f"ch-{uuid.uuid4().hex[:10]}", max_message_count=20, batch_timeout="50ms"
    )


@pytest.fixture
async def cluster(
    tmp_path: Path, channel: ChannelFixture, etcd: EtcdCluster
) -> AsyncIterator[OrdererCluster]:
    orderers = OrdererCluster(tmp_path, channel=channel, endpoints=etcd.endpoints)
    await orderers.start()
    yield orderers
    await orderers.stop()


async def order_all(
    cluster: OrdererCluster, count: int, *, through: list[int] | None = None
) -> dict[str, int]:
    """Order `count` fresh envelopes round-robin; returns tx id -> acknowledged block."""
    targets = through if through is not None else list(range(len(cluster.nodes)))
    envelopes = [cluster.channel.envelope(f"tx {i}".encode()) for i in range(count)]
    numbers = await asyncio.gather(
        *(
            cluster.nodes[targets[i % len(targets)]].chain.order(envelope)
            for i, (envelope, _) in enumerate(envelopes)
        )
    )
    return {
        tx_id: number for (_, tx_id), number in zip(envelopes, numbers, strict=True)
    }


async def stop_and_verify(cluster: OrdererCluster, acked: dict[str, int]) -> int:
    await cluster.same_height()
    await cluster.stop()
    report = verify_stores([node.folder for node in cluster.nodes], acked=acked)
    return report.height


async def test_three_orderers_store_the_same_chain(cluster: OrdererCluster) -> None:
    acked = await order_all(cluster, 300)

    height = await stop_and_verify(cluster, acked)

    assert height >= 1 + 300 // 20
    assert set(acked.values()) <= set(range(1, height))


async def test_an_envelope_broadcast_to_two_orderers_is_ordered_once(
    cluster: OrdererCluster,
) -> None:
    envelope, tx_id = cluster.channel.envelope(b"twice")

    first, second = await asyncio.gather(
        cluster.nodes[1].chain.order(envelope), cluster.nodes[2].chain.order(envelope)
    )
    again = await cluster.nodes[0].chain.order(envelope)

    assert first == second == again
    await stop_and_verify(cluster, {tx_id: first})


async def test_batches_too_big_for_etcd_are_split_and_oversized_envelopes_rejected(
    cluster: OrdererCluster,
) -> None:
    """Blocks stay under etcd's 1.5 MiB request limit; a bigger envelope is refused."""
    big = 600 * 1024
    follower = next(i for i, n in enumerate(cluster.nodes) if not n.chain.is_cutter)
    acked = await order_all_payloads(cluster, [bytes(big)] * 6)
    huge, _ = cluster.channel.envelope(bytes(VALUE_BYTES_MAX))
    with pytest.raises(EnvelopeTooLarge) as raised:
        await cluster.nodes[follower].chain.order(huge)

    assert raised.value.status == common_pb2.REQUEST_ENTITY_TOO_LARGE
    await cluster.same_height()
    sizes = [
        len(cluster.nodes[0].store.block_bytes(n)) for n in sorted(set(acked.values()))
    ]
    assert all(size <= VALUE_BYTES_MAX for size in sizes)
    assert len(sizes) >= 3
    await stop_and_verify(cluster, acked)


async def order_all_payloads(
    cluster: OrdererCluster, payloads: list[bytes]
) -> dict[str, int]:
    envelopes = [cluster.channel.envelope(payload) for payload in payloads]
    numbers = await asyncio.gather(
        *(cluster.nodes[0].chain.order(envelope) for envelope, _ in envelopes)
    )
    return {tx_id: n for (_, tx_id), n in zip(envelopes, numbers, strict=True)}


async def test_a_crashed_cutter_is_replaced_within_five_seconds(
    cluster: OrdererCluster,
) -> None:
    """Kill the cutter without a goodbye; a survivor orders once the lease is gone."""
    acked = await order_all(cluster, 60)
    cutter = await cluster.cutter()
    survivors = [i for i in range(3) if i != cutter]

    await cluster.nodes[cutter].crash()
    crashed_at = time.monotonic()
    acked |= await order_all(cluster, 1, through=survivors[:1])
    takeover_s = time.monotonic() - crashed_at
    acked |= await order_all(cluster, 60, through=survivors)
    await cluster.restart(cutter)
    acked |= await order_all(cluster, 30)

    assert takeover_s < TAKEOVER_MAX_S
    await stop_and_verify(cluster, acked)


async def test_a_stopped_cutter_hands_over_at_once(cluster: OrdererCluster) -> None:
    cutter = await cluster.cutter()
    survivor = (cutter + 1) % 3

    await cluster.nodes[cutter].stop()
    stopped_at = time.monotonic()
    acked = await order_all(cluster, 1, through=[survivor])

    assert time.monotonic() - stopped_at < 1.5
    await cluster.restart(cutter)
    await stop_and_verify(cluster, acked)


async def test_a_cutter_that_loses_its_lease_steps_down_and_keeps_serving(
    cluster: OrdererCluster,
) -> None:
    """Its lease revoked behind its back, the cutter ends its term, follows the next
    cutter and still orders its own clients' envelopes."""
    acked = await order_all(cluster, 20)
    cutter = await cluster.cutter()
    chain = cluster.nodes[cutter].chain
    client = cluster.nodes[cutter].backend.client()
    record = await client.get(chain.keys.cutter)
    assert record is not None

    await client.revoke_lease(record.lease)
    await until(lambda: not chain.is_cutter, timeout_s=5, what="stepping down")
    acked |= await order_all(cluster, 20, through=[cutter])

    await stop_and_verify(cluster, acked)


async def test_orderers_restart_from_their_stores_and_numbering_continues(
    cluster: OrdererCluster,
) -> None:
    acked = await order_all(cluster, 50)
    height = await cluster.same_height()
    await cluster.stop()

    for index in range(3):
        await cluster.restart(index)
    later = await order_all(cluster, 50)

    assert min(later.values()) == height
    await stop_and_verify(cluster, acked | later)


async def test_an_orderer_behind_etcds_pruned_base_fails_clearly_or_pulls(
    tmp_path: Path, channel: ChannelFixture, etcd: EtcdCluster
) -> None:
    """Blocks every registered orderer has are pruned; a newcomer needs a block puller."""
    settings = EtcdSettings(
        endpoints=(),
        orderer_name="",
        forward_address="",
        retention_blocks=2,
        prune_interval_s=0.1,
        report_interval_s=0.05,
    )
    cluster = OrdererCluster(
        tmp_path, channel=channel, endpoints=etcd.endpoints, settings=settings
    )
    try:
        await cluster.start(2)
        await newcomer_scenario(cluster, tmp_path, channel, etcd, settings)
    finally:
        await cluster.stop()


async def newcomer_scenario(
    cluster: OrdererCluster,
    folder: Path,
    channel: ChannelFixture,
    etcd: EtcdCluster,
    settings: EtcdSettings,
) -> None:
    acked = await order_all(cluster, 200)
    await cluster.same_height()
    log = BlockLog(cluster.nodes[0].backend.client(), ChannelKeys(channel.channel_id))
    await until_pruned(log, above=2)

    newcomer = await start_newcomer(folder, channel, etcd, settings, puller=None)
    try:
        await until(
            lambda: newcomer.chain.error is not None, timeout_s=10, what="failure"
        )
        envelope, _ = channel.envelope(b"to the newcomer")
        with pytest.raises(BackendUnavailable, match="etcd keeps blocks from"):
            await newcomer.chain.order(envelope)
    finally:
        await newcomer.crash()
    source = cluster.nodes[0].store

    async def pull(_: str, start: int, end: int) -> AsyncIterator[common_pb2.Block]:
        for number in range(start, end):
            yield source.block_by_number(number)

    cluster.nodes.append(
        await start_newcomer(folder, channel, etcd, settings, puller=pull)
    )
    acked |= await order_all(cluster, 30)

    assert isinstance(newcomer.chain.error, BlocksPruned)
    await stop_and_verify(cluster, acked)


async def until_pruned(log: BlockLog, *, above: int) -> None:
    deadline = time.monotonic() + 10
    while (await log.state()).base <= above:
        assert time.monotonic() < deadline, "etcd was not pruned within 10 s"
        await asyncio.sleep(0.05)


async def start_newcomer(
    folder: Path,
    channel: ChannelFixture,
    etcd: EtcdCluster,
    settings: EtcdSettings,
    *,
    puller: BlockPuller | None,
) -> OrdererNode:
    return await OrdererNode.start(
        "orderer2",
        folder / "orderer2",
        channel=channel,
        identity=channel.orderers[2],
        endpoints=etcd.endpoints,
        settings=settings,
        block_puller=puller,
    )
