"""Registry: a peer taken to be outside a channel is asked again when a request needs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.connections import DialSettings, PeerClient
from gateway.registry import Registry
from protos.common import common_pb2
from protos.peer import events_pb2

CHANNEL = "medical-records"


class _Stream:
    """A DeliverFiltered stream: NOT_FOUND until the peer joins, then one block."""

    def __init__(self, joined: bool, closed: asyncio.Event) -> None:
        self._joined = joined
        self._closed = closed

    async def write(self, _request: bytes) -> None:
        return None

    def cancel(self) -> bool:
        self._closed.set()
        return True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[bytes]:
        if not self._joined:
            yield events_pb2.DeliverResponse(
                status=common_pb2.NOT_FOUND
            ).SerializeToString()
            return
        block = events_pb2.FilteredBlock(channel_id=CHANNEL, number=6)
        yield events_pb2.DeliverResponse(filtered_block=block).SerializeToString()
        await asyncio.Event().wait()  # follows forever


class _JoiningPeer(PeerClient):
    def __init__(self) -> None:
        super().__init__(
            "peer0.hospital-b:7051", "HospitalBMSP", DialSettings(root_certs=None)
        )
        self.joined = False
        self.asked = 0
        self.stream_closed = asyncio.Event()

    def open_deliver(self, method: str, *, deadline_s: float | None = None) -> _Stream:  # type: ignore[override]
        self.asked += 1
        return _Stream(self.joined, self.stream_closed)


def _null_signer(_message: bytes) -> bytes:
    return b"signature"


async def test_a_peer_that_joined_after_the_gateway_started_is_used_at_once() -> None:
    peer = _JoiningPeer()
    registry = Registry("HospitalBMSP", [peer])
    tracking = asyncio.create_task(
        registry.track_heights(CHANNEL, creator=b"creator", signer=_null_signer)
    )
    try:
        async with asyncio.timeout(5):
            await peer.stream_closed.wait()  # answered NOT_FOUND
        assert registry.candidates(CHANNEL) == []

        peer.joined = True
        await registry.recheck(CHANNEL)

        assert registry.candidates(CHANNEL) == [peer]
        assert registry.status(CHANNEL, peer).height == 7
    finally:
        tracking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await tracking


async def test_recheck_costs_nothing_while_every_peer_is_in_the_channel() -> None:
    peer = _JoiningPeer()
    registry = Registry("HospitalBMSP", [peer])

    await registry.recheck(CHANNEL, limit_s=0.0)

    assert peer.asked == 0
