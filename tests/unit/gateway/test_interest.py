"""Chaincode interest and committed definitions → planner requirements."""

from __future__ import annotations

from common.channelconfig import ChannelConfig
from common.policies import from_string
from gateway.definitions import ChaincodeInfo, CollectionInfo, LifecycleState
from gateway.interest import (
    Call,
    calls_from_interest,
    calls_from_rwset,
    default_calls,
    requirements_for,
)
from gateway.planner import plan_layouts
from peer.lifecycle import (
    ChaincodeDefinition,
    default_endorsement_policy,
    definition_writes,
    signature_endorsement_policy,
)
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import collection_pb2, policy_pb2, proposal_response_pb2

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
ONE_EACH = {A: 1, B: 1, C: 1}


def envelope(text: str) -> bytes:
    return signature_endorsement_policy(from_string(text))


def records_info() -> ChaincodeInfo:
    return ChaincodeInfo(
        name="records",
        sequence=1,
        endorsement_policy=envelope(f"OR('{A}.member', '{B}.member', '{C}.member')"),
        collections={
            "diagnoses": CollectionInfo("diagnoses", frozenset({A, B})),
            "audits": CollectionInfo(
                "audits", frozenset({A, B, C}), envelope(f"AND('{C}.member')")
            ),
        },
    )


def plan(calls: tuple[Call, ...], config: ChannelConfig, **options: bool) -> list[str]:
    requirements = requirements_for(
        calls,
        chaincodes={"records": records_info()}.get,
        channel_policies=config.policy_manager,
        **options,
    )
    return [str(layout) for layout in plan_layouts(requirements, ONE_EACH, preferred=A)]


def test_the_chaincode_policy_alone(channel_config: ChannelConfig) -> None:
    assert plan(default_calls("records"), channel_config) == [
        f"1×{A}",
        f"1×{B}",
        f"1×{C}",
    ]


def test_a_collection_policy_adds_to_the_chaincode_policy(
    channel_config: ChannelConfig,
) -> None:
    calls = (Call("records"), Call("records", collections=("audits",)))
    assert plan(calls, channel_config) == [f"1×{C}"]


def test_private_reads_restrict_endorsers_to_members(
    channel_config: ChannelConfig,
) -> None:
    reads = (Call("records", collections=("diagnoses",), no_private_reads=False),)
    assert plan(reads, channel_config) == [f"1×{A}", f"1×{B}"]
    writes_only = (Call("records", collections=("diagnoses",)),)
    assert plan(writes_only, channel_config) == [f"1×{A}", f"1×{B}", f"1×{C}"]
    assert plan(writes_only, channel_config, protect_transient=True) == [
        f"1×{A}",
        f"1×{B}",
    ]


def test_key_level_policies_replace_a_disregarded_namespace_policy(
    channel_config: ChannelConfig,
) -> None:
    key_policy = from_string(f"AND('{B}.member', '{C}.member')").SerializeToString()
    calls = (
        Call("records", disregard_namespace_policy=True, key_policies=(key_policy,)),
    )
    assert plan(calls, channel_config) == [f"1×{B} + 1×{C}"]


def test_undefined_chaincodes_fall_back_to_the_channel_endorsement_policy(
    channel_config: ChannelConfig,
) -> None:
    assert plan(default_calls("unknown"), channel_config) == [
        f"1×{A} + 1×{B}",
        f"1×{A} + 1×{C}",
        f"1×{B} + 1×{C}",
    ]


def test_calls_from_a_peer_reported_interest() -> None:
    interest = proposal_response_pb2.ChaincodeInterest(
        chaincodes=[
            proposal_response_pb2.ChaincodeCall(name="records"),
            proposal_response_pb2.ChaincodeCall(
                name="records", collection_names=["diagnoses"], no_private_reads=True
            ),
        ]
    )
    assert calls_from_interest(interest) == (
        Call("records", no_private_reads=False),
        Call("records", collections=("diagnoses",)),
    )


def test_calls_derived_from_a_read_write_set() -> None:
    hashed = kv_rwset_pb2.HashedRWSet(
        hashed_reads=[kv_rwset_pb2.KVReadHash(key_hash=b"k")]
    ).SerializeToString()
    results = rwset_pb2.TxReadWriteSet(
        ns_rwset=[
            rwset_pb2.NsReadWriteSet(
                namespace="records",
                collection_hashed_rwset=[
                    rwset_pb2.CollectionHashedReadWriteSet(
                        collection_name="diagnoses", hashed_rwset=hashed
                    )
                ],
            ),
            rwset_pb2.NsReadWriteSet(namespace="consent"),
        ]
    ).SerializeToString()
    assert calls_from_rwset(results, chaincode="records") == (
        Call("records", collections=("diagnoses",), no_private_reads=False),
        Call("consent"),
    )


def test_definitions_written_by_the_peer_decode_for_planning() -> None:
    members = from_string(f"OR('{A}.member', '{B}.member')")
    package = collection_pb2.CollectionConfigPackage(
        config=[
            collection_pb2.CollectionConfig(
                static_collection_config=collection_pb2.StaticCollectionConfig(
                    name="diagnoses",
                    member_orgs_policy=collection_pb2.CollectionPolicyConfig(
                        signature_policy=members
                    ),
                    endorsement_policy=policy_pb2.ApplicationPolicy(
                        signature_policy=from_string(f"AND('{A}.member')")
                    ),
                )
            )
        ]
    )
    definition = ChaincodeDefinition(
        name="records",
        version="2.0",
        sequence=3,
        endorsement_policy=default_endorsement_policy(),
        collections=package.SerializeToString(),
    )
    state = LifecycleState()
    state.apply(definition_writes(definition))
    info = state.chaincode("records")
    assert info is not None
    assert (info.name, info.sequence) == ("records", 3)
    assert info.endorsement_policy == default_endorsement_policy()
    assert info.collections["diagnoses"].members == frozenset({A, B})
    assert info.collections["diagnoses"].endorsement_policy
    assert state.names() == ("records",)
    assert state.chaincode("other") is None
    state.apply([(key, None) for key, _ in definition_writes(definition)])
    assert state.chaincode("records") is None
