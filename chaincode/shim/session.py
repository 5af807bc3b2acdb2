"""One chaincode stream, driven: the asyncio shell around `ShimHandler`.

`ShimSession.run(stream)` registers, then reads the peer's messages until the stream
ends. Each TRANSACTION/INIT runs as its own task, so transactions proceed concurrently;
their state requests go through the handler, which keeps one request per transaction on
the wire. A single writer task owns the stream's write side: senders append to its
outbox and never wait for a write, so the reader keeps serving while a message is on its
way. Dial mode and server mode differ only in the `MessageStream` they pass in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from chaincode.errors import PeerRequestError, StreamClosedError
from chaincode.shim import messages
from chaincode.shim.execute import Chaincode, execute
from chaincode.shim.handler import (
    Action,
    BecomeReady,
    FailRequest,
    ResolveRequest,
    SendMessage,
    ShimHandler,
    StartTransaction,
)
from chaincode.shim.messages import TxKey
from protos.peer import chaincode_shim_pb2

_log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
"""How long a stub call waits for the peer's answer."""
HANDSHAKE_TIMEOUT_S = 10.0
"""How long the peer may take to answer REGISTER with REGISTERED and READY."""


class MessageStream(Protocol):
    """Both directions of a chaincode stream (a gRPC call or a servicer context)."""

    async def read(self) -> chaincode_shim_pb2.ChaincodeMessage | None:
        """The next message from the peer; None when the stream has ended."""
        ...

    async def write(self, message: chaincode_shim_pb2.ChaincodeMessage) -> None:
        """Send one message.

        Raises:
            StreamClosedError: the stream can no longer be written.
        """
        ...


class _StreamEnded(Exception):
    """Internal: stops the session's task group when either direction ends."""


class ShimSession:
    """Serves one chaincode over one stream (see the module docstring)."""

    def __init__(
        self,
        chaincode: Chaincode,
        *,
        chaincode_id: str,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._chaincode = chaincode
        self.handler = ShimHandler(chaincode_id)
        self.ready = asyncio.Event()
        self.failure = ""
        """Why the session ended early, when it did (e.g. no handshake in time)."""
        self._on_ready = on_ready
        self._request_timeout_s = request_timeout_s
        self._handshake_timeout_s = handshake_timeout_s
        self._request_ids = itertools.count(1)
        self._pending: dict[
            int, asyncio.Future[chaincode_shim_pb2.ChaincodeMessage]
        ] = {}
        self._outbox: deque[chaincode_shim_pb2.ChaincodeMessage] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._group: asyncio.TaskGroup | None = None

    async def run(self, stream: MessageStream) -> None:
        """Register and serve until the stream ends; running transactions are cancelled.

        Returns early, with `failure` set, when the handshake does not finish in time.
        """
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._write_loop(stream))
                group.create_task(self._watch_handshake())
                self._apply(self.handler.start())
                read, receive, apply = stream.read, self.handler.receive, self._apply
                while (message := await read()) is not None:
                    apply(receive(message))
                raise _StreamEnded
        except* _StreamEnded:
            pass
        finally:
            self._group = None
            self._abandon_requests()

    async def request(self, key: TxKey, message_type: int, payload: bytes) -> bytes:
        """Send a state request of transaction `key`; the RESPONSE payload.

        Raises:
            PeerRequestError: the peer answered ERROR, or not within the timeout.
            StreamClosedError: the request cannot be answered any more.
        """
        request_id = next(self._request_ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[chaincode_shim_pb2.ChaincodeMessage]
        future = loop.create_future()
        self._pending[request_id] = future
        timer = loop.call_later(self._request_timeout_s, _expire, future)
        try:
            message = messages.request_message(message_type, payload, key=key)
            self._apply(self.handler.send_request(request_id, message))
            answer = await future
        except _NoAnswer:
            name = messages.type_name(message_type)
            text = f"no answer to {name} within {self._request_timeout_s} s"
            raise PeerRequestError(text, request=name) from None
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        if answer.type == messages.ERROR:
            raise PeerRequestError(
                answer.payload.decode(errors="replace"),
                request=messages.type_name(message_type),
            )
        return answer.payload

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            # Most frequent first: answers and sends are the traffic of every request.
            if isinstance(action, ResolveRequest):
                future = self._pending.get(action.request_id)
                if future is not None and not future.done():
                    future.set_result(action.message)
            elif isinstance(action, SendMessage):
                self._post(action.message)
            elif isinstance(action, StartTransaction):
                assert self._group is not None
                self._group.create_task(self._run_transaction(action.message))
            elif isinstance(action, FailRequest):
                future = self._pending.get(action.request_id)
                if future is not None and not future.done():
                    future.set_exception(StreamClosedError(action.reason))
            elif isinstance(action, BecomeReady):
                self.ready.set()
                if self._on_ready is not None:
                    self._on_ready()

    def _post(self, message: chaincode_shim_pb2.ChaincodeMessage) -> None:
        """Queue `message` for the writer task (in order, without waiting)."""
        self._outbox.append(message)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def _run_transaction(
        self, message: chaincode_shim_pb2.ChaincodeMessage
    ) -> None:
        requester = _TransactionRequester(self, messages.tx_key(message))
        reply = await execute(self._chaincode, message, requester)
        self._apply(self.handler.finish_transaction(reply))

    async def _watch_handshake(self) -> None:
        try:
            async with asyncio.timeout(self._handshake_timeout_s):
                await self.ready.wait()
        except TimeoutError:
            self.failure = (
                f"the handshake did not complete within {self._handshake_timeout_s} s"
            )
            raise _StreamEnded from None

    async def _write_loop(self, stream: MessageStream) -> None:
        outbox, write = self._outbox, stream.write
        loop = asyncio.get_running_loop()
        while True:
            while outbox:
                try:
                    await write(outbox.popleft())
                except StreamClosedError as error:
                    _log.info("chaincode stream closed while writing: %s", error)
                    raise _StreamEnded from error
            wakeup: asyncio.Future[None] = loop.create_future()
            self._wakeup = wakeup
            await wakeup

    def _abandon_requests(self) -> None:
        """After the stream ended: nobody waits any more, so cancel what is left."""
        for action in self.handler.close():
            if isinstance(action, FailRequest):
                future = self._pending.get(action.request_id)
                if future is not None:
                    future.cancel()
        for future in self._pending.values():
            future.cancel()


class _NoAnswer(Exception):
    """Internal: a request's timer expired before the peer answered."""


def _expire(future: asyncio.Future[chaincode_shim_pb2.ChaincodeMessage]) -> None:
    if not future.done():
        future.set_exception(_NoAnswer())


class _TransactionRequester:
    """The `PeerRequester` of one transaction on a session."""

    def __init__(self, session: ShimSession, key: TxKey) -> None:
        self._session = session
        self._key = key

    async def request(self, message_type: int, payload: bytes) -> bytes:
        return await self._session.request(self._key, message_type, payload)
