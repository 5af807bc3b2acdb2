"""What a chaincode knows about the transaction it runs: input, proposal, creator.

The peer's TRANSACTION (or INIT) message carries the ChaincodeInput and the client's
SignedProposal; `transaction_info` decodes both once, and derives what the stub offers:
creator, transient map, timestamp and the proposal binding.

Like Fabric's shims it decodes only the proposal layers those facts live in (proposal,
header, channel and signature headers, the payload's transient map), not the chaincode
spec the peer has already unpacked into the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from chaincode.shim.messages import parse
from common.errors import WireError
from common.protoutil import (
    ParsedProposal,
    SerializedIdentity,
    Timestamp,
    parse_serialized_identity,
)
from protos.common import common_pb2
from protos.peer import chaincode_pb2, chaincode_shim_pb2, proposal_pb2

_NONE: Mapping[str, bytes] = MappingProxyType({})
"""The empty map, shared: most invocations carry no decorations and no transient data."""


def _empty() -> Mapping[str, bytes]:
    return _NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionInfo:
    """The decoded facts of one invocation (everything the stub reports besides state).

    Without a signed proposal (a peer that sends none) `creator`, `timestamp` and
    `signed_proposal` are None, the transient map is empty and the binding is "".
    """

    channel_id: str
    tx_id: str
    args: tuple[bytes, ...]
    decorations: Mapping[str, bytes] = field(default_factory=_empty)
    is_init: bool = False
    signed_proposal: proposal_pb2.SignedProposal | None = field(
        default=None, repr=False
    )
    creator: SerializedIdentity | None = None
    transient: Mapping[str, bytes] = field(default_factory=_empty)
    timestamp: Timestamp | None = None
    binding: str = ""


def transaction_info(message: chaincode_shim_pb2.ChaincodeMessage) -> TransactionInfo:
    """Decode a TRANSACTION or INIT message from the peer.

    Raises:
        WireError: the input or the proposal does not decode.
        MalformedIdentity: the proposal's creator is not a SerializedIdentity.
    """
    chaincode_input = parse(
        chaincode_pb2.ChaincodeInput, message.payload, what="transaction payload"
    )
    signed = message.proposal if message.HasField("proposal") else None
    if signed is not None and not signed.proposal_bytes:
        signed = None
    return info_from_parts(
        channel_id=message.channel_id,
        tx_id=message.txid,
        chaincode_input=chaincode_input,
        signed_proposal=signed,
    )


def info_from_parts(
    *,
    channel_id: str,
    tx_id: str,
    chaincode_input: chaincode_pb2.ChaincodeInput,
    signed_proposal: proposal_pb2.SignedProposal | None,
) -> TransactionInfo:
    """Assemble a TransactionInfo from a decoded input and an optional proposal.

    Raises:
        WireError: the proposal does not decode.
        MalformedIdentity: the proposal's creator is not a SerializedIdentity.
    """
    decorations = chaincode_input.decorations
    if signed_proposal is None:
        return TransactionInfo(
            channel_id=channel_id,
            tx_id=tx_id,
            args=tuple(chaincode_input.args),
            decorations=_frozen(decorations),
            is_init=chaincode_input.is_init,
        )
    creator, nonce, epoch, timestamp, transient = _proposal_facts(signed_proposal)
    return TransactionInfo(
        channel_id=channel_id,
        tx_id=tx_id,
        args=tuple(chaincode_input.args),
        decorations=_frozen(decorations),
        is_init=chaincode_input.is_init,
        signed_proposal=signed_proposal,
        creator=parse_serialized_identity(creator),
        transient=transient,
        timestamp=timestamp,
        binding=_binding(nonce, creator, epoch),
    )


def proposal_binding(proposal: ParsedProposal) -> str:
    """Hex SHA-256(nonce ‖ creator ‖ epoch as 8 little-endian bytes), Fabric's binding."""
    return _binding(proposal.nonce, proposal.creator, proposal.channel_header.epoch)


def _binding(nonce: bytes, creator: bytes, epoch: int) -> str:
    return hashlib.sha256(nonce + creator + epoch.to_bytes(8, "little")).hexdigest()


_Facts = tuple[bytes, bytes, int, Timestamp | None, Mapping[str, bytes]]
"""creator, nonce, epoch, timestamp and transient map of a proposal."""


def _proposal_facts(signed: proposal_pb2.SignedProposal) -> _Facts:
    """Decode the layers of a SignedProposal that hold the facts the stub reports.

    Raises:
        WireError: a layer is missing or does not decode.
    """
    if not signed.proposal_bytes:
        raise WireError("signed proposal has no proposal_bytes")
    proposal = parse(proposal_pb2.Proposal, signed.proposal_bytes, what="proposal")
    if not proposal.header:
        raise WireError("proposal.header is missing")
    header = parse(common_pb2.Header, proposal.header, what="proposal.header")
    if not header.channel_header or not header.signature_header:
        raise WireError("proposal.header lacks its channel or signature header")
    channel_header = parse(
        common_pb2.ChannelHeader,
        header.channel_header,
        what="proposal.header.channel_header",
    )
    signature_header = parse(
        common_pb2.SignatureHeader,
        header.signature_header,
        what="proposal.header.signature_header",
    )
    transient = parse(
        proposal_pb2.ChaincodeProposalPayload,
        proposal.payload,
        what="proposal.payload",
    ).TransientMap
    stamp = (
        Timestamp(channel_header.timestamp.seconds, channel_header.timestamp.nanos)
        if channel_header.HasField("timestamp")
        else None
    )
    return (
        signature_header.creator,
        signature_header.nonce,
        channel_header.epoch,
        stamp,
        _frozen(transient),
    )


def _frozen(entries: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(entries)) if entries else _NONE
