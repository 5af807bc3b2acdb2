"""The steps of a transaction as client objects: Proposal → Transaction → Commit.

Each step can be signed by the connected signer or offline: `to_bytes()` is the
serializable form of the step (the message a Fabric Gateway client would hand out),
`message` the exact bytes whose SHA-256 `digest` an external signer signs, and
`Gateway.new_signed_*` rebuilds a step from `bytes` and that signature.

    Proposal      ProposedTransaction       signs the Proposal bytes
    Transaction   PreparedTransaction       signs the envelope payload
    Commit        SignedCommitStatusRequest signs the CommitStatusRequest bytes
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from common.errors import WireError
from common.protoutil import ParsedTransaction, parse_transaction
from gateway.client._connection import Connection
from gateway.client._errors import (
    ClientError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    SubmitError,
    gateway_error,
)
from gateway.client._identity import digest
from protos.gateway import gateway_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = ["Commit", "Proposal", "Status", "SubmittedTransaction", "Transaction"]


@dataclass(frozen=True, slots=True)
class Status:
    """A committed transaction's validation code and block number."""

    transaction_id: str
    code: int
    block_number: int

    @property
    def successful(self) -> bool:
        return self.code == TxValidationCode.VALID

    @property
    def code_name(self) -> str:
        try:
            return TxValidationCode.Name(self.code)
        except ValueError:
            return str(self.code)


class Proposal:
    """A transaction proposal, to evaluate or to endorse."""

    def __init__(
        self,
        connection: Connection,
        proposed: gateway_pb2.ProposedTransaction,
        channel_id: str,
    ) -> None:
        self._connection = connection
        self._proposed = proposed
        self.channel_id = channel_id

    @property
    def transaction_id(self) -> str:
        return self._proposed.transaction_id

    def to_bytes(self) -> bytes:
        """The serialized `gateway.ProposedTransaction`."""
        return self._proposed.SerializeToString()

    @property
    def message(self) -> bytes:
        """The Proposal bytes the signature covers."""
        return self._proposed.proposal.proposal_bytes

    @property
    def digest(self) -> bytes:
        return digest(self.message)

    @property
    def endorsing_organizations(self) -> tuple[str, ...]:
        return tuple(self._proposed.endorsing_organizations)

    def _signed(self) -> gateway_pb2.ProposedTransaction:
        if not self._proposed.proposal.signature:
            self._proposed.proposal.signature = self._connection.sign(self.message)
        return self._proposed

    async def evaluate(self) -> bytes:
        """Run the proposal on one peer; returns the chaincode's result.

        Raises:
            GatewayError: the gateway or the chaincode failed.
        """
        proposed = self._signed()
        request = gateway_pb2.EvaluateRequest(
            transaction_id=proposed.transaction_id,
            channel_id=self.channel_id,
            proposed_transaction=proposed.proposal,
            target_organizations=proposed.endorsing_organizations,
        )
        call = self._connection.unary("Evaluate", gateway_pb2.EvaluateResponse)
        try:
            response = await call(request, timeout=self._connection.timeouts.evaluate_s)
        except grpc.aio.AioRpcError as error:
            raise gateway_error(
                error, GatewayError, transaction_id=self.transaction_id
            ) from None
        result: bytes = response.result.payload
        return result

    async def endorse(self) -> Transaction:
        """Collect endorsements; returns the transaction to sign and submit.

        Raises:
            EndorseError: endorsements could not be collected.
        """
        proposed = self._signed()
        request = gateway_pb2.EndorseRequest(
            transaction_id=proposed.transaction_id,
            channel_id=self.channel_id,
            proposed_transaction=proposed.proposal,
            endorsing_organizations=proposed.endorsing_organizations,
        )
        call = self._connection.unary("Endorse", gateway_pb2.EndorseResponse)
        try:
            response = await call(request, timeout=self._connection.timeouts.endorse_s)
        except grpc.aio.AioRpcError as error:
            raise gateway_error(
                error, EndorseError, transaction_id=self.transaction_id
            ) from None
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=proposed.transaction_id,
            envelope=response.prepared_transaction,
        )
        return Transaction(self._connection, prepared, channel_id=self.channel_id)


class Transaction:
    """An endorsed transaction: its result, to be signed and submitted.

    The envelope is parsed for its result only when `result` is first read (or, when
    the channel is not known, at once to find it).

    Raises:
        ClientError: the envelope is malformed (when it is parsed).
    """

    def __init__(
        self,
        connection: Connection,
        prepared: gateway_pb2.PreparedTransaction,
        *,
        channel_id: str | None = None,
    ) -> None:
        self._connection = connection
        self._prepared = prepared
        self._result: bytes | None = None
        if channel_id is None:
            channel_id = self._parse().channel_id
        self.channel_id = channel_id

    @property
    def result(self) -> bytes:
        """The chaincode's response payload, as the endorsers returned it.

        Raises:
            ClientError: the gateway returned a malformed transaction.
        """
        if self._result is None:
            self._result = self._parse().response.payload
        return self._result

    def _parse(self) -> ParsedTransaction:
        try:
            parsed = parse_transaction(self._prepared.envelope)
        except WireError as error:
            raise ClientError(
                f"the gateway returned a malformed transaction: {error}"
            ) from None
        self._result = parsed.response.payload
        return parsed

    @property
    def transaction_id(self) -> str:
        return self._prepared.transaction_id

    def to_bytes(self) -> bytes:
        """The serialized `gateway.PreparedTransaction`."""
        return self._prepared.SerializeToString()

    @property
    def message(self) -> bytes:
        """The envelope payload the signature covers."""
        return self._prepared.envelope.payload

    @property
    def digest(self) -> bytes:
        return digest(self.message)

    async def submit(self) -> SubmittedTransaction:
        """Send the signed transaction to the orderers; returns its pending commit.

        Raises:
            SubmitError: no orderer accepted it.
        """
        envelope = self._prepared.envelope
        if not envelope.signature:
            envelope.signature = self._connection.sign(self.message)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel_id,
            prepared_transaction=envelope,
        )
        call = self._connection.unary("Submit", gateway_pb2.SubmitResponse)
        try:
            await call(request, timeout=self._connection.timeouts.submit_s)
        except grpc.aio.AioRpcError as error:
            raise gateway_error(
                error, SubmitError, transaction_id=self.transaction_id
            ) from None
        return SubmittedTransaction(
            self._connection,
            _status_request(self._connection, self.channel_id, self.transaction_id),
            transaction=self,
        )


class Commit:
    """A submitted transaction whose commit status can be asked for."""

    def __init__(
        self, connection: Connection, signed: gateway_pb2.SignedCommitStatusRequest
    ) -> None:
        self._connection = connection
        self._signed = signed
        request = gateway_pb2.CommitStatusRequest.FromString(signed.request)
        self.transaction_id = request.transaction_id
        self.channel_id = request.channel_id

    def to_bytes(self) -> bytes:
        """The serialized `gateway.SignedCommitStatusRequest`."""
        return self._signed.SerializeToString()

    @property
    def message(self) -> bytes:
        return self._signed.request

    @property
    def digest(self) -> bytes:
        return digest(self.message)

    async def status(self) -> Status:
        """Wait until the transaction commits; its code and block number.

        Raises:
            CommitStatusError: the status could not be obtained.
        """
        if not self._signed.signature:
            self._signed.signature = self._connection.sign(self.message)
        call = self._connection.unary("CommitStatus", gateway_pb2.CommitStatusResponse)
        try:
            response = await call(
                self._signed, timeout=self._connection.timeouts.commit_status_s
            )
        except grpc.aio.AioRpcError as error:
            raise gateway_error(
                error, CommitStatusError, transaction_id=self.transaction_id
            ) from None
        return Status(self.transaction_id, response.result, response.block_number)


class SubmittedTransaction(Commit):
    """A submitted transaction: its result now, its commit status on request."""

    def __init__(
        self,
        connection: Connection,
        signed: gateway_pb2.SignedCommitStatusRequest,
        *,
        transaction: Transaction,
    ) -> None:
        super().__init__(connection, signed)
        self._transaction = transaction

    @property
    def result(self) -> bytes:
        """The chaincode's response payload (see `Transaction.result`)."""
        return self._transaction.result


def _status_request(
    connection: Connection, channel_id: str, transaction_id: str
) -> gateway_pb2.SignedCommitStatusRequest:
    request = gateway_pb2.CommitStatusRequest(
        channel_id=channel_id,
        transaction_id=transaction_id,
        identity=connection.identity.serialized,
    )
    return gateway_pb2.SignedCommitStatusRequest(request=request.SerializeToString())
