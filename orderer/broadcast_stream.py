"""The Broadcast stream: read ahead, check, order concurrently, answer in order.

A client streams envelopes and expects one BroadcastResponse per envelope, in order.
The reader admits each envelope as soon as it arrives (checks are synchronous and
cheap after the first envelope of a creator) and hands it to the chain, which returns
a future; many envelopes wait for their block at once. The writer answers strictly in
arrival order: a rejection as soon as the envelopes before it are answered, SUCCESS
once the envelope is in a block on disk. At most `window` envelopes are in flight per
stream; the reader stops reading when the window is full. No task is made per
envelope: the writer awaits each future in turn (a future already resolved costs no
trip through the event loop), which is most of this module's cost per envelope after
gRPC's own.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from common.errors import MedledgerError
from orderer.errors import BackendUnavailable, BroadcastRejected
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["Admit", "broadcast_response", "serve_broadcast"]

_LOG = logging.getLogger(__name__)

Admit = Callable[[bytes], "asyncio.Future[int]"]
"""Checks one envelope (raising BroadcastRejected) and returns the future of its block
number."""

SUCCESS_RESPONSE = ab_pb2.BroadcastResponse(
    status=common_pb2.SUCCESS
).SerializeToString()

_Answer = bytes | asyncio.Future[int]


def broadcast_response(status: int, info: str = "") -> bytes:
    """A serialized orderer.BroadcastResponse."""
    return ab_pb2.BroadcastResponse(
        status=status,  # type: ignore[arg-type]
        info=info,
    ).SerializeToString()


async def serve_broadcast(
    context: grpc.aio.ServicerContext[Any, Any], admit: Admit, *, window: int
) -> None:
    """Serve one Broadcast call until the client half-closes (raw bytes in and out)."""
    answers = _Answers(window)
    reader = asyncio.ensure_future(_read(context, admit, answers))
    try:
        while (answer := await answers.get()) is not None:
            if isinstance(answer, bytes):
                await context.write(answer)
            else:
                await context.write(await _response_when_ordered(answer))
        await reader
    finally:
        reader.cancel()
        answers.abandon()


async def _read(
    context: grpc.aio.ServicerContext[Any, Any], admit: Admit, answers: _Answers
) -> None:
    try:
        while True:
            envelope = await context.read()
            if not isinstance(envelope, bytes):  # grpc.aio.EOF: the client half-closed
                break
            await answers.wait_for_room()
            answers.put(_admit(envelope, admit))
    finally:
        answers.put(None)


def _admit(envelope: bytes, admit: Admit) -> _Answer:
    try:
        return admit(envelope)
    except BroadcastRejected as rejected:
        _LOG.debug("broadcast rejected status=%s: %s", rejected.status, rejected)
        return broadcast_response(rejected.status, str(rejected))


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
        self._items: collections.deque[_Answer | None] = collections.deque()
        self._window = window
        self._changed: asyncio.Future[None] | None = None

    def put(self, answer: _Answer | None) -> None:
        self._items.append(answer)
        self._wake()

    async def get(self) -> _Answer | None:
        while not self._items:
            await self._wait()
        answer = self._items.popleft()
        if len(self._items) == self._window - 1:
            self._wake()
        return answer

    async def wait_for_room(self) -> None:
        while len(self._items) >= self._window:
            await self._wait()

    def abandon(self) -> None:
        """The stream ended early: nobody will read the outcomes still pending."""
        for answer in self._items:
            if isinstance(answer, asyncio.Future):
                answer.add_done_callback(_consume)
        self._items.clear()

    async def _wait(self) -> None:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)


def _consume(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()
