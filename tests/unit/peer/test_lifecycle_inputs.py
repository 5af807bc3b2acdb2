"""Fabric's checks on a definition's name, version and collections, one broken rule each.

Method: the channel MSPs come from the example's genesis block; every invalid case
changes one field of a valid definition (negative space first).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.channelconfig import ChannelConfig
from common.msp import MspManager
from common.policies import from_string
from peer.errors import LifecycleError
from peer.lifecycle.definitions import ChaincodeDefinition, default_endorsement_policy
from peer.lifecycle.inputs import validate_definition_input
from protos.msp import msp_principal_pb2
from protos.peer import collection_pb2
from tests.support.peer import PeerMaterial, build_peer_material

Static = collection_pb2.StaticCollectionConfig


@pytest.fixture(scope="module")
def msps(tmp_path_factory: pytest.TempPathFactory) -> MspManager:
    material: PeerMaterial = build_peer_material(tmp_path_factory.mktemp("inputs"))
    return ChannelConfig.from_block(material.genesis).msp_manager


def collection(**changes: object) -> Static:
    config = Static(
        name="diagnoses",
        member_orgs_policy=collection_pb2.CollectionPolicyConfig(
            signature_policy=from_string(
                "OR('HospitalAMSP.member', 'HospitalBMSP.member')"
            )
        ),
        required_peer_count=1,
        maximum_peer_count=2,
        block_to_live=10,
    )
    for field, value in changes.items():
        if value is None:
            config.ClearField(field)
        else:
            setattr(config, field, value)
    return config


def package(*configs: Static) -> collection_pb2.CollectionConfigPackage:
    result = collection_pb2.CollectionConfigPackage()
    for config in configs:
        result.config.add(static_collection_config=config)
    return result


def check(
    msps: MspManager,
    *,
    name: str = "records",
    version: str = "1.0",
    collections: collection_pb2.CollectionConfigPackage | None = None,
    committed: ChaincodeDefinition | None = None,
) -> None:
    validate_definition_input(
        name=name,
        version=version,
        collections=collections if collections is not None else package(collection()),
        msps=msps,
        committed=committed,
    )


def committed_with(*configs: Static) -> ChaincodeDefinition:
    return ChaincodeDefinition(
        name="records",
        version="1.0",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
        collections=package(*configs).SerializeToString(deterministic=True),
    )


def test_a_valid_definition_passes(msps: MspManager) -> None:
    check(msps)
    check(msps, name="Records-2_x", version="1.0.0+build_7-rc")
    check(msps, collections=package(), committed=committed_with())
    check(msps, committed=committed_with(collection()))


def with_role_member(mspid: str) -> Static:
    config = collection()
    principal = config.member_orgs_policy.signature_policy.identities[0]
    principal.principal = msp_principal_pb2.MSPRole(
        msp_identifier=mspid, role=msp_principal_pb2.MSPRole.MEMBER
    ).SerializeToString()
    return config


def with_and_policy() -> Static:
    config = collection()
    config.member_orgs_policy.signature_policy.CopyFrom(
        from_string("AND('HospitalAMSP.member', 'HospitalBMSP.member')")
    )
    return config


CASES: list[tuple[Callable[[MspManager], None], str]] = [
    (lambda m: check(m, name="_records"), "invalid chaincode name '_records'"),
    (lambda m: check(m, name="rec ords"), "invalid chaincode name"),
    (lambda m: check(m, name="records-"), "invalid chaincode name"),
    (lambda m: check(m, name="qscc"), "'qscc' is the name of a system chaincode"),
    (lambda m: check(m, version=""), "invalid chaincode version ''"),
    (lambda m: check(m, version="1 0"), "invalid chaincode version '1 0'"),
    (
        lambda m: check(m, collections=package(collection(name="_x"))),
        "invalid collection name '_x'",
    ),
    (
        lambda m: check(m, collections=package(collection(), collection())),
        "collection-name: diagnoses -- found duplicate",
    ),
    (
        lambda m: check(m, collections=package(collection(maximum_peer_count=0))),
        r"maximum peer count \(0\) cannot be less than the required peer count \(1\)",
    ),
    (
        lambda m: check(
            m,
            collections=package(
                collection(required_peer_count=-1, maximum_peer_count=-1)
            ),
        ),
        r"requiredPeerCount \(-1\) cannot be less than zero",
    ),
    (
        lambda m: check(m, collections=package(collection(member_orgs_policy=None))),
        "collection member policy is not set for collection 'diagnoses'",
    ),
    (
        lambda m: check(m, collections=package(with_role_member("NoSuchMSP"))),
        "collection member 'NoSuchMSP' is not part of the channel",
    ),
    (
        lambda m: check(m, collections=package(with_and_policy())),
        "signature policy is not an OR concatenation",
    ),
    (
        lambda m: check(
            m, collections=package(), committed=committed_with(collection())
        ),
        "does not contain previously defined collections",
    ),
    (
        lambda m: check(
            m,
            collections=package(collection(name="notes")),
            committed=committed_with(collection()),
        ),
        r"existing collection \[diagnoses\] missing",
    ),
    (
        lambda m: check(
            m,
            collections=package(collection(block_to_live=11)),
            committed=committed_with(collection()),
        ),
        r"the BlockToLive in an existing collection \[diagnoses\] modified. Existing "
        r"value \[10\]",
    ),
]


@pytest.mark.parametrize(("call", "message"), CASES)
def test_each_broken_rule_is_refused_in_fabrics_words(
    msps: MspManager, call: Callable[[MspManager], None], message: str
) -> None:
    with pytest.raises(LifecycleError, match=message):
        call(msps)


def test_a_non_static_collection_entry_is_refused(msps: MspManager) -> None:
    with pytest.raises(LifecycleError, match="unexpected payload type"):
        check(msps, collections=collection_pb2.CollectionConfigPackage(config=[{}]))
