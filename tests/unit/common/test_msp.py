"""Unit tests for common.msp: deserialization, validation, NodeOU roles, principals."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import Certificate, PrivateKey
from common.errors import (
    ConfigError,
    ExpiredCertificate,
    IdentityError,
    InvalidNodeOU,
    InvalidSignature,
    MalformedIdentity,
    MalformedKey,
    RevokedCertificate,
    UnknownMsp,
    UntrustedCertificate,
)
from common.msp import (
    Identity,
    Msp,
    MspManager,
    Role,
    SigningIdentity,
    load_signing_identity,
)
from protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from tests.unit.common.conftest import (
    DAY,
    NOW,
    YEAR,
    Issued,
    OrgPki,
    issue,
    make_name,
)

ORG1 = "Org1MSP"
ORG2 = "Org2MSP"
ROLE_OUS = {"client": "client", "peer": "peer", "admin": "admin", "orderer": "orderer"}


def serialize(mspid: str, pem: bytes) -> bytes:
    return identities_pb2.SerializedIdentity(
        mspid=mspid, id_bytes=pem
    ).SerializeToString()


def msp_config(
    org: OrgPki,
    mspid: str,
    *,
    node_ous: bool = True,
    ou_certificate: bytes = b"",
    admins: tuple[bytes, ...] = (),
) -> msp_config_pb2.FabricMSPConfig:
    """FabricMSPConfig for an org: root + intermediate CA, its CRL, NodeOUs."""
    config = msp_config_pb2.FabricMSPConfig(
        name=mspid,
        root_certs=[org.root.pem],
        intermediate_certs=[org.intermediate.pem],
        revocation_list=[org.crl],
        admins=list(admins),
    )
    if node_ous:
        config.fabric_node_ous.enable = True
        for field in ("client", "peer", "admin", "orderer"):
            identifier = getattr(config.fabric_node_ous, f"{field}_ou_identifier")
            identifier.organizational_unit_identifier = ROLE_OUS[field]
            identifier.certificate = ou_certificate
    return config


def role_principal(
    mspid: str, role: msp_principal_pb2.MSPRole.MSPRoleType
) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(
            msp_identifier=mspid, role=role
        ).SerializeToString(),
    )


def identity_principal(serialized: bytes) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
        principal=serialized,
    )


def ou_principal(
    mspid: str, ou: str, certifiers: bytes = b""
) -> msp_principal_pb2.MSPPrincipal:
    unit = msp_principal_pb2.OrganizationUnit(
        msp_identifier=mspid,
        organizational_unit_identifier=ou,
        certifiers_identifier=certifiers,
    )
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT,
        principal=unit.SerializeToString(),
    )


@pytest.fixture(scope="module")
def msp1(org1: OrgPki) -> Msp:
    return Msp(msp_config(org1, ORG1))


@pytest.fixture(scope="module")
def manager(org1: OrgPki, org2: OrgPki) -> MspManager:
    return MspManager.from_configs([msp_config(org1, ORG1), msp_config(org2, ORG2)])


def identity_of(msp: Msp, issued: Issued) -> Identity:
    return msp.deserialize_identity(serialize(msp.mspid, issued.pem))


# --- deserialization ----------------------------------------------------------


def test_deserialize_keeps_exact_bytes_and_verifies(msp1: Msp, org1: OrgPki) -> None:
    """A client identity parses, keeps its bytes and checks its holder's signatures."""
    serialized = serialize(ORG1, org1.client.pem)
    identity = msp1.deserialize_identity(serialized)
    assert identity.mspid == ORG1
    assert identity.serialized == serialized
    assert identity.certificate.subject_cn == "user1@org1.example.com"
    signature = PrivateKey.from_pem(org1.client.key_pem).sign(b"proposal")
    identity.verify(b"proposal", signature)
    with pytest.raises(InvalidSignature):
        identity.verify(b"other", signature)


def test_deserialize_is_cached_by_bytes(msp1: Msp, org1: OrgPki) -> None:
    serialized = serialize(ORG1, org1.peer.pem)
    assert msp1.deserialize_identity(serialized) is msp1.deserialize_identity(
        serialized
    )


@pytest.mark.parametrize(
    "serialized",
    [
        b"\xff\xff",
        serialize(ORG1, b""),
        serialize(ORG1, b"not a pem"),
        serialize(
            ORG1, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        ),
    ],
)
def test_malformed_serialized_identity(msp1: Msp, serialized: bytes) -> None:
    with pytest.raises(MalformedIdentity):
        msp1.deserialize_identity(serialized)


def test_der_id_bytes_are_malformed(msp1: Msp, org1: OrgPki) -> None:
    """Fabric requires PEM in id_bytes; DER is refused."""
    der = Certificate.from_pem(org1.client.pem).der
    with pytest.raises(MalformedIdentity, match="not PEM"):
        msp1.deserialize_identity(serialize(ORG1, der))


def test_wrong_mspid_is_unknown_msp(msp1: Msp, org1: OrgPki) -> None:
    with pytest.raises(UnknownMsp, match="'Org9MSP'") as caught:
        msp1.deserialize_identity(serialize("Org9MSP", org1.client.pem))
    assert caught.value.mspid == "Org9MSP"


def test_identity_id_is_fabric_style(msp1: Msp, org1: OrgPki) -> None:
    identity = identity_of(msp1, org1.client)
    assert identity.id.startswith("x509::CN=user1@org1.example.com,OU=client,")
    assert "::CN=ica.org1.example.com," in identity.id


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["client", "peer", "admin", "orderer"])
def test_valid_identities_chain_through_the_intermediate(
    msp1: Msp, org1: OrgPki, who: str
) -> None:
    msp1.validate(identity_of(msp1, getattr(org1, who)), at=NOW)


def test_other_org_certificate_is_untrusted(msp1: Msp, org2: OrgPki) -> None:
    """A certificate from Org2's CAs presented as Org1MSP has no chain."""
    identity = identity_of(msp1, org2.client)
    with pytest.raises(
        UntrustedCertificate, match="not issued by a CA of msp 'Org1MSP'"
    ):
        msp1.validate(identity, at=NOW)


def test_identity_of_another_msp_is_unknown_to_validate(
    msp1: Msp, org1: OrgPki
) -> None:
    identity = Identity.from_certificate_pem(mspid=ORG2, pem=org1.client.pem)
    with pytest.raises(UnknownMsp, match="presented to msp 'Org1MSP'"):
        msp1.validate(identity, at=NOW)


def test_expired_and_not_yet_valid(msp1: Msp, org1: OrgPki) -> None:
    """Outside the validity period: two different messages, one error class."""
    with pytest.raises(ExpiredCertificate, match="expired at") as expired:
        msp1.validate(identity_of(msp1, org1.expired), at=NOW)
    assert "old@org1.example.com" in str(expired.value)
    assert "Org1MSP" in str(expired.value)
    with pytest.raises(ExpiredCertificate, match="not yet valid"):
        msp1.validate(identity_of(msp1, org1.not_yet_valid), at=NOW)
    msp1.validate(identity_of(msp1, org1.expired), at=NOW - 2 * DAY)


def test_revoked_certificate(msp1: Msp, org1: OrgPki) -> None:
    with pytest.raises(RevokedCertificate, match=r"revoked by a crl of 'CN=ica\.org1"):
        msp1.validate(identity_of(msp1, org1.revoked), at=NOW)


def test_no_role_ou_with_node_ous(msp1: Msp, org1: OrgPki) -> None:
    with pytest.raises(InvalidNodeOU, match="exactly one role OU") as caught:
        msp1.validate(identity_of(msp1, org1.no_role), at=NOW)
    assert "department1" in str(caught.value)


def test_two_role_ous_with_node_ous(msp1: Msp, org1: OrgPki) -> None:
    with pytest.raises(InvalidNodeOU, match="exactly one role OU"):
        msp1.validate(identity_of(msp1, org1.two_roles), at=NOW)


def test_ca_certificate_cannot_be_an_identity(msp1: Msp, org1: OrgPki) -> None:
    with pytest.raises(UntrustedCertificate, match="is a CA certificate"):
        msp1.validate(identity_of(msp1, org1.intermediate), at=NOW)


def test_identity_from_a_ca_that_issues_intermediates_is_untrusted(
    msp1: Msp, org1: OrgPki
) -> None:
    """Fabric: only leaf CAs of the MSP's tree may issue identities."""
    direct = issue(make_name("direct", ous=("client",)), parent=org1.root, is_ca=False)
    with pytest.raises(UntrustedCertificate, match="must come from a leaf CA"):
        msp1.validate(identity_of(msp1, direct), at=NOW)


def test_impostor_issuer_with_same_name_is_untrusted(msp1: Msp, org1: OrgPki) -> None:
    """Same issuer name, different key: the chain signature check fails."""
    impostor = issue(org1.intermediate.cert.subject, parent=None, is_ca=True)
    forged = issue(make_name("mallory", ous=("admin",)), parent=impostor, is_ca=False)
    with pytest.raises(UntrustedCertificate, match="not issued by a CA"):
        msp1.validate(identity_of(msp1, forged), at=NOW)


def test_successful_chain_is_cached(
    msp1: Msp, org1: OrgPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After one validation, validating again checks no signature."""
    identity = identity_of(msp1, org1.orderer)
    msp1.validate(identity, at=NOW)

    def fail(*_: object) -> bool:
        raise AssertionError("chain re-verified")

    monkeypatch.setattr(Certificate, "is_issued_by", fail)
    msp1.validate(identity, at=NOW)
    with pytest.raises(ExpiredCertificate):
        msp1.validate(identity, at=NOW + 2 * YEAR)


def test_node_ou_tied_to_another_ca(org1: OrgPki) -> None:
    """NodeOUs tied to the root CA reject identities issued by the intermediate."""
    msp = Msp(msp_config(org1, ORG1, ou_certificate=org1.root.pem))
    with pytest.raises(InvalidNodeOU, match="not issued by the CA"):
        msp.validate(identity_of(msp, org1.client), at=NOW)
    tied = Msp(msp_config(org1, ORG1, ou_certificate=org1.intermediate.pem))
    tied.validate(identity_of(tied, org1.client), at=NOW)


# --- roles and principals -----------------------------------------------------

ROLES = {
    "client": {Role.MEMBER, Role.CLIENT},
    "peer": {Role.MEMBER, Role.PEER},
    "admin": {Role.MEMBER, Role.ADMIN},
    "orderer": {Role.MEMBER, Role.ORDERER},
}
MSP_ROLE = {
    Role.MEMBER: msp_principal_pb2.MSPRole.MEMBER,
    Role.ADMIN: msp_principal_pb2.MSPRole.ADMIN,
    Role.CLIENT: msp_principal_pb2.MSPRole.CLIENT,
    Role.PEER: msp_principal_pb2.MSPRole.PEER,
    Role.ORDERER: msp_principal_pb2.MSPRole.ORDERER,
}


@pytest.mark.parametrize("who", sorted(ROLES))
def test_roles_and_role_principals(msp1: Msp, org1: OrgPki, who: str) -> None:
    """Each identity holds MEMBER plus exactly its own NodeOU role, for all 5 roles."""
    identity = identity_of(msp1, getattr(org1, who))
    assert msp1.identity_roles(identity, at=NOW) == ROLES[who]
    for role, msp_role in MSP_ROLE.items():
        expected = role in ROLES[who]
        assert msp1.has_role(identity, role, at=NOW) is expected
        assert (
            msp1.satisfies_principal(identity, role_principal(ORG1, msp_role))
            is expected
        )
        assert not msp1.satisfies_principal(identity, role_principal(ORG2, msp_role))


def test_invalid_identity_satisfies_no_principal(msp1: Msp, org1: OrgPki) -> None:
    revoked = identity_of(msp1, org1.revoked)
    member = role_principal(ORG1, msp_principal_pb2.MSPRole.MEMBER)
    assert not msp1.satisfies_principal(revoked, member)
    assert not msp1.satisfies_principal(revoked, identity_principal(revoked.serialized))
    with pytest.raises(RevokedCertificate):
        msp1.has_role(revoked, Role.CLIENT)


def test_identity_principal(msp1: Msp, org1: OrgPki) -> None:
    """IDENTITY matches the same serialized bytes, or the same mspid + certificate."""
    identity = identity_of(msp1, org1.peer)
    assert msp1.satisfies_principal(identity, identity_principal(identity.serialized))
    reformatted = serialize(ORG1, org1.peer.pem + b"\n")
    assert msp1.satisfies_principal(identity, identity_principal(reformatted))
    other = serialize(ORG1, org1.client.pem)
    assert not msp1.satisfies_principal(identity, identity_principal(other))
    other_msp = serialize(ORG2, org1.peer.pem)
    assert not msp1.satisfies_principal(identity, identity_principal(other_msp))
    assert not msp1.satisfies_principal(identity, identity_principal(b"\xff"))


def test_organization_unit_principal(msp1: Msp, org1: OrgPki) -> None:
    identity = identity_of(msp1, org1.client)
    assert msp1.satisfies_principal(identity, ou_principal(ORG1, "client"))
    assert not msp1.satisfies_principal(identity, ou_principal(ORG1, "peer"))
    assert not msp1.satisfies_principal(identity, ou_principal(ORG2, "client"))
    assert not msp1.satisfies_principal(identity, ou_principal(ORG1, "client", b"x"))


def test_unsupported_or_malformed_principals_never_match(
    msp1: Msp, org1: OrgPki
) -> None:
    identity = identity_of(msp1, org1.client)
    for classification in (
        msp_principal_pb2.MSPPrincipal.ANONYMITY,
        msp_principal_pb2.MSPPrincipal.COMBINED,
    ):
        principal = msp_principal_pb2.MSPPrincipal(
            principal_classification=classification
        )
        assert not msp1.satisfies_principal(identity, principal)
    garbage = msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE, principal=b"\xff"
    )
    assert not msp1.satisfies_principal(identity, garbage)


def test_admincerts_without_node_ous(org1: OrgPki) -> None:
    """NodeOUs off: admins come from admincerts; CLIENT/PEER never match."""
    msp = Msp(msp_config(org1, ORG1, node_ous=False, admins=(org1.no_role.pem,)))
    listed = identity_of(msp, org1.no_role)
    client = identity_of(msp, org1.client)
    assert msp.identity_roles(listed, at=NOW) == {Role.MEMBER, Role.ADMIN}
    assert msp.identity_roles(client, at=NOW) == {Role.MEMBER}
    admin = role_principal(ORG1, msp_principal_pb2.MSPRole.ADMIN)
    assert msp.satisfies_principal(listed, admin)
    assert not msp.satisfies_principal(identity_of(msp, org1.admin), admin)
    client_role = role_principal(ORG1, msp_principal_pb2.MSPRole.CLIENT)
    assert not msp.satisfies_principal(client, client_role)


def test_ou_identifiers_without_node_ous(org1: OrgPki) -> None:
    """Legacy OrganizationalUnitIdentifiers: the identity needs a listed OU."""
    config = msp_config(org1, ORG1, node_ous=False)
    config.organizational_unit_identifiers.add(organizational_unit_identifier="peer")
    msp = Msp(config)
    msp.validate(identity_of(msp, org1.peer), at=NOW)
    with pytest.raises(InvalidNodeOU, match="none of the OUs"):
        msp.validate(identity_of(msp, org1.client), at=NOW)


# --- configuration ------------------------------------------------------------


def test_to_config_round_trips(msp1: Msp, org1: OrgPki) -> None:
    config = msp1.to_config()
    assert config == msp_config(org1, ORG1)
    again = Msp(config)
    again.validate(identity_of(again, org1.peer), at=NOW)


def test_config_errors_name_the_msp_and_field(org1: OrgPki, org2: OrgPki) -> None:
    bad_root = msp_config(org1, ORG1)
    bad_root.root_certs[:] = [org1.client.pem]
    with pytest.raises(ConfigError, match=r"'Org1MSP': root_certs\[0\].*not a CA"):
        Msp(bad_root)
    orphan = msp_config(org1, ORG1)
    orphan.intermediate_certs[:] = [org2.intermediate.pem]
    with pytest.raises(ConfigError, match="does not chain to a root"):
        Msp(orphan)
    foreign_ou = msp_config(org1, ORG1, ou_certificate=org2.root.pem)
    with pytest.raises(ConfigError, match="client_ou_identifier"):
        Msp(foreign_ou)
    with pytest.raises(ConfigError, match="name"):
        Msp(msp_config_pb2.FabricMSPConfig(root_certs=[org1.root.pem]))
    junk = msp_config(org1, ORG1)
    junk.revocation_list[:] = [b"junk"]
    with pytest.raises(ConfigError, match=r"revocation_list\[0\]"):
        Msp(junk)


def write_msp_folder(path: Path, org: OrgPki, *, signer: Issued | None = None) -> None:
    files = {
        "cacerts/ca.pem": org.root.pem,
        "intermediatecerts/ica.pem": org.intermediate.pem,
        "crls/crl.pem": org.crl,
        "tlscacerts/tlsca.pem": org.root.pem,
    }
    if signer is not None:
        files["signcerts/cert.pem"] = signer.pem
        files["keystore/priv_sk"] = signer.key_pem
        files["keystore/other_sk"] = PrivateKey.generate().to_pem()
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    node_ous = "\n".join(
        f"  {key}OUIdentifier:\n"
        f"    Certificate: intermediatecerts/ica.pem\n"
        f"    OrganizationalUnitIdentifier: {ou}"
        for key, ou in [
            ("Client", "client"),
            ("Peer", "peer"),
            ("Admin", "admin"),
            ("Orderer", "orderer"),
        ]
    )
    (path / "config.yaml").write_text(f"NodeOUs:\n  Enable: true\n{node_ous}\n")


def test_msp_from_folder(tmp_path: Path, org1: OrgPki) -> None:
    """The familiar MSP folder with config.yaml behaves like the proto config."""
    write_msp_folder(tmp_path, org1)
    msp = Msp.from_folder(tmp_path, mspid=ORG1)
    assert msp.node_ous_enabled
    assert msp.identity_roles(identity_of(msp, org1.admin), at=NOW) == ROLES["admin"]
    with pytest.raises(RevokedCertificate):
        msp.validate(identity_of(msp, org1.revoked), at=NOW)
    config = msp.to_config()
    assert config.tls_root_certs == [org1.root.pem]
    assert config.crypto_config.signature_hash_family == "SHA2"
    assert (
        config.fabric_node_ous.peer_ou_identifier.certificate == org1.intermediate.pem
    )


def test_signing_identity_from_folder(tmp_path: Path, org1: OrgPki) -> None:
    write_msp_folder(tmp_path, org1, signer=org1.peer)
    signer = load_signing_identity(tmp_path, mspid=ORG1)
    msp = Msp.from_folder(tmp_path, mspid=ORG1)
    identity = msp.deserialize_identity(signer.serialized)
    identity.verify(b"block", signer.sign(b"block"))
    assert msp.has_role(identity, Role.PEER)


@pytest.mark.parametrize(
    ("config_yaml", "match"),
    [
        ("NodeOUs: [1]\n", "NodeOUs must be a mapping"),
        ("NodeOUs:\n  Enable: true\n  ClientOUIdentifier: {}\n", "ClientOUIdentifier"),
        (
            "NodeOUs:\n  Enable: true\n  PeerOUIdentifier:\n"
            "    Certificate: cacerts/missing.pem\n"
            "    OrganizationalUnitIdentifier: peer\n",
            "missing.pem",
        ),
        ("NodeOUs: {Enable: true\n", "not valid YAML"),
    ],
)
def test_bad_config_yaml(
    tmp_path: Path, org1: OrgPki, config_yaml: str, match: str
) -> None:
    write_msp_folder(tmp_path, org1)
    (tmp_path / "config.yaml").write_text(config_yaml)
    with pytest.raises(ConfigError, match=match):
        Msp.from_folder(tmp_path, mspid=ORG1)


def test_folder_without_cacerts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cacerts"):
        Msp.from_folder(tmp_path, mspid=ORG1)


# --- manager ------------------------------------------------------------------


def test_manager_dispatches_by_mspid(
    manager: MspManager, org1: OrgPki, org2: OrgPki
) -> None:
    one = manager.deserialize_identity(serialize(ORG1, org1.client.pem))
    two = manager.deserialize_identity(serialize(ORG2, org2.peer.pem))
    manager.validate(one)
    manager.validate(two)
    assert sorted(manager) == [ORG1, ORG2]
    member1 = role_principal(ORG1, msp_principal_pb2.MSPRole.MEMBER)
    assert manager.satisfies_principal(one, member1)
    assert not manager.satisfies_principal(two, member1)


def test_manager_unknown_and_cross_msp(
    manager: MspManager, org1: OrgPki, org2: OrgPki
) -> None:
    with pytest.raises(UnknownMsp, match=r"Org9MSP.*known: Org1MSP, Org2MSP"):
        manager.deserialize_identity(serialize("Org9MSP", org1.client.pem))
    crossed = manager.deserialize_identity(serialize(ORG2, org1.client.pem))
    with pytest.raises(UntrustedCertificate, match="msp 'Org2MSP'"):
        manager.validate(crossed)


def test_manager_at_time_fixes_the_clock(manager: MspManager, org1: OrgPki) -> None:
    """A manager view at a block's time judges validity periods at that time."""
    expired = manager.deserialize_identity(serialize(ORG1, org1.expired.pem))
    member = role_principal(ORG1, msp_principal_pb2.MSPRole.MEMBER)
    assert not manager.satisfies_principal(expired, member)
    past = manager.at_time(NOW - 2 * DAY)
    past.validate(expired)
    assert past.satisfies_principal(expired, member)
    assert past[ORG1] is manager[ORG1]


def test_manager_rejects_duplicate_ids(org1: OrgPki) -> None:
    with pytest.raises(ConfigError, match="twice"):
        MspManager.from_configs([msp_config(org1, ORG1), msp_config(org1, ORG1)])


# --- fuzz ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_serialized_identity_raises_only_identity_errors(
    manager: MspManager, data: bytes
) -> None:
    """Random bytes, and random id_bytes under a known MSP, raise only IdentityError."""
    with pytest.raises(IdentityError):
        manager.deserialize_identity(data)
    with pytest.raises(MalformedIdentity):
        manager.deserialize_identity(serialize(ORG1, data))
    with pytest.raises(MalformedIdentity):
        manager.deserialize_identity(
            serialize(ORG1, b"-----BEGIN CERTIFICATE-----\n" + data)
        )


def test_signing_identity_rejects_a_foreign_key(org1: OrgPki) -> None:
    identity = Identity.from_certificate_pem(mspid=ORG1, pem=org1.peer.pem)
    with pytest.raises(MalformedKey, match="does not match"):
        SigningIdentity(identity, PrivateKey.generate())


def test_identity_pickles_for_process_pools(msp1: Msp, org1: OrgPki) -> None:
    """Identities cross process boundaries (parallel signature checks at commit)."""
    identity = identity_of(msp1, org1.client)
    again = pickle.loads(pickle.dumps(identity))
    assert again == identity
    assert again.serialized == identity.serialized
    assert again.certificate.public_key == identity.certificate.public_key
