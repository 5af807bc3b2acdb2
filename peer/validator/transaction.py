"""The first pass over one envelope of a block: decode it layer by layer, in Fabric's order.

Validate phase. Nothing here needs the ledger, the MSPs or a signature check; it only
decides, for each rule that can be judged from the bytes alone, whether the envelope
breaks it, and keeps what the later rules need. `validate_block` then walks the rules in
order, so the code a transaction gets is always that of the first rule it breaks:

    envelope decodes                                     INVALID_OTHER_REASON
    payload decodes                                      BAD_PAYLOAD
    header: halves decode, type ENDORSER_TRANSACTION,
      CONFIG_UPDATE or CONFIG, epoch 0, nonce, creator   BAD_COMMON_HEADER
    (creator signature: validate_block)                  BAD_CREATOR_SIGNATURE
    endorser tx: tx id = SHA-256(nonce ‖ creator)        BAD_PROPOSAL_TXID
      one action; its header, payload and response
      payload decode; proposal hash matches              INVALID_ENDORSER_TRANSACTION
    other types than ENDORSER_TRANSACTION and CONFIG     UNSUPPORTED_TX_PAYLOAD
    channel id is this channel's                         TARGET_CHAIN_NOT_FOUND
    (tx id not in the ledger: validate_block)            DUPLICATE_TXID
    header extension decodes                             BAD_HEADER_EXTENSION
    chaincode action decodes                             BAD_RESPONSE_PAYLOAD
    read-write set decodes, every layer                  BAD_RWSET
    chaincode ids present                                INVALID_OTHER_REASON
    chaincode name set and the same in both, version set INVALID_CHAINCODE
    chaincode event decodes and names that chaincode     INVALID_OTHER_REASON
    no namespace twice                                   ILLEGAL_WRITESET
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from peer.ledger.committed_txs import DecodedTx
from peer.ledger.history import Timestamp
from protos.common import common_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import (
    chaincode_event_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "CollectionRwSet",
    "EndorserTx",
    "Inspection",
    "NamespaceRwSet",
    "inspect_envelope",
]

_M = TypeVar("_M", bound=Message)
_ACCEPTED_HEADER_TYPES = frozenset(
    {common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG_UPDATE, common_pb2.CONFIG}
)


class _Invalid(Exception):
    """Internal: the envelope breaks the rule whose code this carries."""

    def __init__(self, code: TxValidationCode) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class CollectionRwSet:
    """One collection's hashed reads and writes in a namespace."""

    name: str
    hashed: kv_rwset_pb2.HashedRWSet


@dataclass(frozen=True, slots=True)
class NamespaceRwSet:
    """One namespace of a transaction's read-write set, fully decoded."""

    namespace: str
    kv: kv_rwset_pb2.KVRWSet
    collections: tuple[CollectionRwSet, ...]

    @property
    def has_writes(self) -> bool:
        """Public writes or metadata writes, or hashed writes or metadata writes."""
        return bool(self.kv.writes or self.kv.metadata_writes) or any(
            collection.hashed.hashed_writes or collection.hashed.metadata_writes
            for collection in self.collections
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndorserTx:
    """What the rules after the structure checks need from an endorser transaction."""

    chaincode_name: str
    chaincode_version: str
    rwset: tuple[NamespaceRwSet, ...]
    tx_rwset: rwset_pb2.TxReadWriteSet
    """The read-write set message `rwset` was decoded from (same namespace order)."""
    response_payload: bytes
    endorsements: tuple[proposal_response_pb2.Endorsement, ...]

    @property
    def validated_namespaces(self) -> tuple[str, ...]:
        """The invoked chaincode, then every other namespace written, in rwset order."""
        written = [ns.namespace for ns in self.rwset if ns.has_writes]
        return tuple(dict.fromkeys([self.chaincode_name, *written]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Inspection:
    """The byte-level verdicts on one envelope, split around the creator signature.

    `early_code` is set when a rule before the creator signature is broken; otherwise
    `creator`, `payload` and `signature` describe the signature to check, and
    `late_code` is the first byte-level rule after it that is broken (None: all hold).
    `endorser` is set for endorser transactions that pass every byte-level rule,
    and `decoded` then holds what the commit needs of it; `config_envelope` is set
    for CONFIG transactions.
    """

    early_code: TxValidationCode | None
    header_type: int = 0
    tx_id: str = ""
    timestamp_s: int | None = None
    creator: bytes = b""
    payload: bytes = b""
    signature: bytes = b""
    late_code: TxValidationCode | None = None
    endorser: EndorserTx | None = None
    config_envelope: bytes = b""
    decoded: DecodedTx | None = None


def inspect_envelope(data: bytes, *, channel_id: str) -> Inspection:
    """Decode one block entry and judge every rule that needs only its bytes."""
    try:
        envelope = _decode(
            common_pb2.Envelope, data, transaction_pb2.INVALID_OTHER_REASON
        )
        payload = _decode(
            common_pb2.Payload, envelope.payload, transaction_pb2.BAD_PAYLOAD
        )
        channel_header, signature_header = _check_header(payload)
    except _Invalid as invalid:
        return Inspection(early_code=invalid.code)
    header_type = channel_header.type
    timestamp_s = (
        channel_header.timestamp.seconds
        if channel_header.HasField("timestamp")
        else None
    )
    late_code: TxValidationCode | None = None
    endorser: EndorserTx | None = None
    try:
        endorser = _check_after_signature(
            payload, channel_header, signature_header, channel_id=channel_id
        )
    except _Invalid as invalid:
        late_code = invalid.code
    return Inspection(
        early_code=None,
        header_type=header_type,
        tx_id=channel_header.tx_id,
        timestamp_s=timestamp_s,
        creator=signature_header.creator,
        payload=envelope.payload,
        signature=envelope.signature,
        late_code=late_code,
        endorser=endorser,
        config_envelope=payload.data if header_type == common_pb2.CONFIG else b"",
        decoded=None if endorser is None else _decoded(channel_header, endorser),
    )


def _decoded(channel_header: common_pb2.ChannelHeader, tx: EndorserTx) -> DecodedTx:
    timestamp = channel_header.timestamp
    return DecodedTx(
        tx_id=channel_header.tx_id,
        timestamp=Timestamp(timestamp.seconds, timestamp.nanos),
        rwset=tx.tx_rwset,
        kv_rwsets=tuple(ns.kv for ns in tx.rwset),
    )


def _check_header(
    payload: common_pb2.Payload,
) -> tuple[common_pb2.ChannelHeader, common_pb2.SignatureHeader]:
    bad = transaction_pb2.BAD_COMMON_HEADER
    if not payload.HasField("header"):
        raise _Invalid(bad)
    channel_header = _decode(
        common_pb2.ChannelHeader, payload.header.channel_header, bad
    )
    signature_header = _decode(
        common_pb2.SignatureHeader, payload.header.signature_header, bad
    )
    if channel_header.type not in _ACCEPTED_HEADER_TYPES:
        raise _Invalid(bad)
    if channel_header.epoch != 0:
        raise _Invalid(bad)
    _check_signature_header(signature_header, bad)
    return channel_header, signature_header


def _check_signature_header(
    header: common_pb2.SignatureHeader, code: TxValidationCode
) -> None:
    if not header.nonce or not header.creator:
        raise _Invalid(code)


def _check_after_signature(
    payload: common_pb2.Payload,
    channel_header: common_pb2.ChannelHeader,
    signature_header: common_pb2.SignatureHeader,
    *,
    channel_id: str,
) -> EndorserTx | None:
    """The rules from the tx id to ILLEGAL_WRITESET; the endorser tx when all hold."""
    header_type = channel_header.type
    if header_type == common_pb2.CONFIG:
        _check_channel(channel_header, channel_id)
        return None
    if header_type != common_pb2.ENDORSER_TRANSACTION:
        raise _Invalid(transaction_pb2.UNSUPPORTED_TX_PAYLOAD)
    expected = hashlib.sha256(signature_header.nonce + signature_header.creator)
    if channel_header.tx_id != expected.hexdigest():
        raise _Invalid(transaction_pb2.BAD_PROPOSAL_TXID)
    action_payload, response_payload = _check_endorser_structure(payload)
    _check_channel(channel_header, channel_id)
    return _dispatch_checks(channel_header, action_payload, response_payload)


def _check_channel(channel_header: common_pb2.ChannelHeader, channel_id: str) -> None:
    if channel_header.channel_id != channel_id:
        raise _Invalid(transaction_pb2.TARGET_CHAIN_NOT_FOUND)


def _check_endorser_structure(
    payload: common_pb2.Payload,
) -> tuple[
    transaction_pb2.ChaincodeActionPayload,
    proposal_response_pb2.ProposalResponsePayload,
]:
    invalid = transaction_pb2.INVALID_ENDORSER_TRANSACTION
    transaction = _decode(transaction_pb2.Transaction, payload.data, invalid)
    if len(transaction.actions) != 1:
        raise _Invalid(invalid)
    action = transaction.actions[0]
    _check_signature_header(
        _decode(common_pb2.SignatureHeader, action.header, invalid), invalid
    )
    action_payload = _decode(
        transaction_pb2.ChaincodeActionPayload, action.payload, invalid
    )
    if not action_payload.HasField("action"):
        raise _Invalid(invalid)
    response_payload = _decode(
        proposal_response_pb2.ProposalResponsePayload,
        action_payload.action.proposal_response_payload,
        invalid,
    )
    proposal_hash = hashlib.sha256(
        payload.header.channel_header
        + action.header
        + action_payload.chaincode_proposal_payload
    ).digest()
    if proposal_hash != response_payload.proposal_hash:
        raise _Invalid(invalid)
    return action_payload, response_payload


def _dispatch_checks(
    channel_header: common_pb2.ChannelHeader,
    action_payload: transaction_pb2.ChaincodeActionPayload,
    response_payload: proposal_response_pb2.ProposalResponsePayload,
) -> EndorserTx:
    extension = _decode(
        proposal_pb2.ChaincodeHeaderExtension,
        channel_header.extension,
        transaction_pb2.BAD_HEADER_EXTENSION,
    )
    chaincode_action = _decode(
        proposal_pb2.ChaincodeAction,
        response_payload.extension,
        transaction_pb2.BAD_RESPONSE_PAYLOAD,
    )
    tx_rwset, rwset = _decode_rwset(chaincode_action.results)
    if not extension.HasField("chaincode_id") or not chaincode_action.HasField(
        "chaincode_id"
    ):
        raise _Invalid(transaction_pb2.INVALID_OTHER_REASON)
    name = extension.chaincode_id.name
    version = chaincode_action.chaincode_id.version
    if not name or name != chaincode_action.chaincode_id.name or not version:
        raise _Invalid(transaction_pb2.INVALID_CHAINCODE)
    if chaincode_action.events:
        event = _decode(
            chaincode_event_pb2.ChaincodeEvent,
            chaincode_action.events,
            transaction_pb2.INVALID_OTHER_REASON,
        )
        if event.chaincode_id != name:
            raise _Invalid(transaction_pb2.INVALID_OTHER_REASON)
    namespaces = [ns.namespace for ns in rwset]
    if len(set(namespaces)) != len(namespaces):
        raise _Invalid(transaction_pb2.ILLEGAL_WRITESET)
    return EndorserTx(
        chaincode_name=name,
        chaincode_version=version,
        rwset=rwset,
        tx_rwset=tx_rwset,
        response_payload=action_payload.action.proposal_response_payload,
        endorsements=tuple(action_payload.action.endorsements),
    )


def _decode_rwset(
    data: bytes,
) -> tuple[rwset_pb2.TxReadWriteSet, tuple[NamespaceRwSet, ...]]:
    bad = transaction_pb2.BAD_RWSET
    tx_rwset = _decode(rwset_pb2.TxReadWriteSet, data, bad)
    return tx_rwset, tuple(
        NamespaceRwSet(
            namespace=ns.namespace,
            kv=_decode(kv_rwset_pb2.KVRWSet, ns.rwset, bad),
            collections=tuple(
                CollectionRwSet(
                    name=collection.collection_name,
                    hashed=_decode(
                        kv_rwset_pb2.HashedRWSet, collection.hashed_rwset, bad
                    ),
                )
                for collection in ns.collection_hashed_rwset
            ),
        )
        for ns in tx_rwset.ns_rwset
    )


def _decode(message_type: type[_M], data: bytes, code: TxValidationCode) -> _M:
    try:
        return message_type.FromString(data)
    except (DecodeError, RecursionError, ValueError):
        raise _Invalid(code) from None
