"""Proposals: what a client builds and signs, and how an endorser unpacks every layer.

Execute phase, first step. A SignedProposal nests Proposal → Header (ChannelHeader
with a ChaincodeHeaderExtension, SignatureHeader) and ChaincodeProposalPayload →
ChaincodeInvocationSpec → ChaincodeInput. The parsed view keeps each layer's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from common.errors import WireError
from common.protoutil._wire import (
    SignedData,
    Signer,
    Timestamp,
    decode,
    encode,
    length_delimited_field,
    sha256,
)
from common.protoutil.chaincode import ChaincodeId, chaincode_id_of
from common.protoutil.header import (
    ChannelHeader,
    Header,
    SignatureHeader,
    channel_header_bytes,
    header_bytes,
    parse_header,
    signature_header_bytes,
)
from common.protoutil.txid import compute_tx_id, new_nonce
from protos.common import common_pb2
from protos.peer import chaincode_pb2, proposal_pb2

CHAINCODE_TYPE_NODE = chaincode_pb2.ChaincodeSpec.Type.NODE
"""The spec type every Fabric Gateway client sends, whatever the chaincode language."""

KNOWN_EXTENSIONS = 1024
"""ChaincodeHeaderExtension bytes whose chaincode id is remembered (oldest go first)."""

_LARGEST_KNOWN_EXTENSION = 512
"""Longer extensions (a client's choice, read before any check) are not remembered."""
_EXTENSIONS: dict[bytes, ChaincodeId] = {}
_EMPTY_MAP: Mapping[str, bytes] = MappingProxyType({})


class CreatedProposal(NamedTuple):
    """A marshaled Proposal and the tx id its header carries."""

    proposal_bytes: bytes
    tx_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedProposal:
    """Every layer of a (signed) proposal, decoded, with the bytes each came from.

    `signature` is empty when the proposal was parsed without its SignedProposal.
    `payload_bytes` is the ChaincodeProposalPayload as sent (transient map included);
    `transient_free_payload` is the same payload re-marshaled with only its input, the
    form that goes into the transaction and into the proposal hash.
    """

    proposal_bytes: bytes
    signature: bytes
    header_bytes: bytes
    header: Header
    payload_bytes: bytes
    transient_free_payload: bytes
    chaincode_id: ChaincodeId
    input_bytes: bytes
    chaincode_type: int
    args: tuple[bytes, ...]
    decorations: Mapping[str, bytes]
    is_init: bool
    transient_map: Mapping[str, bytes]

    @property
    def channel_header(self) -> ChannelHeader:
        return self.header.channel_header

    @property
    def signature_header(self) -> SignatureHeader:
        return self.header.signature_header

    @property
    def tx_id(self) -> str:
        return self.header.channel_header.tx_id

    @property
    def channel_id(self) -> str:
        return self.header.channel_header.channel_id

    @property
    def creator(self) -> bytes:
        return self.header.signature_header.creator

    @property
    def nonce(self) -> bytes:
        return self.header.signature_header.nonce


def create_proposal(
    *,
    channel_id: str,
    chaincode_name: str,
    args: Sequence[bytes],
    creator: bytes,
    transient: Mapping[str, bytes] | None = None,
    nonce: bytes | None = None,
    timestamp: Timestamp | None = None,
    is_init: bool = False,
    chaincode_type: int = CHAINCODE_TYPE_NODE,
) -> CreatedProposal:
    """Build an endorser-transaction Proposal the way the Fabric Gateway client does.

    A fresh nonce and the current time are used unless given; `args[0]` is the
    transaction name. The tx id is derived from the nonce and creator.
    """
    nonce = new_nonce() if nonce is None else nonce
    tx_id = compute_tx_id(nonce=nonce, creator=creator)
    extension = encode(
        proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode_name)
        )
    )
    channel_header = channel_header_bytes(
        header_type=common_pb2.ENDORSER_TRANSACTION,
        channel_id=channel_id,
        tx_id=tx_id,
        timestamp=Timestamp.now() if timestamp is None else timestamp,
        extension=extension,
    )
    header = header_bytes(
        channel_header=channel_header,
        signature_header=signature_header_bytes(creator=creator, nonce=nonce),
    )
    payload = _chaincode_proposal_payload(
        chaincode_name=chaincode_name,
        args=args,
        transient=transient or {},
        is_init=is_init,
        chaincode_type=chaincode_type,
    )
    proposal = encode(proposal_pb2.Proposal(header=header, payload=payload))
    return CreatedProposal(proposal_bytes=proposal, tx_id=tx_id)


def sign_proposal(proposal_bytes: bytes, signer: Signer) -> proposal_pb2.SignedProposal:
    """Wrap proposal bytes with the creator's signature over exactly those bytes."""
    return proposal_pb2.SignedProposal(
        proposal_bytes=proposal_bytes, signature=signer(proposal_bytes)
    )


def parse_signed_proposal(data: bytes | proposal_pb2.SignedProposal) -> ParsedProposal:
    """Unpack a SignedProposal down to its chaincode input and transient map.

    Raises:
        WireError: a layer is missing or does not decode; the message names the layer.
    """
    if isinstance(data, proposal_pb2.SignedProposal):
        signed = data
    else:
        signed = decode(proposal_pb2.SignedProposal, data, what="signed proposal")
    if not signed.proposal_bytes:
        raise WireError("signed proposal has no proposal_bytes")
    return parse_proposal(signed.proposal_bytes, signature=signed.signature)


def parse_proposal(proposal_bytes: bytes, *, signature: bytes = b"") -> ParsedProposal:
    """Unpack marshaled Proposal bytes (see parse_signed_proposal).

    Raises:
        WireError: a layer is missing or does not decode; the message names the layer.
    """
    proposal = decode(proposal_pb2.Proposal, proposal_bytes, what="proposal")
    header_bytes = proposal.header
    if not header_bytes:
        raise WireError("proposal.header is missing")
    header_message = decode(common_pb2.Header, header_bytes, what="proposal.header")
    header = parse_header(header_message, what="proposal.header")
    chaincode_id = _chaincode_id_from_extension(header.channel_header.extension)
    payload_bytes = proposal.payload
    payload = decode(
        proposal_pb2.ChaincodeProposalPayload,
        payload_bytes,
        what="proposal.payload (ChaincodeProposalPayload)",
    )
    input_bytes = payload.input
    spec = _chaincode_spec(input_bytes)
    chaincode_input = spec.input
    transient = payload.TransientMap
    return ParsedProposal(
        proposal_bytes=proposal_bytes,
        signature=signature,
        header_bytes=header_bytes,
        header=header,
        payload_bytes=payload_bytes,
        transient_free_payload=_input_only(input_bytes),
        chaincode_id=chaincode_id,
        input_bytes=input_bytes,
        chaincode_type=spec.type,
        args=tuple(chaincode_input.args[:]),
        decorations=_frozen_map(chaincode_input.decorations),
        is_init=chaincode_input.is_init,
        transient_map=_frozen_map(transient),
    )


def proposal_hash(
    *, channel_header: bytes, signature_header: bytes, chaincode_proposal_payload: bytes
) -> bytes:
    """SHA-256(channel_header ‖ signature_header ‖ payload without its TransientMap).

    The payload is re-marshaled with its input only. This is what an endorser puts in
    ProposalResponsePayload.proposal_hash; the transient map never reaches the ledger,
    so it is not covered.

    Raises:
        WireError: the payload does not decode as a ChaincodeProposalPayload.
    """
    payload = decode(
        proposal_pb2.ChaincodeProposalPayload,
        chaincode_proposal_payload,
        what="chaincode proposal payload",
    )
    return sha256(channel_header + signature_header + _transient_free(payload))


def proposal_hash_of(proposal: ParsedProposal) -> bytes:
    """The proposal hash of an already parsed proposal (see proposal_hash)."""
    return sha256(
        proposal.channel_header.raw
        + proposal.signature_header.raw
        + proposal.transient_free_payload
    )


def proposal_signed_data(proposal: ParsedProposal) -> SignedData:
    """What to verify: the creator's signature over the exact proposal bytes."""
    return SignedData(
        message=proposal.proposal_bytes,
        identity=proposal.creator,
        signature=proposal.signature,
    )


def transient_free_payload(chaincode_proposal_payload: bytes) -> bytes:
    """Re-marshal a ChaincodeProposalPayload with its input only (no TransientMap).

    Raises:
        WireError: the payload does not decode.
    """
    payload = decode(
        proposal_pb2.ChaincodeProposalPayload,
        chaincode_proposal_payload,
        what="chaincode proposal payload",
    )
    return _transient_free(payload)


def _transient_free(payload: proposal_pb2.ChaincodeProposalPayload) -> bytes:
    return _input_only(payload.input)


def _chaincode_proposal_payload(
    *,
    chaincode_name: str,
    args: Sequence[bytes],
    transient: Mapping[str, bytes],
    is_init: bool,
    chaincode_type: int,
) -> bytes:
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_type,  # type: ignore[arg-type]
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode_name),
            input=chaincode_pb2.ChaincodeInput(args=list(args), is_init=is_init),
        )
    )
    return encode(
        proposal_pb2.ChaincodeProposalPayload(
            input=encode(spec), TransientMap=dict(transient)
        )
    )


def _chaincode_id_from_extension(extension: bytes) -> ChaincodeId:
    """The chaincode a ChaincodeHeaderExtension names (the same bytes, the same id)."""
    known = _EXTENSIONS.get(extension)
    if known is not None:
        return known
    what = "proposal channel header extension (ChaincodeHeaderExtension)"
    message = decode(proposal_pb2.ChaincodeHeaderExtension, extension, what=what)
    if not message.HasField("chaincode_id"):
        raise WireError(f"{what} has no chaincode_id")
    if not message.chaincode_id.name:
        raise WireError(f"{what} has an empty chaincode name")
    chaincode_id = chaincode_id_of(message.chaincode_id)
    if len(extension) <= _LARGEST_KNOWN_EXTENSION:
        if len(_EXTENSIONS) >= KNOWN_EXTENSIONS:
            _EXTENSIONS.pop(next(iter(_EXTENSIONS)), None)
        _EXTENSIONS[extension] = chaincode_id
    return chaincode_id


def _input_only(input_bytes: bytes) -> bytes:
    """ChaincodeProposalPayload{input} marshaled: field 1 alone, or nothing if empty."""
    return length_delimited_field(1, input_bytes) if input_bytes else b""


def _frozen_map(entries: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(entries)) if entries else _EMPTY_MAP


def _chaincode_spec(input_bytes: bytes) -> chaincode_pb2.ChaincodeSpec:
    what = "ChaincodeProposalPayload.input (ChaincodeInvocationSpec)"
    invocation = decode(chaincode_pb2.ChaincodeInvocationSpec, input_bytes, what=what)
    if not invocation.HasField("chaincode_spec"):
        raise WireError(f"{what} has no chaincode_spec")
    if not invocation.chaincode_spec.HasField("input"):
        raise WireError(f"{what} has a chaincode_spec without input")
    return invocation.chaincode_spec
