"""Proposal responses: an endorser's signed result, as gateways and committers read it.

Execute phase, last step. The endorser signs ProposalResponsePayload bytes ‖ its own
serialized identity; all endorsers of a transaction must return identical payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import WireError
from common.protoutil._wire import (
    SignedData,
    Signer,
    decode,
    encode,
    length_delimited_field,
)
from common.protoutil.chaincode import (
    ChaincodeId,
    ChaincodeResponse,
    chaincode_id_message,
    chaincode_id_of,
    response_message,
    response_of,
)
from protos.peer import proposal_pb2, proposal_response_pb2

PROPOSAL_RESPONSE_VERSION = 1
_VERSION_FIELD = bytes((1 << 3, PROPOSAL_RESPONSE_VERSION))
"""ProposalResponse.version = 1: tag of varint field 1, then the value."""
_KNOWN_CHAINCODE_IDS = 256
_CHAINCODE_IDS: dict[ChaincodeId, bytes] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaincodeAction:
    """A decoded protos.ChaincodeAction (the payload's extension) and its bytes.

    `chaincode_id` is None when the action names no chaincode; validators reject that.
    """

    raw: bytes
    results: bytes
    events: bytes
    response: ChaincodeResponse
    chaincode_id: ChaincodeId | None


@dataclass(frozen=True, slots=True)
class ProposalResponsePayload:
    """A decoded ProposalResponsePayload: the signed bytes and their content."""

    raw: bytes
    proposal_hash: bytes
    chaincode_action: ChaincodeAction


@dataclass(frozen=True, slots=True)
class Endorsement:
    """One endorser's serialized identity and its signature over payload ‖ endorser."""

    endorser: bytes
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedProposalResponse:
    """A decoded ProposalResponse. `payload` and `endorsement` are None when absent,
    as they are when the chaincode failed."""

    version: int
    response: ChaincodeResponse
    payload: ProposalResponsePayload | None
    endorsement: Endorsement | None


def create_proposal_response(
    *,
    proposal_hash: bytes,
    results: bytes,
    response: ChaincodeResponse,
    chaincode_id: ChaincodeId,
    endorser: bytes,
    signer: Signer,
    events: bytes = b"",
    interest: bytes | None = None,
) -> proposal_response_pb2.ProposalResponse:
    """Build and sign an endorser's ProposalResponse (version 1).

    `results` is a marshaled TxReadWriteSet, `events` a marshaled ChaincodeEvent (or
    empty), `endorser` the endorsing peer's SerializedIdentity, `signer` its key and
    `interest` a marshaled ChaincodeInterest (None: no interest field at all).
    """
    response_bytes = encode(response_message(response))
    payload = proposal_response_payload_bytes(
        proposal_hash=proposal_hash,
        action=chaincode_action_bytes(
            results=results,
            events=events,
            response=response_bytes,
            chaincode_id=_chaincode_id_bytes(chaincode_id),
        ),
    )
    signature = signer(endorsement_message(payload=payload, endorser=endorser))
    return proposal_response_pb2.ProposalResponse.FromString(
        _VERSION_FIELD
        + length_delimited_field(4, response_bytes)
        + _optional_field(5, payload)
        + length_delimited_field(
            6, _optional_field(1, endorser) + _optional_field(2, signature)
        )
        + (b"" if interest is None else length_delimited_field(7, interest))
    )


def chaincode_action_bytes(
    *, results: bytes, events: bytes, response: bytes, chaincode_id: bytes
) -> bytes:
    """A marshaled protos.ChaincodeAction from its marshaled parts.

    `response` (a protos.Response) and `chaincode_id` (a protos.ChaincodeID) are
    always present, as when the message is built and serialised; empty results and
    events are left out. The bytes equal the deterministic serialisation.
    """
    return (
        _optional_field(1, results)
        + _optional_field(2, events)
        + length_delimited_field(3, response)
        + length_delimited_field(4, chaincode_id)
    )


def proposal_response_payload_bytes(*, proposal_hash: bytes, action: bytes) -> bytes:
    """A marshaled ProposalResponsePayload{proposal_hash, extension = action}."""
    return _optional_field(1, proposal_hash) + _optional_field(2, action)


def endorsement_message(*, payload: bytes, endorser: bytes) -> bytes:
    """The bytes an endorsement signature covers: ProposalResponsePayload ‖ endorser."""
    return payload + endorser


def endorsement_signed_data(*, payload: bytes, endorsement: Endorsement) -> SignedData:
    """What to verify for one endorsement of `payload`."""
    return SignedData(
        message=endorsement_message(payload=payload, endorser=endorsement.endorser),
        identity=endorsement.endorser,
        signature=endorsement.signature,
    )


def parse_proposal_response(
    data: bytes | proposal_response_pb2.ProposalResponse,
) -> ParsedProposalResponse:
    """Decode a ProposalResponse and, when present, its payload and chaincode action.

    Raises:
        WireError: the response, its payload or the chaincode action does not decode.
    """
    if isinstance(data, proposal_response_pb2.ProposalResponse):
        message = data
    else:
        message = decode(
            proposal_response_pb2.ProposalResponse, data, what="proposal response"
        )
    payload = (
        parse_proposal_response_payload(message.payload) if message.payload else None
    )
    endorsement = (
        Endorsement(
            endorser=message.endorsement.endorser,
            signature=message.endorsement.signature,
        )
        if message.HasField("endorsement")
        else None
    )
    return ParsedProposalResponse(
        version=message.version,
        response=response_of(message.response),
        payload=payload,
        endorsement=endorsement,
    )


def parse_proposal_response_payload(
    data: bytes, *, what: str = "proposal response payload"
) -> ProposalResponsePayload:
    """Decode ProposalResponsePayload bytes and the ChaincodeAction in its extension.

    Raises:
        WireError: the bytes are empty or a layer does not decode.
    """
    if not data:
        raise WireError(f"{what} is missing")
    message = decode(proposal_response_pb2.ProposalResponsePayload, data, what=what)
    return ProposalResponsePayload(
        raw=data,
        proposal_hash=message.proposal_hash,
        chaincode_action=parse_chaincode_action(
            message.extension, what=f"{what}.extension (ChaincodeAction)"
        ),
    )


def parse_chaincode_action(
    data: bytes, *, what: str = "chaincode action"
) -> ChaincodeAction:
    """Decode ChaincodeAction bytes.

    Raises:
        WireError: the bytes are empty or do not decode.
    """
    if not data:
        raise WireError(f"{what} is missing")
    message = decode(proposal_pb2.ChaincodeAction, data, what=what)
    chaincode_id = (
        chaincode_id_of(message.chaincode_id)
        if message.HasField("chaincode_id")
        else None
    )
    return ChaincodeAction(
        raw=data,
        results=message.results,
        events=message.events,
        response=response_of(message.response),
        chaincode_id=chaincode_id,
    )


def _optional_field(field_number: int, value: bytes) -> bytes:
    """A proto3 bytes field: left out when empty."""
    return length_delimited_field(field_number, value) if value else b""


def _chaincode_id_bytes(chaincode_id: ChaincodeId) -> bytes:
    """The marshaled ChaincodeID (the same few ids recur: remembered)."""
    known = _CHAINCODE_IDS.get(chaincode_id)
    if known is None:
        known = encode(chaincode_id_message(chaincode_id))
        if len(_CHAINCODE_IDS) >= _KNOWN_CHAINCODE_IDS:
            _CHAINCODE_IDS.pop(next(iter(_CHAINCODE_IDS)), None)
        _CHAINCODE_IDS[chaincode_id] = known
    return known
