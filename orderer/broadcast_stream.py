"""The Broadcast stream: read ahead, check, order concurrently, answer in order.

A client streams envelopes and expects one BroadcastResponse per envelope, in order.
The reader admits each envelope as soon as it arrives (checks are synchronous and
cheap after the first envelope of a creator); an admitted envelope is ordered in its
own task, so many envelopes wait for their block at once. The writer answers strictly
in arrival order: a rejection as soon as the envelopes before it are answered, SUCCESS
once the envelope is in a block on disk. At most `window` envelopes are in flight per
stream; the reader stops reading when the window is full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc

from common.errors import MedledgerError
from orderer.errors import BackendUnavailable, BroadcastRejected
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["Admit", "broadcast_response", "serve_broadcast"]

_LOG = logging.getLogger(__name__)

Admit = Callable[[bytes], Coroutine[Any, Any, int]]
"""Checks one envelope (raising BroadcastRejected) and returns the coroutine ordering it."""

SUCCESS_RESPONSE = ab_pb2.BroadcastResponse(
    status=common_pb2.SUCCESS
).SerializeToString()

_Answer = bytes | Awaitable[bytes]


def broadcast_response(status: int, info: str = "") -> bytes:
    """A serialized orderer.BroadcastResponse."""
    return ab_pb2.BroadcastResponse(
        status=status,  # type: ignore[arg-type]
        info=info,
    ).SerializeToString()


async def serve_broadcast(
    context: grpc.aio.ServicerContext[Any, Any],
    admit: Callable[[bytes], Coroutine[Any, Any, int]],
    *,
    window: int,
) -> None:
    """Serve one Broadcast call until the client half-closes (raw bytes in and out)."""
    answers: asyncio.Queue[_Answer | None] = asyncio.Queue(maxsize=window)
    async with asyncio.TaskGroup() as group:
        group.create_task(_read(context, admit, answers, group))
        while (answer := await answers.get()) is not None:
            response = answer if isinstance(answer, bytes) else await answer
            await context.write(response)


async def _read(
    context: grpc.aio.ServicerContext[Any, Any],
    admit: Callable[[bytes], Coroutine[Any, Any, int]],
    answers: asyncio.Queue[_Answer | None],
    group: asyncio.TaskGroup,
) -> None:
    while True:
        envelope = await context.read()
        if not isinstance(envelope, bytes):  # grpc.aio.EOF: the client half-closed
            break
        await answers.put(_admit(envelope, admit, group))
    await answers.put(None)


def _admit(
    envelope: bytes,
    admit: Callable[[bytes], Coroutine[Any, Any, int]],
    group: asyncio.TaskGroup,
) -> _Answer:
    try:
        ordering = admit(envelope)
    except BroadcastRejected as rejected:
        _LOG.debug("broadcast rejected status=%s: %s", rejected.status, rejected)
        return broadcast_response(rejected.status, str(rejected))
    return group.create_task(_answer_when_ordered(ordering))


async def _answer_when_ordered(ordering: Coroutine[Any, Any, int]) -> bytes:
    try:
        await ordering
    except BackendUnavailable as error:
        return broadcast_response(common_pb2.SERVICE_UNAVAILABLE, str(error))
    except BroadcastRejected as rejected:  # a config update refused at cut time
        return broadcast_response(rejected.status, str(rejected))
    except MedledgerError as error:
        _LOG.error("ordering failed: %s", error)
        return broadcast_response(common_pb2.INTERNAL_SERVER_ERROR, str(error))
    return SUCCESS_RESPONSE
