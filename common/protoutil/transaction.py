"""Endorser transactions: the unsigned payload built from a proposal and its
endorsements, and the unpacking of a transaction envelope for validation.

Between execute and order. The payload reuses the proposal's header bytes; its single
TransactionAction carries the SignatureHeader bytes, the transient-free proposal payload
and the exact ProposalResponsePayload bytes all endorsers signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.errors import ProposalResponseMismatch, WireError
from common.protoutil._wire import SignedData, decode, encode, sha256
from common.protoutil.chaincode import ChaincodeResponse
from common.protoutil.envelope import ParsedEnvelope, parse_envelope, payload_bytes
from common.protoutil.header import (
    ChannelHeader,
    SignatureHeader,
    parse_signature_header,
)
from common.protoutil.proposal import ParsedProposal, parse_proposal
from common.protoutil.response import (
    ChaincodeAction,
    Endorsement,
    ProposalResponsePayload,
    endorsement_signed_data,
    parse_proposal_response_payload,
)
from common.protoutil.rwset import TxRwSet, parse_tx_rwset
from protos.common import common_pb2
from protos.peer import proposal_response_pb2, transaction_pb2


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedTransaction:
    """Every layer of an endorser-transaction envelope, with the bytes each came from.

    `action_header` is TransactionAction.header (a SignatureHeader; for a well-formed
    transaction the same bytes as the payload header's). `chaincode_proposal_payload`
    is the transient-free ChaincodeProposalPayload exactly as carried.
    """

    envelope: ParsedEnvelope
    action_header: SignatureHeader
    chaincode_action_payload: bytes
    chaincode_proposal_payload: bytes
    proposal_response_payload: ProposalResponsePayload
    endorsements: tuple[Endorsement, ...]
    rwset: TxRwSet

    @property
    def channel_header(self) -> ChannelHeader:
        return self.envelope.channel_header

    @property
    def signature_header(self) -> SignatureHeader:
        return self.envelope.signature_header

    @property
    def tx_id(self) -> str:
        return self.envelope.tx_id

    @property
    def channel_id(self) -> str:
        return self.envelope.channel_id

    @property
    def creator(self) -> bytes:
        return self.envelope.creator

    @property
    def chaincode_action(self) -> ChaincodeAction:
        return self.proposal_response_payload.chaincode_action

    @property
    def response(self) -> ChaincodeResponse:
        return self.proposal_response_payload.chaincode_action.response


def create_transaction_envelope(
    *,
    proposal: ParsedProposal | bytes,
    responses: Sequence[proposal_response_pb2.ProposalResponse],
) -> bytes:
    """Assemble the unsigned Payload bytes of a transaction, as Fabric's gateway does.

    `proposal` is a parsed proposal or marshaled Proposal bytes. Every response must be
    successful (200 ≤ status < 400), carry an endorsement, and hold a payload
    byte-identical to the first; the endorsements are kept in the given order.

    Raises:
        ProposalResponseMismatch: the responses' payloads differ.
        WireError: no responses, a failed or unendorsed response, or a bad proposal.
    """
    parsed = (
        proposal if isinstance(proposal, ParsedProposal) else parse_proposal(proposal)
    )
    response_payload = _common_response_payload(responses)
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=parsed.transient_free_payload,
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload,
            endorsements=[response.endorsement for response in responses],
        ),
    )
    transaction = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=parsed.signature_header.raw, payload=encode(action_payload)
            )
        ]
    )
    return payload_bytes(header=parsed.header_bytes, data=encode(transaction))


def parse_transaction(
    data: bytes | common_pb2.Envelope | ParsedEnvelope,
) -> ParsedTransaction:
    """Unpack an ENDORSER_TRANSACTION envelope down to endorsements and read-write set.

    Raises:
        WireError: not an endorser transaction, not exactly one action, or a layer
            that is missing or does not decode (the message names it).
    """
    envelope = data if isinstance(data, ParsedEnvelope) else parse_envelope(data)
    if envelope.header_type != common_pb2.ENDORSER_TRANSACTION:
        raise WireError(
            f"envelope header type {envelope.header_type} is not ENDORSER_TRANSACTION"
        )
    action = _single_action(envelope.data)
    action_payload = decode(
        transaction_pb2.ChaincodeActionPayload,
        action.payload,
        what="transaction action payload (ChaincodeActionPayload)",
    )
    if not action_payload.HasField("action"):
        raise WireError(
            "ChaincodeActionPayload.action (ChaincodeEndorsedAction) is missing"
        )
    endorsed = action_payload.action
    response_payload = parse_proposal_response_payload(
        endorsed.proposal_response_payload,
        what="ChaincodeEndorsedAction.proposal_response_payload",
    )
    return ParsedTransaction(
        envelope=envelope,
        action_header=parse_signature_header(
            action.header, what="transaction action header (SignatureHeader)"
        ),
        chaincode_action_payload=action.payload,
        chaincode_proposal_payload=action_payload.chaincode_proposal_payload,
        proposal_response_payload=response_payload,
        endorsements=tuple(
            Endorsement(endorser=item.endorser, signature=item.signature)
            for item in endorsed.endorsements
        ),
        rwset=parse_tx_rwset(
            response_payload.chaincode_action.results, what="ChaincodeAction.results"
        ),
    )


def transaction_proposal_hash(transaction: ParsedTransaction) -> bytes:
    """The proposal hash a committer recomputes from a transaction's carried bytes.

    SHA-256(channel header ‖ action header ‖ chaincode_proposal_payload); the payload is
    hashed as carried, not re-marshaled. Compare it with the endorsed proposal_hash.
    """
    return sha256(
        transaction.channel_header.raw
        + transaction.action_header.raw
        + transaction.chaincode_proposal_payload
    )


def transaction_endorsements_signed_data(
    transaction: ParsedTransaction,
) -> tuple[SignedData, ...]:
    """What to verify for each endorsement, in order, against the endorsement policy."""
    payload = transaction.proposal_response_payload.raw
    return tuple(
        endorsement_signed_data(payload=payload, endorsement=endorsement)
        for endorsement in transaction.endorsements
    )


def _common_response_payload(
    responses: Sequence[proposal_response_pb2.ProposalResponse],
) -> bytes:
    if not responses:
        raise WireError("a transaction needs at least one proposal response")
    first = responses[0].payload
    for index, response in enumerate(responses):
        status = response.response.status
        if not ChaincodeResponse(status=status).is_success:
            raise WireError(
                f"proposal response {index} was not successful: status {status}, "
                f"message {response.response.message!r}"
            )
        if not response.HasField("endorsement"):
            raise WireError(f"proposal response {index} has no endorsement")
        if response.payload != first:
            raise ProposalResponseMismatch(
                f"proposal response {index} payload differs from proposal response 0"
            )
    if not first:
        raise WireError("proposal responses have an empty payload")
    return first


def _single_action(transaction_bytes: bytes) -> transaction_pb2.TransactionAction:
    transaction = decode(
        transaction_pb2.Transaction,
        transaction_bytes,
        what="envelope.payload.data (Transaction)",
    )
    count = len(transaction.actions)
    if count != 1:
        raise WireError(
            f"a transaction must hold exactly one action, this one holds {count}"
        )
    return transaction.actions[0]
