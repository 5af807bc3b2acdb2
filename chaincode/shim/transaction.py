"""What a chaincode knows about the transaction it runs: input, proposal, creator.

The peer's TRANSACTION (or INIT) message carries the ChaincodeInput and the client's
SignedProposal; `transaction_info` decodes both once, and derives what the stub offers:
creator, transient map, timestamp and the proposal binding.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from chaincode.shim.messages import parse
from common.protoutil import (
    ParsedProposal,
    SerializedIdentity,
    Timestamp,
    parse_serialized_identity,
    parse_signed_proposal,
)
from protos.peer import chaincode_pb2, chaincode_shim_pb2, proposal_pb2


def _empty() -> Mapping[str, bytes]:
    return MappingProxyType({})


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
    info = TransactionInfo(
        channel_id=channel_id,
        tx_id=tx_id,
        args=tuple(chaincode_input.args),
        decorations=MappingProxyType(dict(chaincode_input.decorations)),
        is_init=chaincode_input.is_init,
    )
    if signed_proposal is None:
        return info
    proposal = parse_signed_proposal(signed_proposal)
    return dataclasses.replace(
        info,
        signed_proposal=signed_proposal,
        creator=parse_serialized_identity(proposal.creator),
        transient=proposal.transient_map,
        timestamp=proposal.channel_header.timestamp,
        binding=proposal_binding(proposal),
    )


def proposal_binding(proposal: ParsedProposal) -> str:
    """Hex SHA-256(nonce ‖ creator ‖ epoch as 8 little-endian bytes), Fabric's binding."""
    epoch = proposal.channel_header.epoch.to_bytes(8, "little")
    return hashlib.sha256(proposal.nonce + proposal.creator + epoch).hexdigest()
