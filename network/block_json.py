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
    config values and policies   by name, as configtxlator does: MSP, AnchorPeers,
                                 BatchSize, ConsensusType, Capabilities, ACLs, ...;
                                 policies by type (signature, implicit meta)
    metadata.metadata            [SIGNATURES (value: OrdererBlockMetadata),
                                 LAST_CONFIG, TRANSACTIONS_FILTER (code names),
                                 ORDERER, COMMIT_HASH]

Fields at their default are printed too (numbers of 64 bits as strings, per the
protobuf JSON mapping); bytes that do not decode, and bytes of no known type, are
base64.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from protos.common import (
    common_pb2,
    configtx_pb2,
    policies_pb2,
)
from protos.common import configuration_pb2 as channel_values
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from protos.orderer import configuration_pb2 as orderer_values
from protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from protos.peer import configuration_pb2 as peer_values

__all__ = ["block_document"]

_M = TypeVar("_M", bound=Message)
_Fill = Callable[[Any, dict[str, Any]], None]

CONFIG_VALUES: dict[str, type[Message]] = {
    "HashingAlgorithm": channel_values.HashingAlgorithm,
    "BlockDataHashingStructure": channel_values.BlockDataHashingStructure,
    "OrdererAddresses": channel_values.OrdererAddresses,
    "Endpoints": channel_values.OrdererAddresses,
    "Consortium": channel_values.Consortium,
    "Capabilities": channel_values.Capabilities,
    "ConsensusType": orderer_values.ConsensusType,
    "BatchSize": orderer_values.BatchSize,
    "BatchTimeout": orderer_values.BatchTimeout,
    "ChannelRestrictions": orderer_values.ChannelRestrictions,
    "MSP": msp_config_pb2.MSPConfig,
    "AnchorPeers": peer_values.AnchorPeers,
    "ACLs": peer_values.ACLs,
}
"""What a config value holds, by its key (the same in every group)."""


def block_document(block: common_pb2.Block) -> dict[str, object]:
    """The block decoded layer by layer (see the module docstring)."""
    return {
        "header": _message(block.header),
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


def _message(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def _decoded(kind: type[_M], data: bytes, fill: _Fill | None = None) -> object:
    """`data` decoded as `kind` (then completed by `fill`), or base64 if it fails."""
    try:
        message = kind.FromString(data)
    except DecodeError:
        return _b64(data)
    document = _message(message)
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
        _config_group(
            envelope.config.channel_group, document["config"]["channel_group"]
        )
        if envelope.HasField("last_update"):
            document["last_update"] = _envelope(
                envelope.last_update.SerializeToString()
            )

    return _decoded(configtx_pb2.ConfigEnvelope, data, fill)


def _config_update_envelope(data: bytes) -> object:
    def fill(
        envelope: configtx_pb2.ConfigUpdateEnvelope, document: dict[str, Any]
    ) -> None:
        document["config_update"] = _decoded(
            configtx_pb2.ConfigUpdate, envelope.config_update, _config_update
        )
        document["signatures"] = _signatures(envelope.signatures)

    return _decoded(configtx_pb2.ConfigUpdateEnvelope, data, fill)


def _config_update(update: configtx_pb2.ConfigUpdate, document: dict[str, Any]) -> None:
    _config_group(update.read_set, document["read_set"])
    _config_group(update.write_set, document["write_set"])


def _config_group(group: configtx_pb2.ConfigGroup, document: dict[str, Any]) -> None:
    """Decode, in place, the values and policies of `group` and of its subgroups."""
    for name, value in group.values.items():
        kind = CONFIG_VALUES.get(name)
        if kind is not None:
            fill = _msp_config if kind is msp_config_pb2.MSPConfig else None
            document["values"][name]["value"] = _decoded(kind, value.value, fill)
    for name, policy in group.policies.items():
        document["policies"][name]["policy"] = _policy(policy.policy)
    for name, subgroup in group.groups.items():
        _config_group(subgroup, document["groups"][name])


def _msp_config(config: msp_config_pb2.MSPConfig, document: dict[str, Any]) -> None:
    if config.type == 0:  # FABRIC
        document["config"] = _decoded(msp_config_pb2.FabricMSPConfig, config.config)


def _policy(policy: policies_pb2.Policy) -> dict[str, Any]:
    document = _message(policy)
    if policy.type == policies_pb2.Policy.SIGNATURE:
        document["value"] = _decoded(
            policies_pb2.SignaturePolicyEnvelope, policy.value, _signature_policy
        )
    elif policy.type == policies_pb2.Policy.IMPLICIT_META:
        document["value"] = _decoded(policies_pb2.ImplicitMetaPolicy, policy.value)
    return document


def _signature_policy(
    envelope: policies_pb2.SignaturePolicyEnvelope, document: dict[str, Any]
) -> None:
    document["identities"] = [_principal(item) for item in envelope.identities]


_PRINCIPALS: dict[int, type[Message]] = {
    msp_principal_pb2.MSPPrincipal.ROLE: msp_principal_pb2.MSPRole,
    msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT: msp_principal_pb2.OrganizationUnit,
}


def _principal(principal: msp_principal_pb2.MSPPrincipal) -> dict[str, Any]:
    document = _message(principal)
    kind = _PRINCIPALS.get(principal.principal_classification)
    if principal.principal_classification == msp_principal_pb2.MSPPrincipal.IDENTITY:
        document["principal"] = _identity(principal.principal)
    elif kind is not None:
        document["principal"] = _decoded(kind, principal.principal)
    return document


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
