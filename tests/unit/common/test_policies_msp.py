"""Policy evaluation against the real MSP: certificates, NodeOU roles, ECDSA signatures.

The certificates come from the test PKI in conftest.py; validity is checked at its NOW.
"""

from __future__ import annotations

import pytest

from common.crypto import PrivateKey
from common.errors import PolicyNotSatisfied
from common.msp import Identity, MspManager, SigningIdentity
from common.policies import (
    PolicyManager,
    SignedData,
    evaluate_signature_policy,
    from_string,
    implicit_meta_from_string,
    valid_identities,
)
from protos.common import configtx_pb2, policies_pb2
from protos.msp import identities_pb2, msp_config_pb2
from tests.unit.common.conftest import NOW, Issued, OrgPki

ORG1 = "Org1MSP"
ORG2 = "Org2MSP"
DATA = b"proposal response payload || endorser"


def msp_config(org: OrgPki, mspid: str) -> msp_config_pb2.FabricMSPConfig:
    config = msp_config_pb2.FabricMSPConfig(
        name=mspid,
        root_certs=[org.root.pem],
        intermediate_certs=[org.intermediate.pem],
        revocation_list=[org.crl],
    )
    config.fabric_node_ous.enable = True
    for role in ("client", "peer", "admin", "orderer"):
        identifier = getattr(config.fabric_node_ous, f"{role}_ou_identifier")
        identifier.organizational_unit_identifier = role
    return config


@pytest.fixture(scope="module")
def msps(org1: OrgPki, org2: OrgPki) -> MspManager:
    configs = [msp_config(org1, ORG1), msp_config(org2, ORG2)]
    return MspManager.from_configs(configs).at_time(NOW)


def signer(issued: Issued, mspid: str) -> SigningIdentity:
    identity = Identity.from_certificate_pem(mspid=mspid, pem=issued.pem)
    return SigningIdentity(identity, PrivateKey.from_pem(issued.key_pem))


def sign(issued: Issued, mspid: str, data: bytes = DATA) -> SignedData:
    signing = signer(issued, mspid)
    return SignedData(
        data=data, identity=signing.serialized, signature=signing.sign(data)
    )


def test_two_org_peer_policy_with_real_signatures(
    msps: MspManager, org1: OrgPki, org2: OrgPki
) -> None:
    """AND of two orgs' peers passes with both peers and fails on any wrong piece."""
    envelope = from_string("AND('Org1MSP.peer', 'Org2MSP.peer')")
    evaluate_signature_policy(
        envelope, [sign(org1.peer, ORG1), sign(org2.peer, ORG2)], msps
    )
    wrong_data = sign(org2.peer, ORG2, data=b"something else")
    wrong_data = SignedData(
        data=DATA, identity=wrong_data.identity, signature=wrong_data.signature
    )
    failing = [
        [sign(org1.peer, ORG1)],
        [sign(org1.peer, ORG1), sign(org2.client, ORG2)],
        [sign(org1.peer, ORG1), wrong_data],
        [sign(org1.peer, ORG1), sign(org2.expired, ORG2)],
        [sign(org1.peer, ORG1), sign(org2.revoked, ORG2)],
        [sign(org1.peer, ORG1), sign(org2.peer, ORG1)],
    ]
    for signed_data in failing:
        with pytest.raises(PolicyNotSatisfied):
            evaluate_signature_policy(envelope, signed_data, msps)


def test_one_certificate_in_two_encodings_is_one_signer(
    msps: MspManager, org1: OrgPki
) -> None:
    """Re-encoding a certificate's PEM does not make its holder count twice."""
    first = sign(org1.client, ORG1)
    reencoded_pem = org1.client.pem + b"\n"
    identity = identities_pb2.SerializedIdentity(mspid=ORG1, id_bytes=reencoded_pem)
    key = PrivateKey.from_pem(org1.client.key_pem)
    second = SignedData(
        data=DATA, identity=identity.SerializeToString(), signature=key.sign(DATA)
    )
    assert first.identity != second.identity
    assert len(valid_identities([first, second], msps)) == 1
    envelope = from_string("AND('Org1MSP.member', 'Org1MSP.member')")
    with pytest.raises(PolicyNotSatisfied):
        evaluate_signature_policy(envelope, [first, second], msps)
    evaluate_signature_policy(envelope, [first, sign(org1.peer, ORG1)], msps)


def config_policy(policy_type: int, value: bytes) -> configtx_pb2.ConfigPolicy:
    return configtx_pb2.ConfigPolicy(
        policy=policies_pb2.Policy(type=policy_type, value=value)
    )


def test_channel_endorsement_majority_with_real_msps(
    msps: MspManager, org1: OrgPki, org2: OrgPki
) -> None:
    """MAJORITY Endorsement over two orgs needs a peer signature from each."""
    signature = policies_pb2.Policy.SIGNATURE
    orgs = {
        mspid: configtx_pb2.ConfigGroup(
            policies={
                "Endorsement": config_policy(
                    signature, from_string(f"OR('{mspid}.peer')").SerializeToString()
                )
            }
        )
        for mspid in (ORG1, ORG2)
    }
    majority = implicit_meta_from_string("MAJORITY Endorsement").SerializeToString()
    application = configtx_pb2.ConfigGroup(
        groups=orgs,
        policies={
            "Endorsement": config_policy(policies_pb2.Policy.IMPLICIT_META, majority)
        },
    )
    channel = configtx_pb2.ConfigGroup(groups={"Application": application})
    policy = PolicyManager.from_config_group(channel).get(
        "/Channel/Application/Endorsement"
    )
    policy.evaluate([sign(org1.peer, ORG1), sign(org2.peer, ORG2)], msps)
    with pytest.raises(PolicyNotSatisfied, match="1 of 2"):
        policy.evaluate([sign(org1.peer, ORG1), sign(org2.admin, ORG2)], msps)
