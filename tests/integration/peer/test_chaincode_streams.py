"""Several chaincode streams under one package id: our SDK against the peer's side.

A medledger peer that expects n streams of a package (`registry.expect(streams=n)`,
what its launcher does) gets n Register streams from our SDK (`serve_peer(streams=n)`)
and spreads transactions over them; a peer that expects one (as a Fabric peer does)
refuses the extra streams and the chaincode serves on the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chaincode.loader import load_chaincode
from chaincode.shim.dial import serve_peer
from peer.chaincode.execute import ChaincodeInfo
from tests.integration.peer.chaincode_fixtures import (
    READ_TIMEOUT_S,
    PeerSide,
    proposal,
)

PACKAGE = "counter_1:c0"


@pytest.fixture
async def peer() -> AsyncIterator[PeerSide]:
    side = await PeerSide(
        chaincodes={"counter": ChaincodeInfo(PACKAGE, "1")}, allow_unsolicited=False
    ).start()
    yield side
    await side.stop()


async def _bump_all(peer: PeerSide, count: int) -> list[int]:
    proposals = [
        proposal([b"Bump", f"key-{index}".encode()], chaincode="counter")
        for index in range(count)
    ]
    results = await asyncio.gather(
        *(peer.executor.execute(p, peer.simulator(p.tx_id)) for p in proposals)
    )
    return [result.response.status for result in results]


async def _serving(peer: PeerSide, streams: int) -> asyncio.Task[None]:
    return asyncio.create_task(
        serve_peer(
            load_chaincode(["network.bench_contract"]),
            peer_address=peer.address,
            chaincode_id=PACKAGE,
            streams=streams,
        )
    )


async def test_the_sdk_opens_the_streams_the_peer_expects(peer: PeerSide) -> None:
    peer.registry.expect(PACKAGE, streams=3)
    serving = await _serving(peer, 3)
    await peer.registry.wait_ready(PACKAGE, timeout_s=READ_TIMEOUT_S, streams=3)
    assert len(peer.registry.handlers(PACKAGE)) == 3
    assert await _bump_all(peer, 12) == [200] * 12
    await peer.registry.close_all("test over")
    await asyncio.wait_for(serving, READ_TIMEOUT_S)


async def test_a_peer_expecting_one_stream_refuses_the_others(peer: PeerSide) -> None:
    peer.registry.expect(PACKAGE)
    serving = await _serving(peer, 3)
    await peer.registry.wait_ready(PACKAGE, timeout_s=READ_TIMEOUT_S)
    assert await _bump_all(peer, 4) == [200] * 4
    assert len(peer.registry.handlers(PACKAGE)) == 1
    await peer.registry.close_all("test over")
    await asyncio.wait_for(serving, READ_TIMEOUT_S)
