"""A common.Block as JSON for people: every layer decoded, in configtxlator's shape.

`block_document(block)` returns what `json.dumps` can write. Like `configtxlator
proto_decode --type common.Block`, nested bytes are decoded by what the protocol says
they hold, and field names are the proto names (`channel_header`, `mod_policy`):

    data.data[i]                 Envelope; payload.header's channel and signature
                                 headers; creators and endorsers as {mspid, id_bytes}
                                 with the certificate as PEM text
    payload.data                 CONFIG: ConfigEnvelope (its last_update decoded as a
                                 CONFIG_UPDATE envelope); ENDORSER_TRANSACTION:
                                 Transaction down to the chaincode input, read-write
                                 sets and event
    config, read and write sets  in `network.config_json`'s shape, the one `medledger
                                 channel config` writes: values by name (MSP,
                                 AnchorPeers, BatchSize, ConsensusType, ACLs, ...),
                                 policies by type, principals by classification
    metadata.metadata            [SIGNATURES (value: OrdererBlockMetadata),
                                 LAST_CONFIG, TRANSACTIONS_FILTER (code names),
                                 ORDERER, COMMIT_HASH]

Fields at their default are printed too (numbers of 64 bits as strings, per the
protobuf JSON mapping); bytes that do not decode, and bytes of no known type, are
base64 (in a config, so are bytes whose encoding is not the canonical one, so that the
config reads back exactly: see `network.config_json`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from network.config_json import (
    config_to_json,
    config_update_to_json,
    message_document,
)
from protos.common import common_pb2, configtx_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.msp import identities_pb2
from protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

__all__ = ["block_document"]

_M = TypeVar("_M", bound=Message)
_Fill = Callable[[Any, dict[str, Any]], None]


def block_document(block: common_pb2.Block) -> dict[str, object]:
    """The block decoded layer by layer (see the module docstring)."""
    return {
        "header": message_document(block.header),
        "data": {"data": [_envelope(data) for data in block.data.data]},
        "metadata": {
            "metadata": [
                _metadata_entry(index, value)
                for index, value in enumerate(block.metadata.metadata)
            ]
        },
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decoded(kind: type[_M], data: bytes, fill: _Fill | None = None) -> object:
    """`data` decoded as `kind` (then completed by `fill`), or base64 if it fails."""
    try:
        message = kind.FromString(data)
    except DecodeError:
        return _b64(data)
    document = message_document(message)
    if fill is not None:
        fill(message, document)
    return document


# Envelopes and headers


def _envelope(data: bytes) -> object:
    def fill(envelope: common_pb2.Envelope, document: dict[str, Any]) -> None:
        document["payload"] = _decoded(common_pb2.Payload, envelope.payload, _payload)

    return _decoded(common_pb2.Envelope, data, fill)


def _payload(payload: common_pb2.Payload, document: dict[str, Any]) -> None:
    header = payload.header
    document["header"] = {
        "channel_header": _decoded(
            common_pb2.ChannelHeader, header.channel_header, _channel_header
        ),
        "signature_header": _signature_header(header.signature_header),
    }
    try:
        kind = common_pb2.ChannelHeader.FromString(header.channel_header).type
    except DecodeError:
        return
    decoder = _PAYLOAD_DATA.get(kind)
    if decoder is not None:
        document["data"] = decoder(payload.data)


def _channel_header(header: common_pb2.ChannelHeader, document: dict[str, Any]) -> None:
    if header.type == common_pb2.ENDORSER_TRANSACTION and header.extension:
        document["extension"] = _decoded(
            proposal_pb2.ChaincodeHeaderExtension, header.extension
        )


def _signature_header(data: bytes) -> object:
    def fill(header: common_pb2.SignatureHeader, document: dict[str, Any]) -> None:
        document["creator"] = _identity(header.creator)

    return _decoded(common_pb2.SignatureHeader, data, fill)


def _identity(data: bytes) -> object:
    def fill(
        identity: identities_pb2.SerializedIdentity, document: dict[str, Any]
    ) -> None:
        document["id_bytes"] = identity.id_bytes.decode("utf-8", errors="replace")

    return _decoded(identities_pb2.SerializedIdentity, data, fill)


def _signatures(items: Any) -> list[dict[str, object]]:
    """ConfigSignature or MetadataSignature entries: header decoded, signature base64."""
    return [
        {
            "signature_header": _signature_header(item.signature_header),
            "signature": _b64(item.signature),
        }
        for item in items
    ]


# Config


def _config_envelope(data: bytes) -> object:
    def fill(envelope: configtx_pb2.ConfigEnvelope, document: dict[str, Any]) -> None:
        if envelope.HasField("config"):
            document["config"] = config_to_json(envelope.config)
        if envelope.HasField("last_update"):
            document["last_update"] = _envelope(
                envelope.last_update.SerializeToString()
            )

    return _decoded(configtx_pb2.ConfigEnvelope, data, fill)


def _config_update_envelope(data: bytes) -> object:
    def fill(
        envelope: configtx_pb2.ConfigUpdateEnvelope, document: dict[str, Any]
    ) -> None:
        document["config_update"] = _config_update(envelope.config_update)
        document["signatures"] = _signatures(envelope.signatures)

    return _decoded(configtx_pb2.ConfigUpdateEnvelope, data, fill)


def _config_update(data: bytes) -> object:
    try:
        update = configtx_pb2.ConfigUpdate.FromString(data)
    except DecodeError:
        return _b64(data)
    return config_update_to_json(update)


# Endorser transactions


def _transaction(data: bytes) -> object:
    def fill(
        transaction: transaction_pb2.Transaction, document: dict[str, Any]
    ) -> None:
        document["actions"] = [
            {
                "header": _signature_header(action.header),
                "payload": _decoded(
                    transaction_pb2.ChaincodeActionPayload,
                    action.payload,
                    _action_payload,
                ),
            }
            for action in transaction.actions
        ]

    return _decoded(transaction_pb2.Transaction, data, fill)


def _action_payload(
    payload: transaction_pb2.ChaincodeActionPayload, document: dict[str, Any]
) -> None:
    document["chaincode_proposal_payload"] = _decoded(
        proposal_pb2.ChaincodeProposalPayload,
        payload.chaincode_proposal_payload,
        _proposal_payload,
    )
    action = payload.action
    document["action"] = {
        "proposal_response_payload": _decoded(
            proposal_response_pb2.ProposalResponsePayload,
            action.proposal_response_payload,
            _response_payload,
        ),
        "endorsements": [
            {"endorser": _identity(item.endorser), "signature": _b64(item.signature)}
            for item in action.endorsements
        ],
    }


def _proposal_payload(
    payload: proposal_pb2.ChaincodeProposalPayload, document: dict[str, Any]
) -> None:
    document["input"] = _decoded(chaincode_pb2.ChaincodeInvocationSpec, payload.input)


def _response_payload(
    payload: proposal_response_pb2.ProposalResponsePayload, document: dict[str, Any]
) -> None:
    document["extension"] = _decoded(
        proposal_pb2.ChaincodeAction, payload.extension, _chaincode_action
    )


def _chaincode_action(
    action: proposal_pb2.ChaincodeAction, document: dict[str, Any]
) -> None:
    document["results"] = _decoded(rwset_pb2.TxReadWriteSet, action.results, _rwset)
    document["events"] = _decoded(chaincode_event_pb2.ChaincodeEvent, action.events)


def _rwset(rwset: rwset_pb2.TxReadWriteSet, document: dict[str, Any]) -> None:
    for namespace, entry in zip(rwset.ns_rwset, document["ns_rwset"], strict=True):
        entry["rwset"] = _decoded(kv_rwset_pb2.KVRWSet, namespace.rwset)


_PAYLOAD_DATA: dict[int, Callable[[bytes], object]] = {
    common_pb2.CONFIG: _config_envelope,
    common_pb2.CONFIG_UPDATE: _config_update_envelope,
    common_pb2.ENDORSER_TRANSACTION: _transaction,
}


# Metadata


_METADATA_VALUE: dict[int, type[Message]] = {
    common_pb2.SIGNATURES: common_pb2.OrdererBlockMetadata,
    common_pb2.LAST_CONFIG: common_pb2.LastConfig,
}


def _metadata_entry(index: int, data: bytes) -> object:
    if index == common_pb2.TRANSACTIONS_FILTER:
        return [_validation_code(code) for code in data]

    def fill(metadata: common_pb2.Metadata, document: dict[str, Any]) -> None:
        kind = _METADATA_VALUE.get(index)
        if kind is not None and metadata.value:
            document["value"] = _decoded(kind, metadata.value)
        document["signatures"] = _signatures(metadata.signatures)

    return _decoded(common_pb2.Metadata, data, fill)


def _validation_code(code: int) -> str:
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return str(code)
