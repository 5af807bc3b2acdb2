"""Config updates through a cluster of `medledger orderer start` processes on etcd.

Method: one etcd member, three orderer processes joined to a channel that cuts by count
only (MaxMessageCount 4, a 20 s timeout that never fires); the commission's admin
broadcasts CONFIG_UPDATE envelopes to a follower, so each travels over Forward to the
cutter, which re-checks it against the config of that moment when it cuts. Checks: a
config block every orderer stores, later blocks cut with the new batch size and
pointing at it as last config, of two updates of the same value made at once one cut
and one refused, and byte-identical stores.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.blockstore import BlockStore
from common.channelconfig import ChannelConfig, keys
from common.configtx import compute_update
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import last_config_index
from network.config_update import (
    config_update_envelope,
    create_config_update_tx,
)
from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import CutterInfo
from orderer.consensus.etcd_log import BlockLog, ChannelKeys
from protos.common import common_pb2
from protos.orderer import ab_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from tests.chaos.cluster import verify_stores
from tests.chaos.orderers import ORDERER_MSP, ChannelFixture, Consortium
from tests.chaos.processes import BROADCAST, CliOrderer, LoadRecord, open_channel
from tests.support.etcd import EtcdCluster, free_ports, running_cluster

SUCCESS = common_pb2.SUCCESS


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with running_cluster(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("crypto"))


@pytest.fixture
def channel(consortium: Consortium) -> ChannelFixture:
    return consortium.channel(
        f"cfg-{uuid.uuid4().hex[:8]}", max_message_count=4, batch_timeout="20s"
    )


@pytest.fixture
async def orderers(
    tmp_path: Path, consortium: Consortium, channel: ChannelFixture, etcd: EtcdCluster
) -> AsyncIterator[list[CliOrderer]]:
    ports = free_ports(3)
    started = [
        CliOrderer(
            index,
            folder=tmp_path / f"orderer{index}",
            consortium=consortium,
            channel=channel,
            endpoints=etcd.endpoints,
            etcd_tls=None,
            port=ports[index],
            record=LoadRecord(),
            tls=False,
        )
        for index in range(3)
    ]
    try:
        await asyncio.gather(*(orderer.start() for orderer in started))
        for orderer in started:
            await orderer.close_stream()
        yield started
    finally:
        await asyncio.gather(*(orderer.terminate() for orderer in started))


def commission_admin(consortium: Consortium) -> SigningIdentity:
    user = consortium.crypto.organization(ORDERER_MSP).user("Admin")
    return load_signing_identity(user.msp_dir, mspid=ORDERER_MSP)


def batch_size_update(
    consortium: Consortium, channel: ChannelFixture, config: ChannelConfig, count: int
) -> bytes:
    """A CONFIG_UPDATE setting MaxMessageCount, approved and sent by the commission."""
    updated = config.config
    value = updated.channel_group.groups[keys.ORDERER].values[keys.BATCH_SIZE]
    batch = orderer_pb2.BatchSize.FromString(value.value)
    batch.max_message_count = count
    value.value = batch.SerializeToString()
    update = compute_update(channel.channel_id, config.config, updated)
    signer = commission_admin(consortium)
    envelope = config_update_envelope(update, signers=[signer])
    return create_config_update_tx(
        channel.channel_id, envelope, signer
    ).SerializeToString()


async def broadcast(orderer: CliOrderer, envelopes: list[bytes]) -> list[Any]:
    """One Broadcast stream; the responses, in order."""
    async with open_channel(orderer) as grpc_channel:
        method = grpc_channel.stream_stream(  # type: ignore[call-arg]
            BROADCAST, response_deserializer=ab_pb2.BroadcastResponse.FromString
        )
        call: Any = method(iter(envelopes), timeout=30)
        return [response async for response in call]


async def roles(
    etcd: EtcdCluster, orderers: list[CliOrderer], channel_id: str
) -> tuple[CliOrderer, list[CliOrderer]]:
    """(cutter, followers), once a cutter is elected."""
    client = EtcdClient(etcd.endpoints)
    try:
        deadline = time.monotonic() + 15
        while (current := await client.get(ChannelKeys(channel_id).cutter)) is None:
            assert time.monotonic() < deadline, "no cutter elected"
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    name = CutterInfo.decode(current.value).orderer_name
    cutter = next(o for o in orderers if o.name == name)
    return cutter, [o for o in orderers if o is not cutter]


async def same_height(
    etcd: EtcdCluster, orderers: list[CliOrderer], channel_id: str
) -> int:
    """Wait until every orderer reported the height etcd has (they report each second)."""
    client = EtcdClient(etcd.endpoints)
    log = BlockLog(client, ChannelKeys(channel_id))
    try:
        deadline = time.monotonic() + 20
        while True:
            height = (await log.state()).height
            reported = await log.orderer_heights()
            if all(reported.get(o.name) == height for o in orderers):
                return height
            assert time.monotonic() < deadline, f"heights {reported}, etcd {height}"
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def test_forwarded_config_updates_reach_every_orderer_or_are_refused_at_cut_time(
    consortium: Consortium,
    channel: ChannelFixture,
    etcd: EtcdCluster,
    orderers: list[CliOrderer],
) -> None:
    """MaxMessageCount 4 -> 2 through a follower; then two updates made against that
    config at once (to 3 via the cutter, to 5 via a follower): one is cut, the other
    no longer applies when its turn comes."""
    cutter, followers = await roles(etcd, orderers, channel.channel_id)
    update = batch_size_update(consortium, channel, channel.config, 2)

    answered = await broadcast(followers[0], [update])
    txs = [channel.envelope(f"tx {i}".encode()) for i in range(4)]
    later = await broadcast(followers[1], [envelope for envelope, _ in txs])
    current = ChannelConfig.from_block(await config_block(etcd, channel))
    racing = await asyncio.gather(
        broadcast(cutter, [batch_size_update(consortium, channel, current, 3)]),
        broadcast(followers[0], [batch_size_update(consortium, channel, current, 5)]),
    )
    height = await same_height(etcd, orderers, channel.channel_id)
    await asyncio.gather(*(orderer.terminate() for orderer in orderers))

    assert [r.status for r in answered] == [SUCCESS]
    assert [r.status for r in later] == [SUCCESS] * 4
    race = sorted(response.status for (response,) in racing)
    assert race[0] == SUCCESS
    assert race[1] != SUCCESS
    assert height == 5
    report = verify_stores([o.storage for o in orderers], acked={tx for _, tx in txs})
    # Cut by the new MaxMessageCount, 2. (Forwarded envelopes may be reordered: a
    # follower has several Forward calls in flight.)
    assert sorted(report.tx_blocks[tx] for _, tx in txs) == [2, 2, 3, 3]
    with BlockStore.open(orderers[0].storage) as store:
        configs = [ChannelConfig.from_block(store.block_by_number(n)) for n in (1, 4)]
        last_configs = [
            last_config_index(store.block_by_number(n)) for n in range(1, 5)
        ]
    assert [c.sequence for c in configs] == [1, 2]
    assert configs[0].batch_size.max_message_count == 2
    assert configs[1].batch_size.max_message_count in {3, 5}
    assert last_configs == [1, 1, 1, 4]


async def config_block(etcd: EtcdCluster, channel: ChannelFixture) -> bytes:
    """Block 1 (the first config update) as etcd holds it."""
    client = EtcdClient(etcd.endpoints)
    try:
        log = BlockLog(client, ChannelKeys(channel.channel_id))
        async for block in log.read_blocks(1, 2):
            return block.value
        raise AssertionError("etcd has no block 1")
    finally:
        await client.close()
