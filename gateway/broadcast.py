"""One long-lived Broadcast stream to an orderer, shared by every Submit.

Fabric's `AtomicBroadcast/Broadcast` is a bidirectional stream that answers each
envelope with one BroadcastResponse, in order. Opening a stream per transaction costs
the gateway and the orderer a whole call setup and teardown each time, far more than
the envelope itself; so the gateway keeps one stream per orderer and pipelines every
envelope over it. Senders queue an envelope and wait for a future; one writer task
writes the queue in order (gRPC takes one write at a time) and one reader task hands
each response to the oldest waiting future.

When the stream fails or ends, every envelope still waiting fails with the error and
the next `send` opens a new stream. An envelope not answered within its deadline
means the stream is stuck (answers come in order), so the stream is cancelled too.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

import grpc

from protos.orderer import ab_pb2

__all__ = ["BroadcastStream"]

_LOG = logging.getLogger(__name__)

Opener = Callable[[], "grpc.aio.StreamStreamCall[Any, Any]"]
"""Starts a new Broadcast call (raw envelope bytes out, raw response bytes in)."""


class BroadcastStream:
    """The pipelined Broadcast stream to one orderer (see the module docstring)."""

    def __init__(self, address: str, opener: Opener) -> None:
        self._address = address
        self._opener = opener
        self._session: _Session | None = None

    async def send(
        self, envelope: bytes, *, deadline_s: float
    ) -> ab_pb2.BroadcastResponse:
        """The orderer's response to `envelope`.

        Raises:
            grpc.aio.AioRpcError: the stream failed.
            ConnectionError: the stream ended or gave no answer within `deadline_s`.
        """
        session = self._session
        if session is None or session.failed:
            session = self._session = _Session(self._address, self._opener())
        answer = session.enqueue(envelope)
        try:
            async with asyncio.timeout(deadline_s):
                data = await answer
        except TimeoutError:
            session.fail(
                ConnectionError(
                    f"orderer {self._address} did not answer Broadcast within "
                    f"{deadline_s:g} s"
                )
            )
            raise session.error from None
        return ab_pb2.BroadcastResponse.FromString(data)

    def close(self) -> None:
        """End the stream; envelopes still waiting fail."""
        if self._session is not None:
            self._session.fail(ConnectionError(f"Broadcast to {self._address} closed"))
            self._session = None


class _Session:
    """One Broadcast call: its outbox, its unanswered envelopes and its two tasks."""

    def __init__(self, address: str, call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
        self._address = address
        self._call = call
        self._outbox: collections.deque[bytes] = collections.deque()
        self._waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self.error: BaseException = ConnectionError(
            f"orderer {address} closed Broadcast without a response"
        )
        self.failed = False
        self._writer = asyncio.ensure_future(self._write_loop())
        self._reader = asyncio.ensure_future(self._read_loop())

    def enqueue(self, envelope: bytes) -> asyncio.Future[bytes]:
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        self._outbox.append(envelope)
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return answer

    def fail(self, error: BaseException) -> None:
        """Fail every unanswered envelope with `error` and cancel the call."""
        if self.failed:
            return
        self.failed = True
        self.error = error
        self._call.cancel()
        for task in (self._writer, self._reader):
            if task is not asyncio.current_task():
                task.cancel()
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(error)
        self._outbox.clear()

    async def _write_loop(self) -> None:
        outbox, write = self._outbox, self._call.write
        loop = asyncio.get_running_loop()
        try:
            while True:
                while outbox:
                    await write(outbox.popleft())
                wakeup: asyncio.Future[None] = loop.create_future()
                self._wakeup = wakeup
                await wakeup
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _LOG.info("broadcast write failed orderer=%s: %s", self._address, error)
            self.fail(error)

    async def _read_loop(self) -> None:
        read, waiting = self._call.read, self._waiting
        try:
            while True:
                data = await read()
                if not isinstance(data, bytes):  # grpc.aio.EOF: the orderer ended it
                    break
                if not waiting:
                    raise ConnectionError(
                        f"orderer {self._address} answered an envelope never sent"
                    )
                answer = waiting.popleft()
                if not answer.done():
                    answer.set_result(data)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.fail(error)
            return
        self.fail(self.error)
