"""The chaincode side of the chaincode stream protocol, as a pure state machine.

`ShimHandler` takes events (a message from the peer, a state request from a running
transaction, a transaction finishing, the stream ending) and returns the actions the
session must carry out (send a message, start a transaction, resolve or fail a waiting
request). It owns no socket, task or clock, so every rule is unit-testable.

States: created → established (on REGISTERED) → ready (on READY) → closed (stream end).
In created and established any other message gets an ERROR reply; once ready, the peer
sends TRANSACTION/INIT and answers requests with RESPONSE/ERROR. Transactions of
different (channel, txid) run concurrently; within one transaction only one request is
outstanding at a time, later ones wait in a queue. KEEPALIVE is echoed back, never sent.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, field

from chaincode.shim import messages
from chaincode.shim.messages import ChaincodeMessage, TxKey, tx_key, type_name
from protos.peer import chaincode_shim_pb2

_log = logging.getLogger(__name__)


class ShimState(enum.Enum):
    """Where the conversation with the peer stands."""

    CREATED = "created"
    ESTABLISHED = "established"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Write `message` to the peer."""

    message: chaincode_shim_pb2.ChaincodeMessage


@dataclass(frozen=True, slots=True)
class BecomeReady:
    """The handshake finished; the chaincode is registered and may be invoked."""


@dataclass(frozen=True, slots=True)
class StartTransaction:
    """Run the chaincode for this TRANSACTION or INIT message."""

    message: chaincode_shim_pb2.ChaincodeMessage


@dataclass(frozen=True, slots=True)
class ResolveRequest:
    """The peer answered request `request_id` with `message` (RESPONSE or ERROR)."""

    request_id: int
    message: chaincode_shim_pb2.ChaincodeMessage


@dataclass(frozen=True, slots=True)
class FailRequest:
    """Request `request_id` will never be answered, because of `reason`."""

    request_id: int
    reason: str


Action = SendMessage | BecomeReady | StartTransaction | ResolveRequest | FailRequest


@dataclass(slots=True)
class _Transaction:
    """One running transaction: the request on the wire, then the waiting ones."""

    queue: deque[tuple[int, chaincode_shim_pb2.ChaincodeMessage]] = field(
        default_factory=deque
    )


class ShimHandler:
    """The protocol state of one chaincode stream (see the module docstring)."""

    def __init__(self, chaincode_id: str) -> None:
        if not chaincode_id:
            raise ValueError("a chaincode id (package id) is required to register")
        self.chaincode_id = chaincode_id
        self.state = ShimState.CREATED
        self._transactions: dict[TxKey, _Transaction] = {}

    @property
    def running(self) -> frozenset[TxKey]:
        """The transactions started and not yet finished."""
        return frozenset(self._transactions)

    def start(self) -> list[Action]:
        """Open the conversation: REGISTER with the package id."""
        assert self.state is ShimState.CREATED, self.state
        return [SendMessage(messages.register_message(self.chaincode_id))]

    def receive(self, message: chaincode_shim_pb2.ChaincodeMessage) -> list[Action]:
        """Handle one message from the peer."""
        if message.type == messages.KEEPALIVE:
            return [SendMessage(ChaincodeMessage(type=messages.KEEPALIVE))]
        if self.state is ShimState.CREATED:
            return self._expect(message, messages.REGISTERED, ShimState.ESTABLISHED)
        if self.state is ShimState.ESTABLISHED:
            return self._expect(message, messages.READY, ShimState.READY)
        if self.state is ShimState.READY:
            return self._receive_ready(message)
        return []

    def send_request(
        self, request_id: int, message: chaincode_shim_pb2.ChaincodeMessage
    ) -> list[Action]:
        """Queue a state request of a running transaction; send it if none is on the wire."""
        if self.state is ShimState.CLOSED:
            return [FailRequest(request_id, "the stream to the peer is closed")]
        transaction = self._transactions.get(tx_key(message))
        if transaction is None:
            reason = f"transaction {message.txid} is not running on this stream"
            return [FailRequest(request_id, reason)]
        transaction.queue.append((request_id, message))
        if len(transaction.queue) == 1:
            return [SendMessage(message)]
        return []

    def finish_transaction(
        self, message: chaincode_shim_pb2.ChaincodeMessage
    ) -> list[Action]:
        """Send the COMPLETED or ERROR that ends a transaction, and forget it."""
        assert message.type in (messages.COMPLETED, messages.ERROR), message.type
        transaction = self._transactions.pop(tx_key(message), None)
        actions: list[Action] = []
        if transaction is not None:
            reason = f"transaction {message.txid} finished before the peer answered"
            actions += [
                FailRequest(request_id, reason) for request_id, _ in transaction.queue
            ]
        if self.state is not ShimState.CLOSED:
            actions.append(SendMessage(message))
        return actions

    def close(self) -> list[Action]:
        """The stream ended: every waiting request fails; nothing more is sent."""
        self.state = ShimState.CLOSED
        actions: list[Action] = [
            FailRequest(request_id, "the stream to the peer closed")
            for transaction in self._transactions.values()
            for request_id, _ in transaction.queue
        ]
        self._transactions.clear()
        return actions

    def _expect(
        self,
        message: chaincode_shim_pb2.ChaincodeMessage,
        wanted: int,
        next_state: ShimState,
    ) -> list[Action]:
        if message.type != wanted:
            return [self._refuse(message)]
        self.state = next_state
        return [BecomeReady()] if next_state is ShimState.READY else []

    def _receive_ready(
        self, message: chaincode_shim_pb2.ChaincodeMessage
    ) -> list[Action]:
        if message.type in (messages.RESPONSE, messages.ERROR):
            return self._answer(message)
        if message.type in (messages.TRANSACTION, messages.INIT):
            return self._begin(message)
        if message.type in (messages.REGISTERED, messages.READY):
            return []  # A repeated handshake message changes nothing.
        return [self._refuse(message)]

    def _begin(self, message: chaincode_shim_pb2.ChaincodeMessage) -> list[Action]:
        key = tx_key(message)
        if key in self._transactions:
            text = f"[{message.channel_id}-{message.txid}] duplicate transaction id"
            return [SendMessage(messages.error_message(text, key=key))]
        self._transactions[key] = _Transaction()
        return [StartTransaction(message)]

    def _answer(self, message: chaincode_shim_pb2.ChaincodeMessage) -> list[Action]:
        transaction = self._transactions.get(tx_key(message))
        if transaction is None or not transaction.queue:
            _log.warning(
                "answer without a request type=%s channel=%s tx_id=%s",
                type_name(message.type),
                message.channel_id,
                message.txid,
            )
            return []
        request_id, _ = transaction.queue.popleft()
        actions: list[Action] = [ResolveRequest(request_id, message)]
        if transaction.queue:
            actions.append(SendMessage(transaction.queue[0][1]))
        return actions

    def _refuse(self, message: chaincode_shim_pb2.ChaincodeMessage) -> SendMessage:
        text = (
            f"[{message.channel_id}-{message.txid}] chaincode cannot handle message "
            f"{type_name(message.type)} while in state {self.state.value}"
        )
        return SendMessage(messages.error_message(text, key=tx_key(message)))
