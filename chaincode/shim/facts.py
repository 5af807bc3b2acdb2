"""The facts a chaincode can read about its invocation, and the event it may set.

`TransactionFacts` is the non-async half of `ChaincodeStub`: arguments, transaction and
channel ids, the proposal's creator, transient map, timestamp and binding, decorations,
and the chaincode event sent back with the result. Nothing here talks to the peer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from chaincode.errors import ChaincodeSdkError
from chaincode.shim import messages
from chaincode.shim.transaction import TransactionInfo
from common.protoutil import SerializedIdentity, Timestamp
from protos.peer import chaincode_event_pb2, proposal_pb2


class TransactionFacts:
    """What an invocation knows about itself (see the module docstring)."""

    def __init__(self, info: TransactionInfo) -> None:
        self._info = info
        self._event: chaincode_event_pb2.ChaincodeEvent | None = None

    def get_args(self) -> list[bytes]:
        """The invocation arguments; args[0] is the function name."""
        return list(self._info.args)

    def get_string_args(self) -> list[str]:
        """The arguments decoded as UTF-8 (undecodable bytes are replaced)."""
        return [arg.decode(errors="replace") for arg in self._info.args]

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        """args[0] as the function name and the rest as parameters ("" when no args)."""
        args = self.get_string_args()
        return (args[0], args[1:]) if args else ("", [])

    def get_tx_id(self) -> str:
        return self._info.tx_id

    def get_channel_id(self) -> str:
        return self._info.channel_id

    def is_init(self) -> bool:
        """True when the peer invoked the chaincode's initialisation."""
        return self._info.is_init

    def get_creator(self) -> SerializedIdentity:
        """The MSP id and certificate of the client that signed the proposal.

        Raises:
            ChaincodeSdkError: the peer sent no signed proposal.
        """
        if self._info.creator is None:
            raise ChaincodeSdkError("the invocation carries no signed proposal")
        return self._info.creator

    def get_transient(self) -> Mapping[str, bytes]:
        """The proposal's transient map (private inputs that never reach the ledger)."""
        return self._info.transient

    def get_tx_timestamp(self) -> Timestamp:
        """The time the client put in the proposal's channel header.

        Raises:
            ChaincodeSdkError: the peer sent no signed proposal, or it has no timestamp.
        """
        if self._info.timestamp is None:
            raise ChaincodeSdkError("the invocation carries no proposal timestamp")
        return self._info.timestamp

    def get_datetime(self) -> datetime:
        """The proposal timestamp as an aware UTC datetime (microsecond precision)."""
        timestamp = self.get_tx_timestamp()
        seconds = timestamp.seconds + timestamp.nanos / 1_000_000_000
        return datetime.fromtimestamp(seconds, tz=UTC)

    def get_signed_proposal(self) -> proposal_pb2.SignedProposal | None:
        """The client's SignedProposal as the peer forwarded it, if it did."""
        return self._info.signed_proposal

    def get_binding(self) -> str:
        """Hex SHA-256(nonce ‖ creator ‖ epoch), binding the proposal to its creator."""
        return self._info.binding

    def get_decorations(self) -> Mapping[str, bytes]:
        """Decorations the peer attached to the chaincode input."""
        return self._info.decorations

    def set_event(self, name: str, payload: bytes = b"") -> None:
        """Attach an event to the transaction; a later call replaces an earlier one.

        Raises:
            ValueError: the name is empty.
        """
        if not name:
            raise ValueError("event name must not be an empty string")
        self._event = messages.event_message(name, payload)

    @property
    def event(self) -> chaincode_event_pb2.ChaincodeEvent | None:
        """The event set by `set_event`, sent to the peer with the result."""
        return self._event
