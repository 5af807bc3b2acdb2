"""Block pulling: failover between orderer endpoints, resumption, restart of the peer.

Method: a real solo orderer in process. The BlockPuller tests use a recording target
(a list of blocks) so they can observe every dial and every commit; the PeerNode test
stops the peer, orders more blocks while it is down and starts it again on the same
storage. Waits are on events with timeouts, never sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import grpc
import pytest

from common.msp import SigningIdentity
from common.protoutil import verify_block_hash_chain
from network.orderer_material import new_envelope
from peer.blockpuller import BlockPuller, PullerSettings
from peer.errors import BlockVerificationError
from protos.common import common_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    UNREACHABLE_ORDERER,
    PeerMaterial,
    build_peer_material,
    running_peer,
    wait_for_height,
    write_peer_yaml,
)

FAST = PullerSettings(backoff_initial_s=0.01, backoff_max_s=0.05, connect_timeout_s=2.0)
TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("pull-material"))


class RecordingTarget:
    """A channel that keeps blocks in a list; can refuse one block once."""

    channel_id = CHANNEL

    def __init__(self, genesis: common_pb2.Block, *, refuse_once: int = -1) -> None:
        self.blocks = [genesis]
        self.refuse_once = refuse_once
        self.refused = 0
        self.grown = asyncio.Event()

    def height(self) -> int:
        return len(self.blocks)

    async def commit(self, block: common_pb2.Block) -> tuple[int, ...]:
        assert block.header.number == len(self.blocks)
        if block.header.number == self.refuse_once:
            self.refuse_once = -1
            self.refused += 1
            raise BlockVerificationError(
                "refused once", block_number=block.header.number
            )
        self.blocks.append(block)
        self.grown.set()
        self.grown = asyncio.Event()
        return (0,) * len(block.data.data)

    async def wait_for(self, height: int) -> None:
        async with asyncio.timeout(TIMEOUT_S):
            while len(self.blocks) < height:
                await self.grown.wait()


def puller(
    material: PeerMaterial,
    target: RecordingTarget,
    endpoints: list[str],
    dialled: list[str],
) -> BlockPuller:
    def dial(address: str) -> grpc.aio.Channel:
        dialled.append(address)
        return grpc.aio.insecure_channel(address)

    return BlockPuller(
        target,
        signer=material.peer_identity(HOSPITAL_A),
        endpoints=lambda: list(endpoints),
        dial=dial,
        settings=FAST,
    )


async def order(address: str, signer: SigningIdentity, count: int) -> None:
    envelopes = [new_envelope(signer, channel=CHANNEL) for _ in range(count)]
    async with open_orderer_channel(address) as channel:
        responses = await broadcast(channel, envelopes)
    assert [r.status for r in responses] == [common_pb2.SUCCESS] * count


async def run_until(
    task_target: RecordingTarget, pull: BlockPuller, height: int
) -> None:
    task = asyncio.ensure_future(pull.run())
    try:
        await task_target.wait_for(height)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_dead_endpoint_fails_over_to_a_live_one(
    material: PeerMaterial, tmp_path: Path
) -> None:
    client = material.user(HOSPITAL_A, "dr-lee")
    async with running_orderer(material.orderer, tmp_path) as (_, addresses):
        await order(addresses["grpc"], client, 3)
        target = RecordingTarget(material.genesis)
        dialled: list[str] = []
        pull = puller(
            material, target, [UNREACHABLE_ORDERER, addresses["grpc"]], dialled
        )
        await run_until(target, pull, 2)
    assert dialled[:2] == [UNREACHABLE_ORDERER, addresses["grpc"]]
    assert all(b.header.number == n for n, b in enumerate(target.blocks))


async def test_a_refused_block_is_fetched_again_from_the_height(
    material: PeerMaterial, tmp_path: Path
) -> None:
    client = material.user(HOSPITAL_A, "dr-lee")
    async with running_orderer(material.orderer, tmp_path) as (_, addresses):
        for _ in range(3):
            await order(addresses["grpc"], client, 1)
        target = RecordingTarget(material.genesis, refuse_once=2)
        dialled: list[str] = []
        pull = puller(material, target, [addresses["grpc"]], dialled)
        await run_until(target, pull, 4)
    assert target.refused == 1
    assert len(dialled) >= 2, "the refused block ends the stream; a new one resumes"
    assert [b.header.number for b in target.blocks] == [0, 1, 2, 3]


async def test_the_puller_resumes_when_the_orderer_comes_back(
    material: PeerMaterial, tmp_path: Path
) -> None:
    """The orderer restarts on another port; the endpoint list follows (a config change)."""
    client = material.user(HOSPITAL_A, "dr-lee")
    endpoints: list[str] = []
    target = RecordingTarget(material.genesis)
    dialled: list[str] = []
    pull = puller(material, target, endpoints, dialled)
    task = asyncio.ensure_future(pull.run())
    try:
        async with running_orderer(material.orderer, tmp_path) as (_, first):
            endpoints.append(first["grpc"])
            await order(first["grpc"], client, 1)
            await target.wait_for(2)
        async with running_orderer(material.orderer, tmp_path) as (_, second):
            endpoints[:] = [second["grpc"]]
            await order(second["grpc"], client, 1)
            await target.wait_for(3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [b.header.number for b in target.blocks] == [0, 1, 2]
    assert second["grpc"] in dialled


async def test_a_restarted_peer_reopens_its_channel_and_catches_up(
    material: PeerMaterial, tmp_path: Path
) -> None:
    client = material.user(HOSPITAL_A, "dr-lee")
    async with running_orderer(material.orderer, tmp_path / "orderer") as (_, orderer):
        config = write_peer_yaml(
            tmp_path / "peer" / "peer.yaml",
            material,
            HOSPITAL_A,
            storage=tmp_path / "peer" / "data",
            orderer_address=orderer["grpc"],
        )
        async with running_peer(config) as (node, _):
            await node.join(material.genesis)
            await order(orderer["grpc"], client, 1)
            await wait_for_height(node, 2)
        await order(orderer["grpc"], client, 1)
        await order(orderer["grpc"], client, 1)
        async with running_peer(config) as (node, _):
            assert node.channels.names() == [CHANNEL]
            await wait_for_height(node, 4)
            store = node.channels.require(CHANNEL).ledger.block_store
            assert store.height == 4
            blocks = [store.block_by_number(n) for n in range(4)]
    for previous, block in itertools.pairwise(blocks):
        verify_block_hash_chain(previous, block)
