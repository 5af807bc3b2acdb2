"""The peer's side of one chaincode stream: handshake, transactions and state requests.

Execute phase. One `ChaincodeHandler` serves one stream, whichever side dialled:

1. Handshake: the chaincode sends REGISTER (payload ChaincodeID{name = package
   id}); the peer registers the handler and answers REGISTERED, then READY
   (empty). Anything else before REGISTER ends the stream.
2. `execute` sends TRANSACTION or INIT (ChaincodeInput, txid, channel_id and
   the client's SignedProposal) and waits for the chaincode's COMPLETED or
   ERROR for that (channel_id, txid), up to the execution timeout.
3. Meanwhile the chaincode sends state requests tagged with the same pair; each
   is answered with RESPONSE or ERROR (UTF-8 text, "<TYPE> failed: transaction
   ID: <txid>: <why>"). A transaction has one request in flight at a time; a
   second one gets an ERROR. INVOKE_CHAINCODE runs in its own task, because it
   waits for another chaincode (possibly on this very stream).
4. When the stream ends, every running transaction fails with
   ChaincodeUnavailable and the handler leaves the registry.

Sending never blocks the reader: messages go to an outbox that one writer task
drains in order (a gRPC stream takes one write at a time), so while a write is
on its way the reader keeps answering requests and the endorser keeps sending
transactions. Requests are answered synchronously as they are read; a failed
write ends the stream.

As in Fabric 2.5, KEEPALIVE from the chaincode is ignored and the peer never
sends one (the Node shim exits on it); a message type the handler does not
serve once ready ends the stream.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from typing import Protocol

from common.errors import MedledgerError
from peer.chaincode.context import TransactionContext
from peer.chaincode.requests import (
    REQUEST_HANDLERS,
    QueryLimits,
    RequestHandler,
    decode_payload,
)
from peer.chaincode.stream import ChaincodeStream
from peer.errors import ChaincodeError, ChaincodeTimeout, ChaincodeUnavailable
from protos.peer import chaincode_pb2, chaincode_shim_pb2

__all__ = ["ChaincodeHandler", "HandlerState", "Invoker", "Registrar", "error_text"]

_LOG = logging.getLogger(__name__)

Message = chaincode_shim_pb2.ChaincodeMessage
_COMPLETED = Message.COMPLETED
_ERROR = Message.ERROR
_RESPONSE = Message.RESPONSE
_BUSY = "another request is pending for this transaction"


class Invoker(Protocol):
    """Runs another chaincode for an INVOKE_CHAINCODE request."""

    async def invoke_chaincode(
        self, caller: TransactionContext, spec: chaincode_pb2.ChaincodeSpec
    ) -> Message:
        """The callee's COMPLETED or ERROR message; raise MedledgerError if it cannot run."""
        ...


class Registrar(Protocol):
    """Where handlers announce themselves (the `ChaincodeRegistry`)."""

    def register(self, handler: ChaincodeHandler) -> None:
        """Accept the handler's package id or raise ChaincodeError."""
        ...

    def ready(self, handler: ChaincodeHandler) -> None: ...

    def deregister(self, handler: ChaincodeHandler) -> None: ...


class HandlerState(enum.Enum):
    CREATED = "created"
    READY = "ready"
    CLOSED = "closed"


class _ProtocolViolation(Exception):
    """The chaincode broke the stream protocol; the stream is ended."""


class _Expired(Exception):
    """A transaction's execution timer ran out before the chaincode answered."""


def _expire(response: asyncio.Future[Message]) -> None:
    if not response.done():
        response.set_exception(_Expired())


def type_name(message_type: int) -> str:
    try:
        return Message.Type.Name(message_type)
    except ValueError:
        return str(message_type)


def error_text(message: Message, why: str) -> str:
    """Fabric's wording for a failed request."""
    return f"{type_name(message.type)} failed: transaction ID: {message.txid}: {why}"


def _reply(message: Message, reply_type: int, payload: bytes) -> Message:
    return Message(
        type=reply_type,  # type: ignore[arg-type]
        payload=payload,
        txid=message.txid,
        channel_id=message.channel_id,
    )


class ChaincodeHandler:
    """Serves one chaincode stream; `run` until it ends, `execute` transactions on it."""

    def __init__(
        self,
        stream: ChaincodeStream,
        registrar: Registrar,
        *,
        invoker: Invoker | None = None,
        limits: QueryLimits | None = None,
        expected_package_id: str | None = None,
    ) -> None:
        self._stream = stream
        self._registrar = registrar
        self._invoker = invoker
        self._limits = limits or QueryLimits()
        self._expected = expected_package_id
        self.package_id = ""
        self.state = HandlerState.CREATED
        self._registered = False
        self._contexts: dict[tuple[str, str], TransactionContext] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: deque[Message] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._closing_reason: str | None = None
        self._closed = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the stream until it ends or `close` is called."""
        self._run_task = asyncio.current_task()
        self._writer = asyncio.create_task(self._write_loop())
        reason = "chaincode stream terminated"
        read, dispatch = self._stream.read, self._dispatch
        try:
            while (message := await read()) is not None:
                dispatch(message)
        except _ProtocolViolation as error:
            reason = str(error)
            _LOG.warning(
                "chaincode %s: %s; ending the stream", self.package_id or "?", reason
            )
            self._stream.close(reason)
        except ChaincodeUnavailable as error:
            reason = str(error)
        except asyncio.CancelledError:
            # `close` cancels this task once to interrupt the read; absorb only that
            # cancellation, never one from the task's owner.
            task = asyncio.current_task()
            own = self._closing_reason is not None and task is not None
            if not own or task is None or task.uncancel() > 0:
                self._shutdown(self._closing_reason or "chaincode stream cancelled")
                raise
            reason = self._closing_reason or reason
        finally:
            self._shutdown(reason)

    def close(self, reason: str) -> None:
        """End the stream from the peer's side (peer stopping, chaincode replaced)."""
        if self.state is HandlerState.CLOSED or self._closing_reason is not None:
            return
        self._closing_reason = reason
        self._stream.close(reason)
        if self._run_task is not None and self._run_task is not asyncio.current_task():
            self._run_task.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def is_ready(self) -> bool:
        return self.state is HandlerState.READY

    @property
    def running_count(self) -> int:
        """Transactions running on this stream now."""
        return len(self._contexts)

    def is_running(self, key: tuple[str, str]) -> bool:
        """Whether transaction (channel id, tx id) is running on this stream."""
        return key in self._contexts

    # ------------------------------------------------------------ transactions

    async def execute(
        self, context: TransactionContext, message: Message, *, timeout_s: float
    ) -> Message:
        """Send TRANSACTION/INIT and wait for the chaincode's COMPLETED or ERROR.

        Raises:
            ChaincodeUnavailable: the handler is not ready, or the stream ended.
            ChaincodeTimeout: no answer within `timeout_s`.
            ChaincodeError: the same transaction is already running here.
        """
        if self.state is not HandlerState.READY:
            raise ChaincodeUnavailable(f"chaincode {self.package_id} is not ready")
        key = context.key
        if key in self._contexts:
            raise ChaincodeError(
                f"transaction {context.tx_id} on channel {context.channel_id} is already "
                f"running on chaincode {self.package_id}"
            )
        loop = asyncio.get_running_loop()
        response: asyncio.Future[Message] = loop.create_future()
        context.response = response
        self._contexts[key] = context
        timer = loop.call_later(timeout_s, _expire, response)
        try:
            self._send(message)
            return await response
        except _Expired:
            raise ChaincodeTimeout(
                f"timeout expired while executing transaction {context.tx_id} "
                f"on chaincode {self.package_id} ({timeout_s:g} s)"
            ) from None
        finally:
            timer.cancel()
            self._contexts.pop(key, None)
            context.close_queries()

    # ------------------------------------------------------------ dispatch

    def _dispatch(self, message: Message) -> None:
        message_type = message.type
        if message_type == Message.KEEPALIVE:
            return
        if self.state is HandlerState.CREATED:
            if message_type != Message.REGISTER:
                raise _ProtocolViolation(
                    f"received {type_name(message_type)} before REGISTER"
                )
            self._register(message)
            return
        if message_type in (_COMPLETED, _ERROR):
            self._notify(message)
            return
        handler = REQUEST_HANDLERS.get(message_type)
        if handler is not None:
            self._serve(message, handler)
        elif message_type == Message.INVOKE_CHAINCODE:
            self._start_invoke(message)
        else:
            raise _ProtocolViolation(
                f"cannot handle {type_name(message.type)} while ready (txid {message.txid!r})"
            )

    def _register(self, message: Message) -> None:
        try:
            chaincode_id = decode_payload(chaincode_pb2.ChaincodeID, message.payload)
        except MedledgerError as error:
            raise _ProtocolViolation(f"REGISTER payload: {error}") from error
        if not chaincode_id.name:
            raise _ProtocolViolation("REGISTER carries an empty chaincode id")
        if self._expected is not None and chaincode_id.name != self._expected:
            raise _ProtocolViolation(
                f"chaincode registered as {chaincode_id.name!r}, expected {self._expected!r}"
            )
        self.package_id = chaincode_id.name
        try:
            self._registrar.register(self)
        except ChaincodeError as error:
            raise _ProtocolViolation(str(error)) from error
        self._registered = True
        self._send(Message(type=Message.REGISTERED))
        self._send(Message(type=Message.READY))
        self.state = HandlerState.READY
        self._registrar.ready(self)
        _LOG.info("chaincode %s registered", self.package_id)

    def _notify(self, message: Message) -> None:
        context = self._contexts.get((message.channel_id, message.txid))
        if context is None or context.response is None or context.response.done():
            _LOG.debug(
                "ignoring %s for unknown transaction %s",
                type_name(message.type),
                message.txid,
            )
            return
        context.response.set_result(message)
        context.close_queries()

    def _context_for(self, message: Message) -> TransactionContext | str:
        """The transaction's context, or why the request cannot be served."""
        context = self._contexts.get((message.channel_id, message.txid))
        if context is None:
            return "no ledger context"
        if context.busy:
            return _BUSY
        return context

    def _serve(self, message: Message, handler: RequestHandler) -> None:
        context = self._context_for(message)
        if isinstance(context, str):
            self._send(_reply(message, _ERROR, error_text(message, context).encode()))
            return
        context.busy = True
        try:
            reply = _reply(message, _RESPONSE, handler(context, message, self._limits))
        except MedledgerError as error:
            reply = _reply(
                message, Message.ERROR, error_text(message, str(error)).encode()
            )
        except Exception as error:  # a bug here must not take the stream down
            _LOG.exception("serving %s failed", type_name(message.type))
            text = error_text(message, f"internal error: {error}")
            reply = _reply(message, Message.ERROR, text.encode())
        finally:
            context.busy = False
        self._send(reply)

    def _start_invoke(self, message: Message) -> None:
        context = self._context_for(message)
        if isinstance(context, str) or self._invoker is None:
            why = (
                context
                if isinstance(context, str)
                else "chaincode-to-chaincode calls are off"
            )
            self._send(_reply(message, _ERROR, error_text(message, why).encode()))
            return
        context.busy = True
        task = asyncio.create_task(self._invoke(context, message, self._invoker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _invoke(
        self, context: TransactionContext, message: Message, invoker: Invoker
    ) -> None:
        try:
            spec = decode_payload(chaincode_pb2.ChaincodeSpec, message.payload)
            answer = await invoker.invoke_chaincode(context, spec)
            reply = _reply(message, Message.RESPONSE, answer.SerializeToString())
        except MedledgerError as error:
            text = error_text(message, f"execute failed: {error}")
            reply = _reply(message, Message.ERROR, text.encode())
        except Exception as error:
            _LOG.exception("INVOKE_CHAINCODE failed")
            text = error_text(message, f"internal error: {error}")
            reply = _reply(message, Message.ERROR, text.encode())
        finally:
            context.busy = False
        try:
            self._send(reply)
        except ChaincodeUnavailable:
            _LOG.debug("stream gone before the INVOKE_CHAINCODE answer could be sent")

    # ------------------------------------------------------------ sending and ending

    def _send(self, message: Message) -> None:
        """Queue `message` for the writer (in order).

        Raises:
            ChaincodeUnavailable: the stream is closed.
        """
        if self.state is HandlerState.CLOSED:
            raise ChaincodeUnavailable(f"chaincode {self.package_id} stream is closed")
        self._outbox.append(message)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def _write_loop(self) -> None:
        """Write the outbox in order, one message at a time; a failure ends the stream."""
        outbox, write = self._outbox, self._stream.write
        loop = asyncio.get_running_loop()
        while True:
            while outbox:
                message = outbox.popleft()
                try:
                    await write(message)
                except Exception as error:
                    reason = (
                        f"sending {type_name(message.type)} to chaincode failed: "
                        f"{error}"
                    )
                    self.close(reason)
                    return
            wakeup: asyncio.Future[None] = loop.create_future()
            self._wakeup = wakeup
            await wakeup

    def _shutdown(self, reason: str) -> None:
        if self.state is HandlerState.CLOSED:
            return
        self.state = HandlerState.CLOSED
        self._outbox.clear()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        for context in self._contexts.values():
            if context.response is not None and not context.response.done():
                context.response.set_exception(
                    ChaincodeUnavailable(f"chaincode {self.package_id}: {reason}")
                )
        for task in list(self._tasks):
            task.cancel()
        if self._registered:
            self._registrar.deregister(self)
        self._closed.set()
        _LOG.info("chaincode %s stream ended: %s", self.package_id or "?", reason)
