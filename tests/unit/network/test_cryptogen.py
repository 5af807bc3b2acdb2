"""Unit tests for network.cryptogen and common.crypto.issue: the generated MSP tree.

The example consortium is generated once per module; the tests read the files back
and check them with our parser and with `openssl verify`.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import utils

from common.crypto import Certificate, PrivateKey, RevocationList
from common.crypto.issue import (
    Subject,
    attributes_extension_value,
    issue_ca,
    issue_certificate,
    issue_crl,
    issue_intermediate,
)
from common.crypto.signing import CURVE_ORDERS
from common.errors import ConfigError, CryptoError
from network.cryptogen import (
    CryptoLayout,
    IdentityLayout,
    OrganizationLayout,
    crypto_layout,
    generate_crypto,
)
from network.spec import ConsortiumSpec, UserSpec, load_spec
from tests.conftest import skip_or_fail
from tests.unit.example_channel import EXAMPLE

MESSAGE = b"discharge summary"


@pytest.fixture(scope="module")
def spec() -> ConsortiumSpec:
    return load_spec(EXAMPLE)


@pytest.fixture(scope="module")
def layout(
    spec: ConsortiumSpec, tmp_path_factory: pytest.TempPathFactory
) -> CryptoLayout:
    return generate_crypto(spec, tmp_path_factory.mktemp("crypto"))


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        skip_or_fail("the openssl command is not installed")
    assert path is not None
    return path


def identities(layout: CryptoLayout) -> Iterator[IdentityLayout]:
    for organization in layout.organizations:
        yield from identities_of(organization)


def identities_of(organization: OrganizationLayout) -> list[IdentityLayout]:
    return [*organization.nodes, *organization.users]


def read_cert(path: Path) -> Certificate:
    return Certificate.from_pem(path.read_bytes())


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def openssl_verify(openssl: str, ca: Path, certs: list[Path], *extra: str) -> None:
    result = subprocess.run(
        [openssl, "verify", "-x509_strict", *extra, "-CAfile", str(ca)]
        + [str(c) for c in certs],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(certs), result.stdout


# --- the tree ---------------------------------------------------------------------


def test_tree_has_every_file_in_fabric_layout(layout: CryptoLayout) -> None:
    hospital_a = layout.organization("HospitalAMSP")
    root = layout.root / "organizations" / "hospital-a.example.com"
    assert hospital_a.root == root
    expected = [
        "ca/ca.hospital-a.example.com-cert.pem",
        "ca/priv_sk",
        "tlsca/tlsca.hospital-a.example.com-cert.pem",
        "tlsca/priv_sk",
        "msp/cacerts/ca.hospital-a.example.com-cert.pem",
        "msp/tlscacerts/tlsca.hospital-a.example.com-cert.pem",
        "msp/crls/ca.hospital-a.example.com-crl.pem",
        "msp/config.yaml",
        "peers/peer0.hospital-a.example.com/msp/cacerts/ca.hospital-a.example.com-cert.pem",
        "peers/peer0.hospital-a.example.com/msp/tlscacerts/"
        "tlsca.hospital-a.example.com-cert.pem",
        "peers/peer0.hospital-a.example.com/msp/keystore/priv_sk",
        "peers/peer0.hospital-a.example.com/msp/signcerts/"
        "peer0.hospital-a.example.com-cert.pem",
        "peers/peer0.hospital-a.example.com/msp/config.yaml",
        "peers/peer0.hospital-a.example.com/tls/ca.crt",
        "peers/peer0.hospital-a.example.com/tls/server.crt",
        "peers/peer0.hospital-a.example.com/tls/server.key",
        "users/Admin@hospital-a.example.com/msp/keystore/priv_sk",
        "users/Admin@hospital-a.example.com/msp/signcerts/"
        "Admin@hospital-a.example.com-cert.pem",
        "users/Admin@hospital-a.example.com/msp/config.yaml",
        "users/Admin@hospital-a.example.com/tls/ca.crt",
        "users/Admin@hospital-a.example.com/tls/client.crt",
        "users/Admin@hospital-a.example.com/tls/client.key",
    ]
    missing = [name for name in expected if not (root / name).is_file()]
    assert missing == []
    commission = layout.root / "organizations" / "commission.example.com"
    for index in range(3):
        node = commission / "orderers" / f"orderer{index}.commission.example.com"
        assert (node / "tls" / "server.crt").is_file()
        assert (node / "msp" / "keystore" / "priv_sk").is_file()


def test_layout_is_computed_without_generating(
    spec: ConsortiumSpec, layout: CryptoLayout
) -> None:
    assert crypto_layout(spec, layout.root) == layout
    assert layout.organization_dirs["HospitalBMSP"] == (
        layout.root / "organizations" / "hospital-b.example.com"
    )
    patient = layout.organization("HospitalAMSP").user("patient-0017")
    assert patient.signcert.is_file()
    assert (
        layout.organization("HealthCommissionMSP").orderer("orderer2").tls_key.is_file()
    )


def test_private_keys_are_owner_only(layout: CryptoLayout) -> None:
    keys = [p for p in layout.root.rglob("*") if p.name in {"priv_sk", "server.key"}]
    keys += list(layout.root.rglob("client.key"))
    assert len(keys) > 20
    modes = {stat.S_IMODE(key.stat().st_mode) for key in keys}
    assert modes == {0o600}


def test_no_temporary_files_are_left(layout: CryptoLayout) -> None:
    assert list(layout.root.rglob(".*.tmp")) == []


# --- certificates -----------------------------------------------------------------


def test_every_certificate_verifies_against_its_ca_with_openssl(
    layout: CryptoLayout, openssl: str
) -> None:
    for organization in layout.organizations:
        signing = [organization.msp_dir / "cacerts" / organization.ca_cert.name]
        signing += [identity.signcert for identity in identities_of(organization)]
        openssl_verify(openssl, organization.ca_cert, signing)
        servers = [node.tls_cert for node in organization.nodes]
        clients = [user.tls_cert for user in organization.users]
        if servers:
            openssl_verify(
                openssl, organization.tlsca_cert, servers, "-purpose", "sslserver"
            )
        openssl_verify(
            openssl, organization.tlsca_cert, servers + clients, "-purpose", "sslclient"
        )


def test_certificates_pass_openssl_crl_check(
    layout: CryptoLayout, openssl: str
) -> None:
    organization = layout.organization("HospitalBMSP")
    certs = [identity.signcert for identity in identities_of(organization)]

    openssl_verify(
        openssl,
        organization.ca_cert,
        certs,
        "-crl_check",
        "-CRLfile",
        str(organization.crl),
    )


def test_node_ous_match_roles(layout: CryptoLayout) -> None:
    roles = {
        identity.name: read_cert(identity.signcert).subject_ous
        for identity in identities(layout)
    }

    assert roles["peer0.hospital-a.example.com"] == ("peer",)
    assert roles["orderer1.commission.example.com"] == ("orderer",)
    assert roles["Admin@hospital-c.example.com"] == ("admin",)
    assert roles["dr-lee@hospital-a.example.com"] == ("client",)
    assert roles["patient-0230@hospital-c.example.com"] == ("client",)


def test_subjects_name_identity_and_organisation(layout: CryptoLayout) -> None:
    organization = layout.organization("HospitalAMSP")
    ca = read_cert(organization.ca_cert)
    peer = read_cert(organization.peer("peer0").signcert)

    assert (ca.subject_cn, ca.subject_org, ca.is_ca) == (
        "ca.hospital-a.example.com",
        "Hospital A",
        True,
    )
    assert (peer.subject_cn, peer.subject_org, peer.is_ca) == (
        "peer0.hospital-a.example.com",
        "Hospital A",
        False,
    )
    assert peer.is_issued_by(ca)
    assert peer.authority_key_id == ca.subject_key_id == ca.public_key.ski()


def test_patient_certificate_carries_its_attributes(layout: CryptoLayout) -> None:
    patient = layout.organization("HospitalAMSP").user("patient-0017")

    attributes = read_cert(patient.signcert).attributes

    assert attributes == {
        "hf.Affiliation": "",
        "hf.EnrollmentID": "patient-0017",
        "hf.Type": "client",
        "patient_id": "P0017",
        "role": "patient",
    }


def test_admin_and_node_attributes(layout: CryptoLayout) -> None:
    organization = layout.organization("HospitalBMSP")

    admin = read_cert(organization.user("Admin").signcert).attributes
    peer = read_cert(organization.peer("peer0").signcert).attributes

    assert admin["hf.Type"] == "admin"
    assert peer == {}


def test_keys_match_their_certificates(layout: CryptoLayout) -> None:
    """Sign with every private key; the certificate next to it verifies."""
    checked = 0
    for identity in identities(layout):
        pairs = [
            (identity.private_key, identity.signcert),
            (identity.tls_key, identity.tls_cert),
        ]
        for key_path, cert_path in pairs:
            key = PrivateKey.from_pem(key_path.read_bytes())
            read_cert(cert_path).public_key.verify(key.sign(MESSAGE), MESSAGE)
            checked += 1
    for organization in layout.organizations:
        for key_path, cert_path in [
            (organization.ca_key, organization.ca_cert),
            (organization.tlsca_key, organization.tlsca_cert),
        ]:
            key = PrivateKey.from_pem(key_path.read_bytes())
            read_cert(cert_path).public_key.verify(key.sign(MESSAGE), MESSAGE)
            checked += 1
    nodes, users, organizations = 6, 13, 4
    assert checked == 2 * (nodes + users) + 2 * organizations


def test_tls_server_names(layout: CryptoLayout) -> None:
    peer = layout.organization("HospitalCMSP").peer("peer0")

    names = read_cert(peer.tls_cert).native.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )

    dns = names.value.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)]
    assert {"peer0.hospital-c.example.com", "peer0", "localhost"} <= set(dns)
    assert {"127.0.0.1", "::1"} <= set(ips)


def test_tls_client_certificate_is_for_clients_only(layout: CryptoLayout) -> None:
    user = layout.organization("HospitalAMSP").user("dr-lee")

    usage = read_cert(user.tls_cert).native.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )

    assert list(usage.value) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]


def test_every_signature_is_low_s(layout: CryptoLayout) -> None:
    half_order = CURVE_ORDERS["secp256r1"] // 2
    certs = [p for p in layout.root.rglob("*") if p.suffix in {".pem", ".crt"}]
    certs = [p for p in certs if "crls" not in p.parts]

    high = [
        p
        for p in certs
        if utils.decode_dss_signature(read_cert(p).native.signature)[1] > half_order
    ]

    assert len(certs) > 50
    assert high == []


def test_msp_config_enables_node_ous(layout: CryptoLayout) -> None:
    organization = layout.organization("HospitalAMSP")
    for msp_dir in [organization.msp_dir, organization.peer("peer0").msp_dir]:
        config = yaml.safe_load((msp_dir / "config.yaml").read_text())

        node_ous = config["NodeOUs"]
        assert node_ous["Enable"] is True
        units = {
            key: (value["Certificate"], value["OrganizationalUnitIdentifier"])
            for key, value in node_ous.items()
            if key != "Enable"
        }
        ca_file = "cacerts/ca.hospital-a.example.com-cert.pem"
        assert units == {
            "ClientOUIdentifier": (ca_file, "client"),
            "PeerOUIdentifier": (ca_file, "peer"),
            "AdminOUIdentifier": (ca_file, "admin"),
            "OrdererOUIdentifier": (ca_file, "orderer"),
        }
        assert (msp_dir / ca_file).read_bytes() == organization.ca_cert.read_bytes()


def test_crl_is_empty_and_signed_by_the_ca(layout: CryptoLayout) -> None:
    organization = layout.organization("HealthCommissionMSP")

    crl = RevocationList.from_pem(organization.crl.read_bytes())

    assert crl.revoked_serials == frozenset()
    assert crl.is_signed_by(read_cert(organization.ca_cert))


# --- idempotency ------------------------------------------------------------------


def small_spec(spec: ConsortiumSpec) -> ConsortiumSpec:
    return dataclasses.replace(spec, organizations=spec.organizations[1:2])


def test_second_run_keeps_every_file(spec: ConsortiumSpec, tmp_path: Path) -> None:
    generate_crypto(small_spec(spec), tmp_path)
    before = snapshot(tmp_path)

    generate_crypto(small_spec(spec), tmp_path)

    assert snapshot(tmp_path) == before


def test_force_regenerates(spec: ConsortiumSpec, tmp_path: Path) -> None:
    layout = generate_crypto(small_spec(spec), tmp_path)
    ca_before = layout.organizations[0].ca_cert.read_bytes()

    generate_crypto(small_spec(spec), tmp_path, force=True)

    assert layout.organizations[0].ca_cert.read_bytes() != ca_before


def test_new_user_is_signed_by_the_existing_ca(
    spec: ConsortiumSpec, tmp_path: Path
) -> None:
    first = small_spec(spec)
    generate_crypto(first, tmp_path)
    before = snapshot(tmp_path)
    organization = first.organizations[0]
    newcomer = UserSpec("dr-new", organization.domain)
    grown = dataclasses.replace(
        first,
        organizations=(
            dataclasses.replace(organization, users=(*organization.users, newcomer)),
        ),
    )

    layout = generate_crypto(grown, tmp_path)

    after = snapshot(tmp_path)
    assert {path: after[path] for path in before} == before
    org_layout = layout.organizations[0]
    new_cert = read_cert(org_layout.user("dr-new").signcert)
    assert new_cert.is_issued_by(read_cert(org_layout.ca_cert))


def test_interrupted_leaf_is_made_again(spec: ConsortiumSpec, tmp_path: Path) -> None:
    layout = generate_crypto(small_spec(spec), tmp_path)
    user = layout.organizations[0].user("Admin")
    user.signcert.unlink()

    generate_crypto(small_spec(spec), tmp_path)

    cert = read_cert(user.signcert)
    key = PrivateKey.from_pem(user.private_key.read_bytes())
    assert cert.public_key == key.public_key


def test_incomplete_ca_is_an_error(spec: ConsortiumSpec, tmp_path: Path) -> None:
    layout = generate_crypto(small_spec(spec), tmp_path)
    layout.organizations[0].ca_cert.unlink()

    with pytest.raises(ConfigError, match="incomplete CA: priv_sk exists"):
        generate_crypto(small_spec(spec), tmp_path)


def test_ca_key_of_another_ca_is_an_error(spec: ConsortiumSpec, tmp_path: Path) -> None:
    layout = generate_crypto(small_spec(spec), tmp_path)
    organization = layout.organizations[0]
    organization.ca_key.write_bytes(organization.tlsca_key.read_bytes())

    with pytest.raises(CryptoError, match="priv_sk: the key does not belong"):
        generate_crypto(small_spec(spec), tmp_path)


def test_unreadable_ca_names_the_file(spec: ConsortiumSpec, tmp_path: Path) -> None:
    layout = generate_crypto(small_spec(spec), tmp_path)
    ca_cert = layout.organizations[0].ca_cert
    ca_cert.write_bytes(b"not a certificate")

    with pytest.raises(
        CryptoError, match=f"^{re.escape(str(ca_cert))}: malformed certificate"
    ):
        generate_crypto(small_spec(spec), tmp_path)


# --- common.crypto.issue directly ---------------------------------------------------

NOW = datetime.now(UTC)
NOT_BEFORE = NOW - timedelta(minutes=1)
NOT_AFTER = NOW + timedelta(days=1)


def new_ca(name: str) -> tuple[Certificate, PrivateKey]:
    key = PrivateKey.generate()
    return issue_ca(
        Subject(name), key=key, not_before=NOT_BEFORE, not_after=NOT_AFTER
    ), key


def new_leaf(
    name: str, key: PrivateKey, issuer: Certificate, issuer_key: PrivateKey
) -> Certificate:
    return issue_certificate(
        Subject(name, organizational_units=("client",)),
        public_key=key.public_key,
        issuer_cert=issuer,
        issuer_key=issuer_key,
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
    )


def test_intermediate_chain_verifies_with_openssl(tmp_path: Path, openssl: str) -> None:
    root, root_key = new_ca("root")
    middle_key = PrivateKey.generate()
    middle = issue_intermediate(
        Subject("middle"),
        public_key=middle_key.public_key,
        issuer_cert=root,
        issuer_key=root_key,
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
    )
    leaf = new_leaf("leaf", PrivateKey.generate(), middle, middle_key)
    for name, cert in [("root", root), ("middle", middle), ("leaf", leaf)]:
        (tmp_path / f"{name}.pem").write_bytes(cert.pem)

    openssl_verify(
        openssl,
        tmp_path / "root.pem",
        [tmp_path / "leaf.pem"],
        "-untrusted",
        str(tmp_path / "middle.pem"),
    )
    assert middle.is_ca
    assert not leaf.is_ca
    assert leaf.is_issued_by(middle)
    assert middle.is_issued_by(root)


def test_crl_lists_revoked_serials() -> None:
    ca, key = new_ca("ca")

    crl = issue_crl(
        issuer_cert=ca,
        issuer_key=key,
        revoked_serials=[7, 3, 7],
        this_update=NOT_BEFORE,
        next_update=NOT_AFTER,
    )

    assert crl.revoked_serials == frozenset({3, 7})
    assert crl.is_revoked(7)
    assert not crl.is_revoked(8)
    assert crl.is_signed_by(ca)


def test_issuing_needs_a_ca_and_its_key() -> None:
    ca, key = new_ca("ca")
    leaf = new_leaf("leaf", key, ca, key)

    with pytest.raises(CryptoError, match="not a CA"):
        new_leaf("x", key, leaf, key)
    with pytest.raises(CryptoError, match="does not belong"):
        new_leaf("x", key, ca, PrivateKey.generate())


def test_attribute_extension_is_fabric_ca_json() -> None:
    value = attributes_extension_value({"role": "patient", "hf.Type": "client"})

    assert value == b'{"attrs":{"hf.Type":"client","role":"patient"}}'
