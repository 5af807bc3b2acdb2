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

As in Fabric 2.5, KEEPALIVE from the chaincode is ignored and the peer never
sends one (the Node shim exits on it); a message type the handler does not
serve once ready ends the stream.
"""

from __future__ import annotations

import asyncio
import enum
import logging
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
        self._write_lock = asyncio.Lock()
        self._run_task: asyncio.Task[None] | None = None
        self._closing_reason: str | None = None
        self._closed = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the stream until it ends or `close` is called."""
        self._run_task = asyncio.current_task()
        reason = "chaincode stream terminated"
        try:
            while (message := await self._stream.read()) is not None:
                await self._dispatch(message)
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
        response: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        context.response = response
        self._contexts[key] = context
        try:
            await self._send(message)
            async with asyncio.timeout(timeout_s):
                return await response
        except TimeoutError as error:
            raise ChaincodeTimeout(
                f"timeout expired while executing transaction {context.tx_id} "
                f"on chaincode {self.package_id} ({timeout_s:g} s)"
            ) from error
        finally:
            self._contexts.pop(key, None)
            context.close_queries()

    # ------------------------------------------------------------ dispatch

    async def _dispatch(self, message: Message) -> None:
        if message.type == Message.KEEPALIVE:
            return
        if self.state is HandlerState.CREATED:
            if message.type != Message.REGISTER:
                raise _ProtocolViolation(
                    f"received {type_name(message.type)} before REGISTER"
                )
            await self._register(message)
            return
        if message.type in (Message.COMPLETED, Message.ERROR):
            self._notify(message)
            return
        handler = REQUEST_HANDLERS.get(message.type)
        if handler is not None:
            await self._serve(message, handler)
        elif message.type == Message.INVOKE_CHAINCODE:
            await self._start_invoke(message)
        else:
            raise _ProtocolViolation(
                f"cannot handle {type_name(message.type)} while ready (txid {message.txid!r})"
            )

    async def _register(self, message: Message) -> None:
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
        await self._send(Message(type=Message.REGISTERED))
        await self._send(Message(type=Message.READY))
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
            return "another request is pending for this transaction"
        return context

    async def _serve(self, message: Message, handler: RequestHandler) -> None:
        context = self._context_for(message)
        if isinstance(context, str):
            await self._send(
                _reply(message, Message.ERROR, error_text(message, context).encode())
            )
            return
        context.busy = True
        try:
            reply = _reply(
                message, Message.RESPONSE, handler(context, message, self._limits)
            )
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
        await self._send(reply)

    async def _start_invoke(self, message: Message) -> None:
        context = self._context_for(message)
        if isinstance(context, str) or self._invoker is None:
            why = (
                context
                if isinstance(context, str)
                else "chaincode-to-chaincode calls are off"
            )
            await self._send(
                _reply(message, Message.ERROR, error_text(message, why).encode())
            )
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
            await self._send(reply)
        except ChaincodeUnavailable:
            _LOG.debug("stream gone before the INVOKE_CHAINCODE answer could be sent")

    # ------------------------------------------------------------ sending and ending

    async def _send(self, message: Message) -> None:
        async with self._write_lock:
            if self.state is HandlerState.CLOSED:
                raise ChaincodeUnavailable(
                    f"chaincode {self.package_id} stream is closed"
                )
            try:
                await self._stream.write(message)
            except Exception as error:
                reason = (
                    f"sending {type_name(message.type)} to chaincode failed: {error}"
                )
                self._stream.close(reason)
                raise ChaincodeUnavailable(reason) from error

    def _shutdown(self, reason: str) -> None:
        if self.state is HandlerState.CLOSED:
            return
        self.state = HandlerState.CLOSED
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
