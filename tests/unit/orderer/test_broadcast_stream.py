"""The Broadcast stream without gRPC: one answer per envelope, in order, within a window.

Method: a fake servicer context hands out envelopes and records the responses and, at
each read, how many envelopes were read but not yet answered; the admit function
refuses some envelopes at once and returns futures for the others that the event loop
resolves (or fails) on its next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from orderer.broadcast_stream import serve_broadcast
from orderer.errors import BackendUnavailable, BroadcastRejected
from protos.common import common_pb2
from protos.orderer import ab_pb2


class FakeContext:
    """Reads from a list, then EOF; records writes and the in-flight count per read."""

    def __init__(self, envelopes: list[bytes]) -> None:
        self.envelopes = list(envelopes)
        self.responses: list[ab_pb2.BroadcastResponse] = []
        self.in_flight: list[int] = []
        self._reads = 0

    async def read(self) -> object:
        self.in_flight.append(self._reads - len(self.responses))
        if not self.envelopes:
            return grpc.aio.EOF  # type: ignore[attr-defined]
        self._reads += 1
        return self.envelopes.pop(0)

    async def write(self, data: bytes) -> None:
        self.responses.append(ab_pb2.BroadcastResponse.FromString(data))


def admit_by_name() -> Callable[[bytes], asyncio.Future[int]]:
    """b"bad…" is refused at once; b"gone…" fails in its chain; the rest is ordered."""
    loop = asyncio.get_running_loop()

    def admit(envelope: bytes) -> asyncio.Future[int]:
        if envelope.startswith(b"bad"):
            raise BroadcastRejected("malformed", status=common_pb2.BAD_REQUEST)
        future: asyncio.Future[int] = loop.create_future()
        if envelope.startswith(b"gone"):
            loop.call_soon(future.set_exception, BackendUnavailable("stopped"))
        else:
            loop.call_soon(future.set_result, 7)
        return future

    return admit


async def serve(context: FakeContext, *, window: int) -> None:
    fake: Any = context
    async with asyncio.timeout(5):
        await serve_broadcast(fake, admit_by_name(), window=window)


async def test_every_envelope_gets_its_answer_in_arrival_order() -> None:
    """Refusals, chain failures and successes interleaved keep their positions."""
    context = FakeContext([b"ok1", b"bad", b"gone", b"ok2", b"bad2", b"ok3"])

    await serve(context, window=4)

    assert [r.status for r in context.responses] == [
        common_pb2.SUCCESS,
        common_pb2.BAD_REQUEST,
        common_pb2.SERVICE_UNAVAILABLE,
        common_pb2.SUCCESS,
        common_pb2.BAD_REQUEST,
        common_pb2.SUCCESS,
    ]
    assert context.responses[2].info == "stopped"


async def test_the_reader_never_has_more_than_the_window_unanswered() -> None:
    """Window 2 over 12 envelopes: at most 2 answers wait, plus the one being written."""
    context = FakeContext([f"ok{i}".encode() for i in range(12)])

    await serve(context, window=2)

    assert len(context.responses) == 12
    assert max(context.in_flight) <= 2 + 1
