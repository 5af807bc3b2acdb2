"""A channel's common.Config as JSON and back: the one shape medledger shows configs in.

`medledger channel config` writes it, `channel update --config` reads it back, and
`channel fetch --json` shows the config of a config block (and the read and write sets
of a config update) in it. The shape is configtxlator's: proto field names, every field
printed, defaults too (numbers of 64 bits as strings, per the protobuf JSON mapping),
and the bytes configtxlator decodes shown as JSON objects:

    values.NAME.value            by NAME: HashingAlgorithm, BlockDataHashingStructure,
                                 OrdererAddresses, Endpoints, Consortium, Capabilities,
                                 BatchSize, BatchTimeout, ChannelRestrictions,
                                 ConsensusType, MSP (an X.509 MSP's FabricMSPConfig
                                 too), AnchorPeers, ACLs
    policies.NAME.policy.value   by the policy's type: SignaturePolicyEnvelope (1), its
                                 principals by classification (MSPRole,
                                 OrganizationUnit, SerializedIdentity);
                                 ImplicitMetaPolicy (3)
    any other bytes              base64

Bytes are shown decoded only when encoding the decoded message again gives the same
bytes (no unknown fields, the canonical encoding), and are encoded again
deterministically, so an unedited document reads back to the same Config byte for byte.
Base64 is accepted wherever a decoded object is shown. A document that does not fit is
a `ConfigError` naming the file and the path in it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from common.errors import ConfigError
from protos.common import configtx_pb2, policies_pb2
from protos.common import configuration_pb2 as channel_values
from protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from protos.orderer import configuration_pb2 as orderer_values
from protos.peer import configuration_pb2 as peer_values

__all__ = [
    "CONFIG_VALUES",
    "config_from_json",
    "config_group_from_json",
    "config_group_to_json",
    "config_to_json",
    "config_update_from_json",
    "config_update_to_json",
    "json_text",
    "message_document",
]

_M = TypeVar("_M", bound=Message)

CONFIG_VALUES: Mapping[str, type[Message]] = {
    "HashingAlgorithm": channel_values.HashingAlgorithm,
    "BlockDataHashingStructure": channel_values.BlockDataHashingStructure,
    "OrdererAddresses": channel_values.OrdererAddresses,
    "Endpoints": channel_values.OrdererAddresses,
    "Consortium": channel_values.Consortium,
    "Capabilities": channel_values.Capabilities,
    "BatchSize": orderer_values.BatchSize,
    "BatchTimeout": orderer_values.BatchTimeout,
    "ChannelRestrictions": orderer_values.ChannelRestrictions,
    "ConsensusType": orderer_values.ConsensusType,
    "MSP": msp_config_pb2.MSPConfig,
    "AnchorPeers": peer_values.AnchorPeers,
    "ACLs": peer_values.ACLs,
}
"""What a config value holds, by its key (the same in every group)."""

_POLICY_VALUES: Mapping[int, type[Message]] = {
    policies_pb2.Policy.SIGNATURE: policies_pb2.SignaturePolicyEnvelope,
    policies_pb2.Policy.IMPLICIT_META: policies_pb2.ImplicitMetaPolicy,
}

_Principal = msp_principal_pb2.MSPPrincipal
_PRINCIPALS: Mapping[int, type[Message]] = {
    _Principal.ROLE: msp_principal_pb2.MSPRole,
    _Principal.ORGANIZATION_UNIT: msp_principal_pb2.OrganizationUnit,
    _Principal.IDENTITY: identities_pb2.SerializedIdentity,
}

_CLASSIFICATIONS: Mapping[str, int] = dict(_Principal.Classification.items())

_FABRIC_MSP = 0
"""MSPConfig.type of an X.509 MSP, whose `config` is a FabricMSPConfig."""


def config_to_json(config: configtx_pb2.Config) -> dict[str, Any]:
    """`config` as a JSON document (see the module docstring)."""
    document = message_document(config)
    if config.HasField("channel_group"):
        _group_to_json(config.channel_group, document["channel_group"])
    return document


def config_from_json(document: object, *, source: str) -> configtx_pb2.Config:
    """The Config a document of `config_to_json`'s shape (perhaps edited) describes.

    Raises:
        ConfigError: the document is not a common.Config, or a decoded part does not
            fit its message; the message names `source` and the path in the document.
    """
    at = _At(source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: not a common.Config (a JSON object)")
    encoded = _with(document, "channel_group", at, _group_from_json)
    return _parsed(encoded, configtx_pb2.Config(), at, "common.Config")


def config_group_to_json(group: configtx_pb2.ConfigGroup) -> dict[str, Any]:
    """One ConfigGroup (an organisation's, say) as `config_to_json` shows groups."""
    document = message_document(group)
    _group_to_json(group, document)
    return document


def config_group_from_json(
    document: object, *, source: str
) -> configtx_pb2.ConfigGroup:
    """The ConfigGroup a document of `config_group_to_json`'s shape describes.

    Raises:
        ConfigError: as `config_from_json` (paths from the group down).
    """
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: not a common.ConfigGroup (a JSON object)")
    at = _At(source)
    encoded = _group_from_json(document, at)
    return _parsed(encoded, configtx_pb2.ConfigGroup(), at, "common.ConfigGroup")


def config_update_to_json(update: configtx_pb2.ConfigUpdate) -> dict[str, Any]:
    """A ConfigUpdate as JSON, its read and write sets in `config_to_json`'s shape."""
    document = message_document(update)
    for name in ("read_set", "write_set"):
        if update.HasField(name):
            _group_to_json(getattr(update, name), document[name])
    return document


def config_update_from_json(
    document: object, *, source: str
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate a document of `config_update_to_json`'s shape describes.

    Raises:
        ConfigError: as `config_from_json`.
    """
    at = _At(source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: not a common.ConfigUpdate (a JSON object)")
    encoded = _with(document, "read_set", at, _group_from_json)
    encoded = _with(encoded, "write_set", at, _group_from_json)
    return _parsed(encoded, configtx_pb2.ConfigUpdate(), at, "common.ConfigUpdate")


def json_text(document: object) -> str:
    """A document as medledger writes JSON files: indented, keys sorted, newline last."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def message_document(message: Message) -> dict[str, Any]:
    """A message as JSON by the protobuf mapping: proto field names, defaults printed."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


@dataclass(frozen=True, slots=True)
class _At:
    """A place in the document being read, for error messages."""

    source: str
    path: tuple[str, ...] = ()

    def child(self, *names: str) -> _At:
        return _At(self.source, self.path + names)

    def __str__(self) -> str:
        shown = "".join(n if n.startswith("[") else f".{n}" for n in self.path)
        return f"{self.source}: {shown.removeprefix('.')}" if shown else self.source


# Config to JSON


def _group_to_json(group: configtx_pb2.ConfigGroup, document: dict[str, Any]) -> None:
    """Decode, in `document` (the group's), its values and policies and its subgroups'."""
    for name, value in group.values.items():
        kind = CONFIG_VALUES.get(name)
        if kind is msp_config_pb2.MSPConfig:
            shown = _bytes_to_json(msp_config_pb2.MSPConfig, value.value, _msp_to_json)
        elif kind is not None:
            shown = _bytes_to_json(kind, value.value)
        else:
            continue
        document["values"][name]["value"] = shown
    for name, policy in group.policies.items():
        if policy.HasField("policy"):
            _policy_to_json(policy.policy, document["policies"][name]["policy"])
    for name, subgroup in group.groups.items():
        _group_to_json(subgroup, document["groups"][name])


def _bytes_to_json(
    kind: type[_M],
    data: bytes,
    fill: Callable[[_M, dict[str, Any]], None] | None = None,
) -> object:
    """`data` as a `kind` document (completed by `fill`), or base64 if not canonical."""
    message = _canonical(kind, data)
    if message is None:
        return base64.b64encode(data).decode("ascii")
    document = message_document(message)
    if fill is not None:
        fill(message, document)
    return document


def _canonical(kind: type[_M], data: bytes) -> _M | None:
    """`data` decoded, if encoding the decoded message gives `data` again."""
    try:
        message = kind.FromString(data)
    except DecodeError:
        return None
    stubbed: Any = message  # the stubs of Message lack DiscardUnknownFields
    stubbed.DiscardUnknownFields()
    if message.SerializeToString(deterministic=True) != data:
        return None
    return message


def _msp_to_json(config: msp_config_pb2.MSPConfig, document: dict[str, Any]) -> None:
    if config.type == _FABRIC_MSP:
        document["config"] = _bytes_to_json(
            msp_config_pb2.FabricMSPConfig, config.config
        )


def _policy_to_json(policy: policies_pb2.Policy, document: dict[str, Any]) -> None:
    kind = _POLICY_VALUES.get(policy.type)
    if kind is policies_pb2.SignaturePolicyEnvelope:
        document["value"] = _bytes_to_json(
            policies_pb2.SignaturePolicyEnvelope, policy.value, _principals_to_json
        )
    elif kind is not None:
        document["value"] = _bytes_to_json(kind, policy.value)


def _principals_to_json(
    envelope: policies_pb2.SignaturePolicyEnvelope, document: dict[str, Any]
) -> None:
    for principal, entry in zip(
        envelope.identities, document["identities"], strict=True
    ):
        kind = _PRINCIPALS.get(principal.principal_classification)
        if kind is not None:
            entry["principal"] = _bytes_to_json(kind, principal.principal)


# JSON to config


_Encode = Callable[[object, _At], object]


def _with(
    document: dict[str, Any], key: str, at: _At, encode: _Encode
) -> dict[str, Any]:
    """A copy of `document` with its `key` (if there) encoded by `encode`."""
    if key not in document:
        return document
    return {**document, key: encode(document[key], at.child(key))}


def _each(
    document: dict[str, Any], key: str, at: _At, encode: _Encode
) -> dict[str, Any]:
    """A copy of `document` with every entry of the map at `key` encoded."""
    entries = document.get(key)
    if not isinstance(entries, dict):
        return document
    place = at.child(key)
    encoded = {
        name: encode(entry, place.child(name)) for name, entry in entries.items()
    }
    return {**document, key: encoded}


def _group_from_json(document: object, at: _At) -> object:
    if not isinstance(document, dict):
        return document  # the protobuf parser names what is wrong
    encoded = _each(document, "values", at, _value_from_json)
    encoded = _each(encoded, "policies", at, _policy_from_json)
    return _each(encoded, "groups", at, _group_from_json)


def _value_from_json(document: object, at: _At) -> object:
    if not isinstance(document, dict) or "value" not in document:
        return document
    name = at.path[-1]
    kind = CONFIG_VALUES.get(name)
    place = at.child("value")
    if kind is None:
        if isinstance(document["value"], str):
            return document
        raise ConfigError(
            f"{place}: no message is known for a value named {name!r}: "
            "give its bytes as base64"
        )
    fill = _msp_from_json if kind is msp_config_pb2.MSPConfig else None
    return {**document, "value": _bytes_from_json(kind, document["value"], place, fill)}


def _bytes_from_json(
    kind: type[Message],
    document: object,
    at: _At,
    fill: Callable[[dict[str, Any], _At], dict[str, Any]] | None = None,
) -> str:
    """A decoded `kind` encoded again, as base64; base64 as it came."""
    if isinstance(document, str):
        return document
    name = kind.DESCRIPTOR.name
    if not isinstance(document, dict):
        raise ConfigError(f"{at}: expected a {name} object or base64")
    if fill is not None:
        document = fill(document, at)
    message = _parsed(document, kind(), at, name)
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode()


def _parsed(document: object, message: _M, at: _At, name: str) -> _M:
    try:
        return json_format.ParseDict(document, message)
    except json_format.ParseError as error:
        raise ConfigError(f"{at}: not a {name}: {error}") from None


def _msp_from_json(document: dict[str, Any], at: _At) -> dict[str, Any]:
    if isinstance(document.get("config", ""), str):
        return document
    if document.get("type", _FABRIC_MSP) not in (_FABRIC_MSP, str(_FABRIC_MSP)):
        raise ConfigError(
            f"{at.child('config')}: a decoded config needs type 0 (FABRIC)"
        )
    config = _bytes_from_json(
        msp_config_pb2.FabricMSPConfig, document["config"], at.child("config")
    )
    return {**document, "config": config}


def _policy_from_json(document: object, at: _At) -> object:
    if not isinstance(document, dict):
        return document
    return _with(document, "policy", at, _policy_value_from_json)


def _policy_value_from_json(document: object, at: _At) -> object:
    if not isinstance(document, dict) or isinstance(document.get("value", ""), str):
        return document  # base64 (or no value) as it came
    kind = _POLICY_VALUES.get(_number(document.get("type", 0)))
    if kind is None:
        raise ConfigError(
            f"{at}: a decoded value needs type 1 (SIGNATURE) or 3 (IMPLICIT_META)"
        )
    fill = (
        _principals_from_json if kind is policies_pb2.SignaturePolicyEnvelope else None
    )
    value = _bytes_from_json(kind, document["value"], at.child("value"), fill)
    return {**document, "value": value}


def _principals_from_json(document: dict[str, Any], at: _At) -> dict[str, Any]:
    identities = document.get("identities")
    if not isinstance(identities, list):
        return document
    place = at.child("identities")
    encoded = [
        _principal_from_json(entry, place.child(f"[{index}]"))
        for index, entry in enumerate(identities)
    ]
    return {**document, "identities": encoded}


def _principal_from_json(document: object, at: _At) -> object:
    if not isinstance(document, dict) or isinstance(document.get("principal", ""), str):
        return document
    kind = _PRINCIPALS.get(_classification(document.get("principal_classification")))
    if kind is None:
        raise ConfigError(
            f"{at}: a decoded principal needs principal_classification ROLE, "
            "ORGANIZATION_UNIT or IDENTITY"
        )
    principal = _bytes_from_json(kind, document["principal"], at.child("principal"))
    return {**document, "principal": principal}


def _classification(shown: object) -> int:
    """A principal_classification as the document gives it (name, number or absent)."""
    if shown is None:
        return _Principal.ROLE
    if isinstance(shown, str) and shown in _CLASSIFICATIONS:
        return _CLASSIFICATIONS[shown]
    return _number(shown)


def _number(shown: object) -> int:
    """An int32 field's value as JSON may give it; -1 for what is not one."""
    if isinstance(shown, int) and not isinstance(shown, bool):
        return shown
    if (
        isinstance(shown, str)
        and shown.lstrip("-").isascii()
        and shown.lstrip("-").isdigit()
    ):
        return int(shown)
    return -1
