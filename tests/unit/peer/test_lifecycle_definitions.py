"""Unit tests for peer.lifecycle.definitions: Fabric 2.5's `_lifecycle` key layout and values.

Definitions are written as (key, value) pairs into a dictionary-backed state, read back,
and compared field by field; the stored bytes are decoded with the lifecycle protos to
check Fabric's layout (StateMetadata, StateData per field).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from common.policies import from_string
from peer.errors import ChaincodeDefinitionError
from peer.lifecycle import (
    DEFINITION_FIELDS,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    default_endorsement_policy,
    definition_writes,
    field_key,
    metadata_key,
    read_definition,
    signature_endorsement_policy,
)
from protos.peer import collection_pb2, policy_pb2
from protos.peer.lifecycle import chaincode_definition_pb2, db_pb2


@dataclass(frozen=True)
class Stored:
    value: bytes


class State:
    """Public state of the `_lifecycle` namespace as a dictionary."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], bytes] = {}

    def get_state(self, ns: str, key: str) -> Stored | None:
        value = self.values.get((ns, key))
        return None if value is None else Stored(value)

    def apply(self, writes: list[tuple[str, bytes]]) -> None:
        for key, value in writes:
            self.values[(LIFECYCLE_NAMESPACE, key)] = value


def collections() -> bytes:
    package = collection_pb2.CollectionConfigPackage()
    static = package.config.add().static_collection_config
    static.name = "diagnoses"
    static.member_orgs_policy.signature_policy.CopyFrom(
        from_string("OR('HospitalAMSP.member', 'HospitalBMSP.member')")
    )
    static.block_to_live = 10
    static.endorsement_policy.signature_policy.CopyFrom(
        from_string("OR('HospitalAMSP.peer')")
    )
    return package.SerializeToString()


DEFINITION = ChaincodeDefinition(
    name="records",
    version="1.0",
    sequence=1,
    endorsement_policy=default_endorsement_policy(),
    init_required=True,
    collections=collections(),
)


def committed(definition: ChaincodeDefinition) -> State:
    state = State()
    state.apply(definition_writes(definition))
    return state


def test_a_definition_reads_back_as_written() -> None:
    """Goal: read_definition inverts definition_writes. Method: write, read, compare."""
    assert read_definition(committed(DEFINITION), "records") == DEFINITION


def test_keys_and_values_follow_fabric_layout() -> None:
    """Goal: Fabric's key names and StateData/StateMetadata values, field by field."""
    state = committed(DEFINITION)
    assert sorted(key for _, key in state.values) == sorted(
        [metadata_key("records")]
        + [field_key("records", field) for field in DEFINITION_FIELDS]
    )
    assert metadata_key("records") == "namespaces/metadata/records"
    assert field_key("records", "Sequence") == "namespaces/fields/records/Sequence"
    ns = LIFECYCLE_NAMESPACE
    metadata = db_pb2.StateMetadata.FromString(
        state.values[(ns, "namespaces/metadata/records")]
    )
    assert metadata.datatype == "ChaincodeDefinition"
    assert list(metadata.fields) == [
        "Sequence",
        "EndorsementInfo",
        "ValidationInfo",
        "Collections",
    ]

    def field(name: str) -> db_pb2.StateData:
        return db_pb2.StateData.FromString(
            state.values[(ns, field_key("records", name))]
        )

    assert field("Sequence").Int64 == 1
    endorsement = chaincode_definition_pb2.ChaincodeEndorsementInfo.FromString(
        field("EndorsementInfo").Bytes
    )
    assert (endorsement.version, endorsement.init_required) == ("1.0", True)
    assert endorsement.endorsement_plugin == "escc"
    validation = chaincode_definition_pb2.ChaincodeValidationInfo.FromString(
        field("ValidationInfo").Bytes
    )
    assert validation.validation_plugin == "vscc"
    policy = policy_pb2.ApplicationPolicy.FromString(validation.validation_parameter)
    assert policy.channel_config_policy_reference == "/Channel/Application/Endorsement"
    assert field("Collections").Bytes == DEFINITION.collections


def test_sequence_zero_and_no_collections_are_still_written_as_set_fields() -> None:
    """Goal: oneof fields are present even when empty, as Go marshals them."""
    empty = replace(DEFINITION, sequence=0, collections=b"")
    values = dict(definition_writes(empty))
    assert values[field_key("records", "Sequence")] == b"\x08\x00"
    assert values[field_key("records", "Collections")] == b"\x12\x00"


def test_an_undefined_chaincode_reads_as_none() -> None:
    assert read_definition(committed(DEFINITION), "other") is None


def test_a_namespace_of_another_type_is_refused() -> None:
    state = committed(DEFINITION)
    state.values[(LIFECYCLE_NAMESPACE, metadata_key("records"))] = db_pb2.StateMetadata(
        datatype="ChaincodeParameters"
    ).SerializeToString()
    with pytest.raises(ChaincodeDefinitionError, match="ChaincodeParameters"):
        read_definition(state, "records")


def test_a_field_of_the_wrong_kind_is_refused() -> None:
    state = committed(DEFINITION)
    state.values[(LIFECYCLE_NAMESPACE, field_key("records", "Sequence"))] = (
        db_pb2.StateData(String="one").SerializeToString()
    )
    with pytest.raises(ChaincodeDefinitionError, match="expected Int64"):
        read_definition(state, "records")


def test_missing_fields_read_as_defaults() -> None:
    """Goal: Fabric decodes an absent field key to its zero value."""
    state = State()
    state.apply([(key, value) for key, value in definition_writes(DEFINITION)][-1:])
    definition = read_definition(state, "records")
    assert definition is not None
    assert (definition.sequence, definition.version, definition.collections) == (
        0,
        "",
        b"",
    )


def test_an_upgrade_writes_only_what_changed() -> None:
    """Goal: like Fabric's serializer, unchanged fields and metadata are not rewritten."""
    state = committed(DEFINITION)
    upgrade = replace(DEFINITION, sequence=2)
    writes = definition_writes(upgrade, committed=state)
    assert [key for key, _ in writes] == [field_key("records", "Sequence")]
    state.apply(writes)
    assert read_definition(state, "records") == upgrade


def test_collection_configs_are_decoded() -> None:
    (config,) = DEFINITION.collection_configs()
    assert config.name == "diagnoses"
    assert config.block_to_live == 10


def test_signature_endorsement_policy_wraps_an_envelope() -> None:
    envelope = from_string("AND('HospitalAMSP.peer', 'HospitalBMSP.peer')")
    policy = policy_pb2.ApplicationPolicy.FromString(
        signature_endorsement_policy(envelope)
    )
    assert policy.signature_policy == envelope
