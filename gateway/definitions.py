"""Chaincode definitions as the gateway learns them: from committed `_lifecycle` writes.

The gateway sees every block of its channels (it follows a peer's Deliver stream for
commit status and events), so it keeps the committed public entries of the
`_lifecycle` namespace below `namespaces/` and decodes a chaincode's definition from
them on demand. The layout is Fabric 2.5's:

    namespaces/metadata/<name>                StateMetadata{datatype "ChaincodeDefinition"}
    namespaces/fields/<name>/ValidationInfo   StateData{Bytes = ChaincodeValidationInfo}
    namespaces/fields/<name>/Collections      StateData{Bytes = CollectionConfigPackage}

Only what planning needs is decoded: the endorsement policy (the validation parameter,
an `ApplicationPolicy`) and, per collection, its member organisations and its own
endorsement policy. The peer's `peer.lifecycle.definitions` holds the full codec; the
gateway may not import the peer, so the few reads are repeated here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from common.policies import role_mspids
from protos.peer import collection_pb2
from protos.peer.lifecycle import chaincode_definition_pb2, db_pb2

__all__ = [
    "LIFECYCLE_NAMESPACE",
    "ChaincodeInfo",
    "CollectionInfo",
    "LifecycleState",
    "is_definition_key",
]

LIFECYCLE_NAMESPACE = "_lifecycle"
_PREFIX = "namespaces/"
_METADATA = "namespaces/metadata/"
_FIELDS = "namespaces/fields/"
_DEFINITION_TYPE = "ChaincodeDefinition"
_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A private data collection: who may hold its data, and its own endorsement policy.

    `endorsement_policy` is a marshaled ApplicationPolicy, empty when the collection
    has none (the chaincode's policy applies).
    """

    name: str
    members: frozenset[str]
    endorsement_policy: bytes = b""


@dataclass(frozen=True, slots=True)
class ChaincodeInfo:
    """What the planner needs of one committed chaincode definition."""

    name: str
    sequence: int
    endorsement_policy: bytes
    collections: Mapping[str, CollectionInfo] = field(
        default_factory=lambda: MappingProxyType({})
    )


def is_definition_key(key: str) -> bool:
    """Whether a `_lifecycle` key belongs to the public chaincode definitions."""
    return key.startswith(_PREFIX)


class LifecycleState:
    """The committed `namespaces/` entries of `_lifecycle`, with decoded definitions."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self._decoded: dict[str, ChaincodeInfo | None] = {}

    def apply(self, writes: Iterable[tuple[str, bytes | None]]) -> None:
        """Apply the writes of one valid transaction; None deletes the key."""
        for key, value in writes:
            if not is_definition_key(key):
                continue
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
            self._decoded.pop(_chaincode_of(key), None)

    def chaincode(self, name: str) -> ChaincodeInfo | None:
        """The committed definition of `name`, None when it has none.

        Raises:
            WireError: the stored entries do not decode as a chaincode definition.
        """
        if name not in self._decoded:
            self._decoded[name] = self._decode(name)
        return self._decoded[name]

    def names(self) -> tuple[str, ...]:
        """The defined chaincodes, sorted."""
        return tuple(
            sorted(
                key[len(_METADATA) :]
                for key in self._values
                if key.startswith(_METADATA)
            )
        )

    def _decode(self, name: str) -> ChaincodeInfo | None:
        metadata = self._values.get(_METADATA + name)
        if metadata is None:
            return None
        kind = _decode(db_pb2.StateMetadata, metadata, what=f"metadata of {name!r}")
        if kind.datatype != _DEFINITION_TYPE:
            return None
        sequence = self._field(name, "Sequence")
        validation = _decode(
            chaincode_definition_pb2.ChaincodeValidationInfo,
            self._field(name, "ValidationInfo").Bytes,
            what=f"validation info of {name!r}",
        )
        return ChaincodeInfo(
            name=name,
            sequence=sequence.Int64,
            endorsement_policy=validation.validation_parameter,
            collections=MappingProxyType(
                _collections(self._field(name, "Collections").Bytes, chaincode=name)
            ),
        )

    def _field(self, name: str, field_name: str) -> db_pb2.StateData:
        key = f"{_FIELDS}{name}/{field_name}"
        return _decode(db_pb2.StateData, self._values.get(key, b""), what=key)


def _collections(data: bytes, *, chaincode: str) -> dict[str, CollectionInfo]:
    package = _decode(
        collection_pb2.CollectionConfigPackage,
        data,
        what=f"collections of {chaincode!r}",
    )
    found: dict[str, CollectionInfo] = {}
    for config in package.config:
        if not config.HasField("static_collection_config"):
            continue
        static = config.static_collection_config
        policy = b""
        if static.HasField("endorsement_policy"):
            policy = static.endorsement_policy.SerializeToString(deterministic=True)
        found[static.name] = CollectionInfo(
            name=static.name,
            members=_members(static.member_orgs_policy),
            endorsement_policy=policy,
        )
    return found


def _members(policy: collection_pb2.CollectionPolicyConfig) -> frozenset[str]:
    """The MSP ids named by a collection's member policy (its distribution policy)."""
    return role_mspids(policy.signature_policy)


def _chaincode_of(key: str) -> str:
    """The chaincode name in a `namespaces/...` key."""
    if key.startswith(_METADATA):
        return key[len(_METADATA) :]
    rest = key[len(_FIELDS) :] if key.startswith(_FIELDS) else key
    return rest.rsplit("/", 1)[0]


def _decode(message_type: type[_M], data: bytes, *, what: str) -> _M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        raise WireError(f"_lifecycle {what} does not decode: {error}") from error
    return message
