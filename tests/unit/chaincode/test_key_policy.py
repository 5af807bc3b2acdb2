"""KeyEndorsementPolicy: the SignaturePolicyEnvelope bytes Fabric's helper produces."""

from __future__ import annotations

import pytest

from chaincode import KeyEndorsementPolicy
from common.errors import PolicyError
from common.policies import Role, from_string
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2


def test_one_signature_from_each_org_sorted_by_msp_id() -> None:
    """The envelope equals the DSL's AND over the orgs in MSP-id order, byte for byte."""
    policy = KeyEndorsementPolicy()
    policy.add_orgs("MEMBER", "Org2MSP", "Org1MSP")
    expected = from_string("AND('Org1MSP.member', 'Org2MSP.member')")
    assert policy.get_policy() == expected.SerializeToString(deterministic=True)


def test_roles_and_deletion() -> None:
    policy = KeyEndorsementPolicy()
    policy.add_orgs(Role.PEER, "Org3MSP")
    policy.add_orgs("member", "Org1MSP", "Org2MSP")
    policy.delete_orgs("Org2MSP", "NotThere")
    assert policy.list_orgs() == ["Org1MSP", "Org3MSP"]
    expected = from_string("AND('Org1MSP.member', 'Org3MSP.peer')")
    assert policy.get_policy() == expected.SerializeToString(deterministic=True)


def test_parsing_stored_policy_keeps_orgs_and_roles() -> None:
    original = KeyEndorsementPolicy()
    original.add_orgs("PEER", "Org1MSP")
    original.add_orgs("MEMBER", "Org2MSP")
    copy = KeyEndorsementPolicy(original.get_policy())
    assert copy.list_orgs() == ["Org1MSP", "Org2MSP"]
    assert copy.get_policy() == original.get_policy()


def test_empty_policy_has_no_orgs() -> None:
    policy = KeyEndorsementPolicy(b"")
    assert policy.list_orgs() == []
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy.get_policy())
    assert envelope.rule.n_out_of.n == 0


def test_non_role_principals_are_skipped() -> None:
    envelope = from_string("OR('Org1MSP.member')")
    envelope.identities.add(
        principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
        principal=b"cert",
    )
    assert KeyEndorsementPolicy(envelope.SerializeToString()).list_orgs() == ["Org1MSP"]


def test_refusals() -> None:
    with pytest.raises(PolicyError):
        KeyEndorsementPolicy(b"\xff\xff\xff")
    policy = KeyEndorsementPolicy()
    with pytest.raises(ValueError, match="ADMIN"):
        policy.add_orgs(Role.ADMIN, "Org1MSP")
    with pytest.raises(ValueError, match="unknown role"):
        policy.add_orgs("boss", "Org1MSP")
    with pytest.raises(ValueError, match="empty"):
        policy.add_orgs("MEMBER", "")
