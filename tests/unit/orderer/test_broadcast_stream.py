"""The Broadcast stream without gRPC: one answer per envelope, in order, within a window.

Method: a fake servicer context hands out envelopes and records the responses and, at
each read, how many envelopes were read but not yet answered; the check function
refuses some envelopes at once and defers the others to a fake verifier whose batches
resolve on the event loop's next turn; a signature is bad when the envelope starts
with b"forged". Finishing an envelope returns a future the loop resolves (or fails)
on its next turn, and records the order in which the chain received envelopes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from orderer import broadcast_stream
from orderer.broadcast_stream import MAX_BATCH, Check, Checked, serve_broadcast
from orderer.errors import BackendUnavailable, BroadcastRejected
from orderer.signature_worker import SignatureItem, Verdict
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


class FakeOrdering:
    """Check, verify and chain by envelope name; records batches and chain order."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.chain: list[bytes] = []

    def check(self) -> Check:
        """b"bad…" is refused at once; b"gone…" fails in its chain; the rest is ordered."""
        loop = asyncio.get_running_loop()

        def check(envelope: bytes) -> Checked:
            if envelope.startswith(b"bad"):
                raise BroadcastRejected("malformed", status=common_pb2.BAD_REQUEST)

            def finish(verdict: Verdict) -> asyncio.Future[int]:
                if verdict is not None:
                    raise BroadcastRejected(verdict, status=common_pb2.FORBIDDEN)
                self.chain.append(envelope)
                future: asyncio.Future[int] = loop.create_future()
                if envelope.startswith(b"gone"):
                    loop.call_soon(future.set_exception, BackendUnavailable("stopped"))
                else:
                    loop.call_soon(future.set_result, 7)
                return future

            return Checked((b"cert", envelope, b"sig"), finish)

        return check

    def verify(self, items: Sequence[SignatureItem]) -> asyncio.Future[list[Verdict]]:
        self.batches.append(len(items))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Verdict]] = loop.create_future()
        verdicts = [
            "forged" if message.startswith(b"forged") else None
            for _, message, _ in items
        ]
        loop.call_soon(future.set_result, verdicts)
        return future


async def serve(
    context: FakeContext, *, window: int, ordering: FakeOrdering | None = None
) -> None:
    fake: Any = context
    ordering = ordering or FakeOrdering()
    async with asyncio.timeout(5):
        await serve_broadcast(
            fake, ordering.check(), verify=ordering.verify, window=window
        )


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


async def test_a_bad_signature_is_refused_in_its_place_among_batched_envelopes() -> (
    None
):
    """FORBIDDEN answers exactly the forged envelope; the chain gets the rest in order."""
    names = [b"ok0", b"ok1", b"forged", b"ok3", b"bad", b"ok5", b"forged2", b"ok7"]
    context, ordering = FakeContext(names), FakeOrdering()

    await serve(context, window=100, ordering=ordering)

    assert [r.status for r in context.responses] == [
        common_pb2.SUCCESS,
        common_pb2.SUCCESS,
        common_pb2.FORBIDDEN,
        common_pb2.SUCCESS,
        common_pb2.BAD_REQUEST,
        common_pb2.SUCCESS,
        common_pb2.FORBIDDEN,
        common_pb2.SUCCESS,
    ]
    assert context.responses[2].info == "forged"
    assert ordering.chain == [b"ok0", b"ok1", b"ok3", b"ok5", b"ok7"]


async def test_signatures_arriving_on_a_busy_stream_travel_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first envelope leaves alone; those right behind it gather into batches of
    at most MAX_BATCH; the last batch leaves when the client half-closes.

    The gathering delay is made long so that a loaded machine pausing this process
    between two reads cannot make the stream look idle (the delay is wall-clock time).
    """
    monkeypatch.setattr(broadcast_stream, "BATCH_DELAY_S", 60.0)
    names = [f"ok{i}".encode() for i in range(MAX_BATCH + 40)]
    context, ordering = FakeContext(names), FakeOrdering()

    await serve(context, window=1000, ordering=ordering)

    assert ordering.batches == [1, MAX_BATCH, 39]
    assert ordering.chain == names


async def test_a_full_window_sends_the_gathering_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the window full, the writer waits for the gathered signatures: they leave
    at once instead of after the gathering delay (60 s here, beyond the test's 5 s)."""
    monkeypatch.setattr(broadcast_stream, "BATCH_DELAY_S", 60.0)
    names = [f"ok{i}".encode() for i in range(10)]
    context, ordering = FakeContext(names), FakeOrdering()

    await serve(context, window=4, ordering=ordering)

    assert [r.status for r in context.responses] == [common_pb2.SUCCESS] * 10
    assert ordering.chain == names
    assert sum(ordering.batches) == 10
    assert ordering.batches[0] == 1
