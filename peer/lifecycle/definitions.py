"""Committed chaincode definitions in the `_lifecycle` namespace, laid out as Fabric 2.5 does.

Validation reads them (which policy endorses a namespace, which collections it has); the
lifecycle commands write them through an ordinary transaction whose public write set is
`definition_writes(...)`, endorsed under /Channel/Application/LifecycleEndorsement. Until
those commands exist, tests commit definitions the same way, never through side config.

Keys and values in namespace `_lifecycle` (each field value is a `lifecycle.StateData`):

    namespaces/metadata/<name>                  StateMetadata{datatype "ChaincodeDefinition",
                                                  fields [Sequence, EndorsementInfo,
                                                  ValidationInfo, Collections]}
    namespaces/fields/<name>/Sequence           StateData{Int64 = sequence}
    namespaces/fields/<name>/EndorsementInfo    StateData{Bytes = ChaincodeEndorsementInfo}
    namespaces/fields/<name>/ValidationInfo     StateData{Bytes = ChaincodeValidationInfo}
    namespaces/fields/<name>/Collections        StateData{Bytes = CollectionConfigPackage}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from peer.errors import ChaincodeDefinitionError
from protos.common import policies_pb2
from protos.peer import collection_pb2, policy_pb2
from protos.peer.lifecycle import chaincode_definition_pb2, db_pb2

__all__ = [
    "DEFAULT_ENDORSEMENT_PLUGIN",
    "DEFAULT_ENDORSEMENT_POLICY_REF",
    "DEFAULT_VALIDATION_PLUGIN",
    "DEFINITION_FIELDS",
    "DEFINITION_TYPE",
    "LIFECYCLE_CHAINCODE_VERSION",
    "LIFECYCLE_ENDORSEMENT_POLICY_REF",
    "LIFECYCLE_NAMESPACE",
    "ChaincodeDefinition",
    "DefinitionReader",
    "default_endorsement_policy",
    "definition_writes",
    "field_key",
    "metadata_key",
    "read_definition",
    "signature_endorsement_policy",
]

LIFECYCLE_NAMESPACE = "_lifecycle"
LIFECYCLE_CHAINCODE_VERSION = "syscc"
"""The version Fabric endorsers put in a system chaincode's ChaincodeAction."""

DEFINITION_TYPE = "ChaincodeDefinition"
DEFINITION_FIELDS = ("Sequence", "EndorsementInfo", "ValidationInfo", "Collections")
"""The fields of Fabric's ChaincodeDefinition struct, in declaration order."""

DEFAULT_ENDORSEMENT_PLUGIN = "escc"
DEFAULT_VALIDATION_PLUGIN = "vscc"
DEFAULT_ENDORSEMENT_POLICY_REF = "/Channel/Application/Endorsement"
LIFECYCLE_ENDORSEMENT_POLICY_REF = "/Channel/Application/LifecycleEndorsement"

_NAMESPACES = "namespaces"
_M = TypeVar("_M", bound=Message)


class _Stored(Protocol):
    @property
    def value(self) -> bytes: ...


class DefinitionReader(Protocol):
    """Committed public state: `ChannelLedger`, a simulator's `StateReader`, a fake."""

    def get_state(self, ns: str, key: str) -> _Stored | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaincodeDefinition:
    """One committed chaincode definition.

    `endorsement_policy` is the marshaled `ApplicationPolicy` Fabric calls the validation
    parameter (a signature policy, or a reference such as /Channel/Application/Endorsement);
    `collections` is a marshaled `CollectionConfigPackage` (empty when there are none).
    """

    name: str
    version: str
    sequence: int
    endorsement_policy: bytes
    init_required: bool = False
    collections: bytes = b""
    endorsement_plugin: str = DEFAULT_ENDORSEMENT_PLUGIN
    validation_plugin: str = DEFAULT_VALIDATION_PLUGIN

    def collection_configs(self) -> tuple[collection_pb2.StaticCollectionConfig, ...]:
        """The static collection configs of this definition, in definition order.

        Raises:
            ChaincodeDefinitionError: the collections bytes do not decode.
        """
        package = decode_value(
            collection_pb2.CollectionConfigPackage,
            self.collections,
            what=f"collections of chaincode {self.name!r}",
        )
        return tuple(
            config.static_collection_config
            for config in package.config
            if config.HasField("static_collection_config")
        )


def default_endorsement_policy() -> bytes:
    """The policy a definition gets when none is given: /Channel/Application/Endorsement."""
    return policy_pb2.ApplicationPolicy(
        channel_config_policy_reference=DEFAULT_ENDORSEMENT_POLICY_REF
    ).SerializeToString()


def signature_endorsement_policy(
    envelope: policies_pb2.SignaturePolicyEnvelope,
) -> bytes:
    """An ApplicationPolicy holding a signature policy (e.g. from `policies.from_string`)."""
    return policy_pb2.ApplicationPolicy(signature_policy=envelope).SerializeToString(
        deterministic=True
    )


def metadata_key(name: str) -> str:
    """`namespaces/metadata/<name>`: the entry that says a chaincode is defined."""
    return f"{_NAMESPACES}/metadata/{name}"


def field_key(name: str, field: str) -> str:
    """`namespaces/fields/<name>/<field>`."""
    return f"{_NAMESPACES}/fields/{name}/{field}"


def definition_writes(
    definition: ChaincodeDefinition, *, committed: DefinitionReader | None = None
) -> list[tuple[str, bytes]]:
    """The `_lifecycle` writes that commit `definition`: (key, value) pairs.

    As Fabric's serializer: a field whose committed value is already byte-identical is
    not written again, and the metadata entry only when it is missing or differs. Without
    `committed` every key is written (a first definition).
    """
    values = [
        (field_key(definition.name, field), value)
        for field, value in zip(
            DEFINITION_FIELDS, _field_values(definition), strict=True
        )
    ]
    values.append((metadata_key(definition.name), _metadata_value()))
    if committed is None:
        return values
    return [
        (key, value)
        for key, value in values
        if _committed_value(committed, key) != value
    ]


def read_definition(reader: DefinitionReader, name: str) -> ChaincodeDefinition | None:
    """The committed definition of chaincode `name`, or None when it is not defined.

    Fields without a stored value read as their defaults, as in Fabric.

    Raises:
        ChaincodeDefinitionError: the namespace entry is not a chaincode definition, or a
            field does not decode.
    """
    metadata_bytes = _committed_value(reader, metadata_key(name))
    if metadata_bytes is None:
        return None
    metadata = decode_value(
        db_pb2.StateMetadata, metadata_bytes, what=f"metadata of namespace {name!r}"
    )
    if metadata.datatype != DEFINITION_TYPE:
        raise ChaincodeDefinitionError(
            f"namespace {name!r} is a {metadata.datatype!r}, not a chaincode definition"
        )
    sequence = _read_field(reader, name, "Sequence")
    endorsement = _read_message(
        reader,
        name,
        "EndorsementInfo",
        chaincode_definition_pb2.ChaincodeEndorsementInfo,
    )
    validation = _read_message(
        reader, name, "ValidationInfo", chaincode_definition_pb2.ChaincodeValidationInfo
    )
    collections = _read_field(reader, name, "Collections")
    return definition_from_infos(
        name,
        _as_int64(sequence, name=name),
        endorsement=endorsement,
        validation=validation,
        collections=_as_bytes(collections, name=name, field="Collections"),
    )


def definition_infos(definition: ChaincodeDefinition) -> tuple[bytes, bytes]:
    """The serialized ChaincodeEndorsementInfo and ChaincodeValidationInfo of a definition.

    A committed definition and an organisation's approval of it store the same bytes.
    """
    endorsement = chaincode_definition_pb2.ChaincodeEndorsementInfo(
        version=definition.version,
        init_required=definition.init_required,
        endorsement_plugin=definition.endorsement_plugin,
    )
    validation = chaincode_definition_pb2.ChaincodeValidationInfo(
        validation_plugin=definition.validation_plugin,
        validation_parameter=definition.endorsement_policy,
    )
    return encode_value(endorsement), encode_value(validation)


def definition_from_infos(
    name: str,
    sequence: int,
    *,
    endorsement: chaincode_definition_pb2.ChaincodeEndorsementInfo,
    validation: chaincode_definition_pb2.ChaincodeValidationInfo,
    collections: bytes,
) -> ChaincodeDefinition:
    """The definition whose stored fields these are (the inverse of `definition_infos`)."""
    return ChaincodeDefinition(
        name=name,
        version=endorsement.version,
        sequence=sequence,
        endorsement_policy=validation.validation_parameter,
        init_required=endorsement.init_required,
        collections=collections,
        endorsement_plugin=endorsement.endorsement_plugin,
        validation_plugin=validation.validation_plugin,
    )


def decode_value(message_type: type[_M], data: bytes, *, what: str) -> _M:
    """Parse a stored `_lifecycle` value.

    Raises:
        ChaincodeDefinitionError: it does not decode (the message names `what`).
    """
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        raise ChaincodeDefinitionError(
            f"{what} does not decode as {message_type.DESCRIPTOR.full_name}: {error}"
        ) from error
    return message


def encode_value(message: Message) -> bytes:
    """Serialise a `_lifecycle` value deterministically (hashes and MVCC compare bytes)."""
    return message.SerializeToString(deterministic=True)


def _field_values(definition: ChaincodeDefinition) -> Sequence[bytes]:
    """Each field's StateData bytes, in DEFINITION_FIELDS order."""
    endorsement, validation = definition_infos(definition)
    return (
        encode_value(db_pb2.StateData(Int64=definition.sequence)),
        encode_value(db_pb2.StateData(Bytes=endorsement)),
        encode_value(db_pb2.StateData(Bytes=validation)),
        encode_value(db_pb2.StateData(Bytes=definition.collections)),
    )


def _metadata_value() -> bytes:
    return encode_value(
        db_pb2.StateMetadata(datatype=DEFINITION_TYPE, fields=list(DEFINITION_FIELDS))
    )


def _committed_value(reader: DefinitionReader, key: str) -> bytes | None:
    stored = reader.get_state(LIFECYCLE_NAMESPACE, key)
    return None if stored is None else stored.value


def _read_field(reader: DefinitionReader, name: str, field: str) -> db_pb2.StateData:
    key = field_key(name, field)
    return decode_value(
        db_pb2.StateData, _committed_value(reader, key) or b"", what=key
    )


def _read_message(
    reader: DefinitionReader, name: str, field: str, message_type: type[_M]
) -> _M:
    data = _as_bytes(_read_field(reader, name, field), name=name, field=field)
    return decode_value(message_type, data, what=field_key(name, field))


def _as_int64(data: db_pb2.StateData, *, name: str) -> int:
    kind = data.WhichOneof("Type")
    if kind is None:
        return 0
    if kind != "Int64":
        raise ChaincodeDefinitionError(
            f"{field_key(name, 'Sequence')} holds {kind}, expected Int64"
        )
    return data.Int64


def _as_bytes(data: db_pb2.StateData, *, name: str, field: str) -> bytes:
    kind = data.WhichOneof("Type")
    if kind is None:
        return b""
    if kind != "Bytes":
        raise ChaincodeDefinitionError(
            f"{field_key(name, field)} holds {kind}, expected Bytes"
        )
    return data.Bytes
