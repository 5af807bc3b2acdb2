"""Gateway → Network → Contract: the client's entry points.

    async with Gateway.connect("gw.example.com:7060", identity, signer, tls=...) as gw:
        records = gw.network("medical-records").contract("records")
        await records.submit("CreateRecord", "R-1", "P-17")        # endorse, submit, wait
        data = await records.evaluate("ReadRecord", "R-1")        # one peer, no ledger change
        async for event in gw.network("medical-records").chaincode_events("records"):
            ...

`submit` raises `EndorseError`, `SubmitError`, `CommitStatusError` or `CommitError`
(committed but invalid); `evaluate` raises `GatewayError`. `submit_async` returns as
soon as an orderer accepted the transaction, with the result and a `status()` to wait
on. Offline signing: connect without a signer, take `proposal.to_bytes()` and `digest` from
`contract.new_proposal(...)`, sign the digest elsewhere and continue with
`gateway.new_signed_proposal(bytes, signature)` (likewise `new_signed_transaction`,
`new_signed_commit`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from common.protoutil import create_proposal, parse_proposal
from gateway.client._checkpoint import Checkpoint
from gateway.client._connection import CallTimeouts, Connection
from gateway.client._errors import CommitError
from gateway.client._events import (
    ChaincodeEvent,
    block_events,
    chaincode_events,
    chaincode_events_request,
    filtered_block_events,
)
from gateway.client._identity import Identity, Signer
from gateway.client._transaction import (
    Commit,
    Proposal,
    SubmittedTransaction,
    Transaction,
)
from protos.common import common_pb2
from protos.gateway import gateway_pb2
from protos.peer import events_pb2, proposal_pb2

__all__ = ["Contract", "Gateway", "Network"]

Argument = str | bytes
_MAX_MESSAGE_BYTES = 100 * 1024 * 1024


class Gateway:
    """A connection to one gateway as one identity; close it (or use `async with`)."""

    def __init__(self, connection: Connection, *, owns_channel: bool) -> None:
        self._connection = connection
        self._owns_channel = owns_channel

    @classmethod
    def connect(
        cls,
        address: str | None = None,
        identity: Identity | None = None,
        signer: Signer | None = None,
        *,
        tls: Path | bytes | None = None,
        server_name: str | None = None,
        client_cert: tuple[bytes, bytes] | None = None,
        channel: grpc.aio.Channel | None = None,
        timeouts: CallTimeouts | None = None,
    ) -> Gateway:
        """Connect to the gateway at `address` (or over an existing grpc `channel`).

        `tls` is the trusted CA certificate (a PEM file or bytes); without it the
        connection is plaintext. `client_cert` is (certificate PEM, key PEM) for gateways
        that require mutual TLS. `signer` may be None for offline signing.
        """
        if identity is None:
            raise ValueError("an identity is required")
        owns = channel is None
        if channel is None:
            if address is None:
                raise ValueError("give an address or a channel")
            channel = _dial(address, tls, server_name, client_cert)
        connection = Connection(channel, identity, signer, timeouts or CallTimeouts())
        return cls(connection, owns_channel=owns)

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (only when the gateway dialled it itself)."""
        if self._owns_channel:
            await self._connection.channel.close(None)

    @property
    def identity(self) -> Identity:
        return self._connection.identity

    def network(self, channel_id: str) -> Network:
        return Network(self._connection, channel_id)

    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        """A proposal from `Proposal.to_bytes()` and a signature of its digest."""
        proposed = gateway_pb2.ProposedTransaction.FromString(data)
        proposed.proposal.signature = signature
        channel_id = _channel_of_proposal(proposed.proposal)
        return Proposal(self._connection, proposed, channel_id)

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        """A transaction from `Transaction.to_bytes()` and a signature of its digest."""
        prepared = gateway_pb2.PreparedTransaction.FromString(data)
        prepared.envelope.signature = signature
        return Transaction(self._connection, prepared)

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        """A commit from `Commit.to_bytes()` and a signature of its digest."""
        signed = gateway_pb2.SignedCommitStatusRequest.FromString(data)
        signed.signature = signature
        return Commit(self._connection, signed)

    def new_signed_chaincode_events(
        self, data: bytes, signature: bytes
    ) -> AsyncIterator[ChaincodeEvent]:
        """Chaincode events from `Network.new_chaincode_events_request(...)` bytes."""
        signed = gateway_pb2.SignedChaincodeEventsRequest.FromString(data)
        signed.signature = signature
        return chaincode_events(self._connection, signed)


class Network:
    """One channel, as seen through the gateway."""

    def __init__(self, connection: Connection, channel_id: str) -> None:
        self._connection = connection
        self.name = channel_id

    def contract(self, chaincode: str, contract_name: str | None = None) -> Contract:
        """A chaincode (and, optionally, one named contract within it)."""
        return Contract(self._connection, self.name, chaincode, contract_name)

    def chaincode_events(
        self,
        chaincode: str,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> AsyncIterator[ChaincodeEvent]:
        """Events `chaincode` emitted in valid transactions, block by block.

        Raises:
            GatewayError: (while iterating) the gateway refused or the stream broke.
        """
        signed = self.new_chaincode_events_request(
            chaincode, start_block=start_block, checkpoint=checkpoint
        )
        return chaincode_events(self._connection, signed)

    def new_chaincode_events_request(
        self,
        chaincode: str,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> gateway_pb2.SignedChaincodeEventsRequest:
        """The unsigned request (sign `request` offline, or let the stream sign it)."""
        return chaincode_events_request(
            self._connection,
            self.name,
            chaincode,
            start_block=start_block,
            checkpoint=checkpoint,
        )

    def block_events(
        self, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> AsyncIterator[common_pb2.Block]:
        """Committed blocks, in order, from the gateway's Deliver service."""
        return block_events(
            self._connection, self.name, start_block=start_block, checkpoint=checkpoint
        )

    def filtered_block_events(
        self, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> AsyncIterator[events_pb2.FilteredBlock]:
        """Filtered blocks, in order."""
        return filtered_block_events(
            self._connection, self.name, start_block=start_block, checkpoint=checkpoint
        )


class Contract:
    """A chaincode's transactions: evaluate (query) or submit (update the ledger)."""

    def __init__(
        self,
        connection: Connection,
        channel_id: str,
        chaincode: str,
        contract_name: str | None,
    ) -> None:
        self._connection = connection
        self.channel_id = channel_id
        self.chaincode = chaincode
        self.contract_name = contract_name

    def new_proposal(
        self,
        transaction: str,
        *args: Argument,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] = (),
    ) -> Proposal:
        """An unsigned proposal of `transaction` with `args` (text is UTF-8 encoded)."""
        name = (
            f"{self.contract_name}:{transaction}" if self.contract_name else transaction
        )
        created = create_proposal(
            channel_id=self.channel_id,
            chaincode_name=self.chaincode,
            args=[name.encode(), *(_as_bytes(arg) for arg in args)],
            creator=self._connection.identity.serialized,
            transient=transient,
        )
        proposed = gateway_pb2.ProposedTransaction(
            transaction_id=created.tx_id,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=created.proposal_bytes),
            endorsing_organizations=list(endorsing_orgs),
        )
        return Proposal(self._connection, proposed, self.channel_id)

    async def evaluate(
        self,
        transaction: str,
        *args: Argument,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] = (),
    ) -> bytes:
        """The result of running `transaction` on one peer; the ledger is not changed.

        Raises:
            GatewayError: the chaincode or the gateway failed.
        """
        proposal = self.new_proposal(
            transaction, *args, transient=transient, endorsing_orgs=endorsing_orgs
        )
        return await proposal.evaluate()

    async def submit_async(
        self,
        transaction: str,
        *args: Argument,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] = (),
    ) -> SubmittedTransaction:
        """Endorse and submit; returns once an orderer accepted the transaction.

        Raises:
            EndorseError, SubmitError: as the phases fail.
        """
        proposal = self.new_proposal(
            transaction, *args, transient=transient, endorsing_orgs=endorsing_orgs
        )
        endorsed = await proposal.endorse()
        return await endorsed.submit()

    async def submit(
        self,
        transaction: str,
        *args: Argument,
        transient: Mapping[str, bytes] | None = None,
        endorsing_orgs: Sequence[str] = (),
    ) -> bytes:
        """Endorse, submit and wait for the commit; returns the transaction's result.

        Raises:
            EndorseError, SubmitError, CommitStatusError: as the phases fail.
            CommitError: the transaction committed invalid.
        """
        submitted = await self.submit_async(
            transaction, *args, transient=transient, endorsing_orgs=endorsing_orgs
        )
        status = await submitted.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        return submitted.result


def _as_bytes(argument: Argument) -> bytes:
    return argument.encode() if isinstance(argument, str) else bytes(argument)


def _channel_of_proposal(signed: proposal_pb2.SignedProposal) -> str:
    return parse_proposal(signed.proposal_bytes).channel_id


def _dial(
    address: str,
    tls: Path | bytes | None,
    server_name: str | None,
    client_cert: tuple[bytes, bytes] | None,
) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    roots = tls.read_bytes() if isinstance(tls, Path) else tls
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    cert, key = client_cert or (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=key, certificate_chain=cert
    )
    return grpc.aio.secure_channel(address, credentials, options=options)
