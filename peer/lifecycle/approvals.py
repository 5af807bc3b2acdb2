"""Organisations' approvals of chaincode definitions, kept in their implicit collections.

Execute phase of `_lifecycle`. `ApproveChaincodeDefinitionForMyOrg` writes private
data in namespace `_lifecycle`, collection `_implicit_org_<MSPID>` of the approving
organisation, so that only hashes reach the block (as Fabric 2.5 lays them out):

    namespaces/metadata/<name>#<seq>                StateMetadata{"ChaincodeParameters",
                                                      [EndorsementInfo, ValidationInfo,
                                                       Collections]}
    namespaces/fields/<name>#<seq>/EndorsementInfo  StateData{Bytes = ChaincodeEndorsementInfo}
    namespaces/fields/<name>#<seq>/ValidationInfo   StateData{Bytes = ChaincodeValidationInfo}
    namespaces/fields/<name>#<seq>/Collections      StateData{Bytes = CollectionConfigPackage}
    chaincode-sources/metadata/<name>#<seq>         StateMetadata{"ChaincodeLocalPackage",
                                                      [PackageID]}
    chaincode-sources/fields/<name>#<seq>/PackageID StateData{String = package id}

Every channel member holds the hashed state, so any peer can tell whether an
organisation approved a definition by hashing the values that definition would have
written and comparing them with the committed hashes (`is_approved`); reading the
approval itself (`read_approval`) needs the plaintext, which only that organisation's
peers have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from peer.errors import ChaincodeDefinitionError, LifecycleError
from peer.lifecycle.definitions import (
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    decode_value,
    definition_from_infos,
    definition_infos,
    encode_value,
    field_key,
    metadata_key,
)
from protos.peer.lifecycle import chaincode_definition_pb2, db_pb2

__all__ = [
    "IMPLICIT_COLLECTION_PREFIX",
    "Approval",
    "CommittedPrivateData",
    "HashReader",
    "PrivateReader",
    "approval_writes",
    "approved_package_id",
    "has_approval",
    "implicit_collection",
    "is_approved",
    "parameter_mismatch",
    "read_approval",
    "source_is_approved",
]

IMPLICIT_COLLECTION_PREFIX = "_implicit_org_"
PARAMETERS_TYPE = "ChaincodeParameters"
PARAMETER_FIELDS = ("EndorsementInfo", "ValidationInfo", "Collections")
LOCAL_PACKAGE_TYPE = "ChaincodeLocalPackage"
SOURCE_FIELDS = ("PackageID",)
_SOURCES = "chaincode-sources"
_M = TypeVar("_M", bound=Message)


class HashReader(Protocol):
    """Hashed private state (a `TxSimulator` records these reads)."""

    def get_private_data_hash(self, ns: str, coll: str, key: str) -> bytes | None: ...


class PrivateReader(Protocol):
    """Private plaintext of a collection this peer holds (None when absent)."""

    def get_private_data(self, ns: str, coll: str, key: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Approval:
    """An organisation's approved definition and the package it named ("" for none)."""

    definition: ChaincodeDefinition
    package_id: str


class _Stored(Protocol):
    @property
    def value(self) -> bytes: ...


class _LedgerPrivateState(Protocol):
    def get_private_data(self, ns: str, coll: str, key: str) -> _Stored | None: ...


@dataclass(frozen=True, slots=True)
class CommittedPrivateData:
    """A `PrivateReader` over committed private state (a `ChannelLedger`)."""

    ledger: _LedgerPrivateState

    def get_private_data(self, ns: str, coll: str, key: str) -> bytes | None:
        stored = self.ledger.get_private_data(ns, coll, key)
        return None if stored is None else stored.value


def implicit_collection(mspid: str) -> str:
    """`_implicit_org_<MSPID>`: the organisation's own collection on every chaincode."""
    return f"{IMPLICIT_COLLECTION_PREFIX}{mspid}"


def approval_writes(
    definition: ChaincodeDefinition, package_id: str
) -> list[tuple[str, bytes]]:
    """The private (key, value) writes approving `definition` with `package_id`."""
    private = _private_name(definition.name, definition.sequence)
    return [*_parameter_values(definition), *_source_values(private, package_id)]


def is_approved(
    reader: HashReader, mspid: str, definition: ChaincodeDefinition
) -> bool:
    """Whether `mspid` approved exactly this definition (compares hashes only)."""
    return _hashes_match(reader, mspid, _parameter_values(definition))


def has_approval(reader: HashReader, mspid: str, *, name: str, sequence: int) -> bool:
    """Whether `mspid` approved any definition of `name` at `sequence` (hashes only)."""
    key = metadata_key(_private_name(name, sequence))
    value = _metadata(PARAMETERS_TYPE, PARAMETER_FIELDS)
    return _hashes_match(reader, mspid, [(key, value)])


def source_is_approved(
    reader: HashReader, mspid: str, *, name: str, sequence: int, package_id: str
) -> bool:
    """Whether `mspid`'s approval of `name` at `sequence` names `package_id`."""
    private = _private_name(name, sequence)
    return _hashes_match(reader, mspid, _source_values(private, package_id))


def read_approval(
    reader: PrivateReader, mspid: str, *, name: str, sequence: int
) -> Approval | None:
    """The organisation's approval from its plaintext (None when it has none).

    Raises:
        LifecycleError: the stored approval does not decode.
    """
    private = _private_name(name, sequence)
    collection = implicit_collection(mspid)

    def read(key: str) -> bytes | None:
        return reader.get_private_data(LIFECYCLE_NAMESPACE, collection, key)

    metadata = read(metadata_key(private))
    if metadata is None:
        return None
    _check_metadata(metadata, PARAMETERS_TYPE, what=private)
    endorsement = _decode_field(
        read(field_key(private, "EndorsementInfo")),
        chaincode_definition_pb2.ChaincodeEndorsementInfo,
        what=field_key(private, "EndorsementInfo"),
    )
    validation = _decode_field(
        read(field_key(private, "ValidationInfo")),
        chaincode_definition_pb2.ChaincodeValidationInfo,
        what=field_key(private, "ValidationInfo"),
    )
    collections = _state_data(
        read(field_key(private, "Collections")), what=field_key(private, "Collections")
    ).Bytes
    definition = definition_from_infos(
        name,
        sequence,
        endorsement=endorsement,
        validation=validation,
        collections=collections,
    )
    return Approval(definition, _read_package_id(read, private))


def approved_package_id(
    reader: PrivateReader, mspid: str, definition: ChaincodeDefinition
) -> str:
    """The package `mspid` approved for exactly this definition ("" when none).

    Raises:
        LifecycleError: the stored approval does not decode.
    """
    approval = read_approval(
        reader, mspid, name=definition.name, sequence=definition.sequence
    )
    if approval is None or approval.definition != definition:
        return ""
    return approval.package_id


def parameter_mismatch(
    committed: ChaincodeDefinition, requested: ChaincodeDefinition
) -> str:
    """How `requested` differs from `committed` in Fabric's words ("" when it does not)."""
    checks = (
        ("Version", committed.version, requested.version),
        (
            "EndorsementPlugin",
            committed.endorsement_plugin,
            requested.endorsement_plugin,
        ),
        ("InitRequired", committed.init_required, requested.init_required),
        ("ValidationPlugin", committed.validation_plugin, requested.validation_plugin),
    )
    for field, expected, passed in checks:
        if expected != passed:
            return (
                f"expected {field} '{_show(expected)}' does not match passed "
                f"{field} '{_show(passed)}'"
            )
    if committed.endorsement_policy != requested.endorsement_policy:
        return (
            f"expected ValidationParameter '{committed.endorsement_policy.hex()}' does "
            f"not match passed ValidationParameter '{requested.endorsement_policy.hex()}'"
        )
    if committed.collections != requested.collections:
        return "Collections do not match"
    return ""


def _private_name(name: str, sequence: int) -> str:
    return f"{name}#{sequence}"


def _parameter_values(definition: ChaincodeDefinition) -> list[tuple[str, bytes]]:
    private = _private_name(definition.name, definition.sequence)
    values = (*definition_infos(definition), definition.collections)
    return [
        (metadata_key(private), _metadata(PARAMETERS_TYPE, PARAMETER_FIELDS)),
        *(
            (field_key(private, field), encode_value(db_pb2.StateData(Bytes=value)))
            for field, value in zip(PARAMETER_FIELDS, values, strict=True)
        ),
    ]


def _source_values(private: str, package_id: str) -> list[tuple[str, bytes]]:
    return [
        (
            f"{_SOURCES}/metadata/{private}",
            _metadata(LOCAL_PACKAGE_TYPE, SOURCE_FIELDS),
        ),
        (
            f"{_SOURCES}/fields/{private}/PackageID",
            encode_value(db_pb2.StateData(String=package_id)),
        ),
    ]


def _hashes_match(
    reader: HashReader, mspid: str, values: Sequence[tuple[str, bytes]]
) -> bool:
    collection = implicit_collection(mspid)
    matched = True
    # Every key is read even after a mismatch, so that the read set (and hence the
    # endorsement payload) does not depend on where the first difference is.
    for key, value in values:
        stored = reader.get_private_data_hash(LIFECYCLE_NAMESPACE, collection, key)
        matched = matched and stored == hashlib.sha256(value).digest()
    return matched


def _read_package_id(read: _Read, private: str) -> str:
    metadata = read(f"{_SOURCES}/metadata/{private}")
    if metadata is None:
        return ""
    _check_metadata(metadata, LOCAL_PACKAGE_TYPE, what=f"{_SOURCES}/{private}")
    key = f"{_SOURCES}/fields/{private}/PackageID"
    data = _state_data(read(key), what=key)
    kind = data.WhichOneof("Type")
    if kind not in (None, "String"):
        raise LifecycleError(f"{key} holds {kind}, expected String")
    return data.String


class _Read(Protocol):
    def __call__(self, key: str) -> bytes | None: ...


def _check_metadata(data: bytes, datatype: str, *, what: str) -> None:
    metadata = _decode(db_pb2.StateMetadata, data, what=f"metadata of {what}")
    if metadata.datatype != datatype:
        raise LifecycleError(f"not a {datatype} type: {metadata.datatype}")


def _decode_field(data: bytes | None, message_type: type[_M], *, what: str) -> _M:
    state = _state_data(data, what=what)
    kind = state.WhichOneof("Type")
    if kind not in (None, "Bytes"):
        raise LifecycleError(f"{what} holds {kind}, expected Bytes")
    return _decode(message_type, state.Bytes, what=what)


def _state_data(data: bytes | None, *, what: str) -> db_pb2.StateData:
    return _decode(db_pb2.StateData, data or b"", what=what)


def _decode(message_type: type[_M], data: bytes, *, what: str) -> _M:
    try:
        return decode_value(message_type, data, what=what)
    except ChaincodeDefinitionError as error:
        raise LifecycleError(str(error)) from error


def _metadata(datatype: str, fields: Sequence[str]) -> bytes:
    return encode_value(db_pb2.StateMetadata(datatype=datatype, fields=list(fields)))


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
