"""The Broadcast stream: read ahead, check, verify in batches, order, answer in order.

A client streams envelopes and expects one BroadcastResponse per envelope, in order.
The reader checks each envelope as soon as it arrives (`Check`: synchronous and cheap
after the first envelope of a creator) except for its signature. Signatures go to
`verify` in batches: an envelope that arrives on an idle stream (none in the last
`BATCH_DELAY_S`) goes alone at once; on a busy stream, envelopes gather for up to
`BATCH_DELAY_S` (or `MAX_BATCH` of them) so that each trip to the signature worker
carries several; they leave at once when the client half-closes or the window is full
(nothing more can join them then). Batches are concluded in the order sent: each envelope's `finish`
(its signature's verdict, the tx id, then the chain) runs in arrival order, so the
chain receives a stream's envelopes in the order sent.
The chain returns a future; many envelopes wait for their block at once.

The writer answers strictly in arrival order: a rejection as soon as the envelopes
before it are answered, SUCCESS once the envelope is in a block on disk. At most
`window` envelopes are in flight per stream; the reader stops reading when the window
is full. No task is made per envelope: the writer awaits each future in turn (a
future already resolved costs no trip through the event loop).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from common.errors import MedledgerError
from orderer.errors import BackendUnavailable, BroadcastRejected
from orderer.signature_worker import SignatureItem, Verdict
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = [
    "Check",
    "Checked",
    "VerifyBatch",
    "broadcast_response",
    "serve_broadcast",
]

_LOG = logging.getLogger(__name__)

BATCH_DELAY_S = 0.002
"""How long a busy stream's signatures gather before they leave as a batch."""
MAX_BATCH = 256
"""A batch this large leaves at once."""


@dataclass(frozen=True, slots=True)
class Checked:
    """An envelope that passed every check but its signature's."""

    signature: SignatureItem
    finish: Callable[[Verdict], asyncio.Future[int]]
    """Given the signature's verdict: the remaining checks (raising BroadcastRejected),
    then the chain's future of the envelope's block number."""


Check = Callable[[bytes], Checked]
"""Checks one envelope but for its signature (raising BroadcastRejected)."""

VerifyBatch = Callable[[Sequence[SignatureItem]], "asyncio.Future[list[Verdict]]"]
"""The verdicts of a batch of signatures; batches resolve in the order sent."""

SUCCESS_RESPONSE = ab_pb2.BroadcastResponse(
    status=common_pb2.SUCCESS
).SerializeToString()

_Answer = bytes | asyncio.Future[int]
"""A response to send, or the future of the envelope's block number."""
_Pending = bytes | asyncio.Future[_Answer]
"""A response to send, or the answer once the signature's verdict is in."""


def broadcast_response(status: int, info: str = "") -> bytes:
    """A serialized orderer.BroadcastResponse."""
    return ab_pb2.BroadcastResponse(
        status=status,  # type: ignore[arg-type]
        info=info,
    ).SerializeToString()


async def serve_broadcast(
    context: grpc.aio.ServicerContext[Any, Any],
    check: Check,
    *,
    verify: VerifyBatch,
    window: int,
) -> None:
    """Serve one Broadcast call until the client half-closes (raw bytes in and out)."""
    answers = _Answers(window)
    reader = asyncio.ensure_future(_read(context, check, _Batches(verify), answers))
    try:
        while (pending := await answers.get()) is not None:
            answer = pending if isinstance(pending, bytes) else await pending
            if isinstance(answer, bytes):
                await context.write(answer)
            elif answer.done() and not answer.cancelled() and not answer.exception():
                await context.write(SUCCESS_RESPONSE)  # its block was stored already
            else:
                await context.write(await _response_when_ordered(answer))
        await reader
    finally:
        reader.cancel()
        answers.abandon()


async def _read(
    context: grpc.aio.ServicerContext[Any, Any],
    check: Check,
    batches: _Batches,
    answers: _Answers,
) -> None:
    try:
        while True:
            envelope = await context.read()
            if not isinstance(envelope, bytes):  # grpc.aio.EOF: the client half-closed
                batches.send()  # nothing more will join the gathering batch
                break
            if answers.full():
                batches.send()  # the writer waits for these verdicts: gathering would stall
                await answers.wait_for_room()
            try:
                checked = check(envelope)
            except BroadcastRejected as rejected:
                answers.put(_rejection(rejected))
            else:
                answers.put(batches.add(checked))
    finally:
        answers.put(None)


def _rejection(rejected: BroadcastRejected) -> bytes:
    _LOG.debug("broadcast rejected status=%s: %s", rejected.status, rejected)
    return broadcast_response(rejected.status, str(rejected))


def _conclude(checked: Checked, verdict: Verdict) -> _Answer:
    try:
        return checked.finish(verdict)
    except BroadcastRejected as rejected:
        return _rejection(rejected)


class _Batches:
    """One stream's signatures on their way through `verify`, concluded in order."""

    __slots__ = ("_answers", "_checked", "_last", "_loop", "_sent", "_timer", "_verify")

    def __init__(self, verify: VerifyBatch) -> None:
        self._verify = verify
        self._loop = asyncio.get_running_loop()
        self._checked: list[Checked] = []
        self._answers: list[asyncio.Future[_Answer]] = []
        self._sent: collections.deque[
            tuple[
                list[Checked],
                list[asyncio.Future[_Answer]],
                asyncio.Future[list[Verdict]],
            ]
        ] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._last = -math.inf

    def add(self, checked: Checked) -> asyncio.Future[_Answer]:
        """The envelope's answer, once its batch is verified and those before it."""
        answer: asyncio.Future[_Answer] = self._loop.create_future()
        self._checked.append(checked)
        self._answers.append(answer)
        now = self._loop.time()
        idle, self._last = now - self._last > BATCH_DELAY_S, now
        if idle or len(self._checked) >= MAX_BATCH:
            self.send()
        elif self._timer is None:
            self._timer = self._loop.call_at(now + BATCH_DELAY_S, self.send)
        return answer

    def send(self) -> None:
        """Send the signatures gathered so far, if any, without waiting for more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        checked, answers = self._checked, self._answers
        if not checked:
            return
        self._checked, self._answers = [], []
        verdicts = self._verify([c.signature for c in checked])
        self._sent.append((checked, answers, verdicts))
        verdicts.add_done_callback(self._verified)

    def _verified(self, _done: asyncio.Future[list[Verdict]]) -> None:
        while self._sent and self._sent[0][2].done():
            checked, answers, verdicts = self._sent.popleft()
            if verdicts.cancelled():
                for answer in answers:
                    answer.cancel()
                continue
            for one, answer, verdict in zip(
                checked, answers, verdicts.result(), strict=True
            ):
                if not answer.cancelled():
                    answer.set_result(_conclude(one, verdict))


async def _response_when_ordered(ordering: Awaitable[int]) -> bytes:
    try:
        await ordering
    except BackendUnavailable as error:
        return broadcast_response(common_pb2.SERVICE_UNAVAILABLE, str(error))
    except BroadcastRejected as rejected:  # refused again when its block was cut
        return broadcast_response(rejected.status, str(rejected))
    except MedledgerError as error:
        _LOG.error("ordering failed: %s", error)
        return broadcast_response(common_pb2.INTERNAL_SERVER_ERROR, str(error))
    return SUCCESS_RESPONSE


class _Answers:
    """The answers in arrival order, at most `window` of them unanswered."""

    def __init__(self, window: int) -> None:
        self._items: collections.deque[_Pending | None] = collections.deque()
        self._window = window
        self._changed: asyncio.Future[None] | None = None

    def put(self, answer: _Pending | None) -> None:
        self._items.append(answer)
        self._wake()

    async def get(self) -> _Pending | None:
        while not self._items:
            await self._wait()
        answer = self._items.popleft()
        if len(self._items) == self._window - 1:
            self._wake()
        return answer

    def full(self) -> bool:
        return len(self._items) >= self._window

    async def wait_for_room(self) -> None:
        while len(self._items) >= self._window:
            await self._wait()

    def abandon(self) -> None:
        """The stream ended early: nobody will read the outcomes still pending."""
        for answer in self._items:
            if isinstance(answer, asyncio.Future):
                answer.add_done_callback(_consume_answer)
        self._items.clear()

    async def _wait(self) -> None:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)


def _consume_answer(future: asyncio.Future[_Answer]) -> None:
    if not future.cancelled() and isinstance(answer := future.result(), asyncio.Future):
        answer.add_done_callback(_consume)


def _consume(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()
