"""The shared Broadcast stream over a scripted call: answers in order, failures fan out."""

from __future__ import annotations

import asyncio

import pytest

from gateway.broadcast import BroadcastStream
from protos.common import common_pb2
from protos.orderer import ab_pb2

END_OF_STREAM = object()
"""Stands in for grpc.aio.EOF: anything a read returns that is not bytes."""


class ScriptedCall:
    """A Broadcast call whose orderer answers each envelope with its own bytes as info."""

    def __init__(
        self, *, answer: bool = True, end: bool = False, fail: bool = False
    ) -> None:
        self.written: list[bytes] = []
        self.answers: asyncio.Queue[bytes | object] = asyncio.Queue()
        self.answer = answer
        self.end = end
        self.fail = fail
        self.cancelled = False

    async def write(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionError("reset by peer")
        self.written.append(data)
        if self.end:
            self.answers.put_nowait(END_OF_STREAM)
        elif self.answer:
            response = ab_pb2.BroadcastResponse(
                status=common_pb2.SUCCESS, info=data.decode()
            )
            self.answers.put_nowait(response.SerializeToString())

    async def read(self) -> bytes | object:
        return await self.answers.get()

    def cancel(self) -> None:
        self.cancelled = True
        self.answers.put_nowait(END_OF_STREAM)


class Opener:
    def __init__(self, **call_options: bool) -> None:
        self.calls: list[ScriptedCall] = []
        self.options = call_options

    def __call__(self) -> ScriptedCall:
        self.calls.append(ScriptedCall(**self.options))
        return self.calls[-1]


async def test_concurrent_envelopes_share_one_call_and_get_their_own_answers() -> None:
    """Many senders at once: one call carries every envelope; each answer is its own."""
    opener = Opener()
    stream = BroadcastStream("orderer0:7050", opener)  # type: ignore[arg-type]
    envelopes = [f"tx-{number}".encode() for number in range(50)]

    responses = await asyncio.gather(
        *(stream.send(envelope, deadline_s=5) for envelope in envelopes)
    )

    assert [r.info for r in responses] == [e.decode() for e in envelopes]
    assert len(opener.calls) == 1
    assert opener.calls[0].written == envelopes
    stream.close()
    assert opener.calls[0].cancelled


async def test_an_ended_call_fails_the_waiting_envelope_and_the_next_opens_a_new_one() -> (
    None
):
    """The orderer ends the stream without answering: ConnectionError, then a fresh call."""
    opener = Opener(end=True)
    stream = BroadcastStream("orderer0:7050", opener)  # type: ignore[arg-type]

    with pytest.raises(ConnectionError, match="without a response"):
        await stream.send(b"lost", deadline_s=5)
    opener.options["end"] = False
    response = await stream.send(b"again", deadline_s=5)

    assert response.info == "again"
    assert len(opener.calls) == 2


async def test_an_unanswered_envelope_times_out_and_cancels_the_call() -> None:
    """No answer within the deadline: ConnectionError naming the orderer, call cancelled."""
    opener = Opener(answer=False)
    stream = BroadcastStream("orderer0:7050", opener)  # type: ignore[arg-type]

    with pytest.raises(ConnectionError, match="orderer0:7050 did not answer"):
        await stream.send(b"stuck", deadline_s=0.01)

    assert opener.calls[0].cancelled


async def test_a_failed_write_fails_every_waiting_envelope() -> None:
    """The write raises: every envelope waiting on that call gets the error."""
    opener = Opener(fail=True)
    stream = BroadcastStream("orderer0:7050", opener)  # type: ignore[arg-type]

    outcomes = await asyncio.gather(
        stream.send(b"one", deadline_s=5),
        stream.send(b"two", deadline_s=5),
        return_exceptions=True,
    )

    assert [str(outcome) for outcome in outcomes] == ["reset by peer"] * 2
    assert len(opener.calls) == 1
