"""A tiny test PKI built with `cryptography`: CAs, leaf certificates with OUs, CRLs.

Tests for common.crypto and common.msp make their certificates here, so they do not
depend on the network's crypto generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Certificates are valid for a year either side of the real time, so code that checks
# validity "now" accepts them; the expired and future ones are a day outside.
NOW = datetime.now(UTC).replace(microsecond=0)
YEAR = timedelta(days=365)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key, as PEM bytes and as `cryptography` objects."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def make_name(cn: str, *, org: str = "Org1", ous: tuple[str, ...] = ()) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    return x509.Name(attributes)


def issue(
    subject: x509.Name,
    *,
    parent: Issued | None,
    is_ca: bool,
    not_before: datetime = NOW - YEAR,
    not_after: datetime = NOW + YEAR,
    attrs: dict[str, str] | None = None,
    serial: int | None = None,
) -> Issued:
    """Issue a certificate (self-signed when `parent` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    issuer_name = parent.cert.subject if parent else subject
    signer = parent.key if parent else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(ski, critical=False)
    )
    if parent is not None:
        issuer_key = parent.key.public_key()
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key)
        builder = builder.add_extension(aki, critical=False)
    if attrs is not None:
        value = json.dumps({"attrs": attrs}).encode()
        extension = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1"), value
        )
        builder = builder.add_extension(extension, critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_crl(ca: Issued, serials: list[int]) -> bytes:
    """A PEM CRL signed by `ca` listing `serials`."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(NOW - timedelta(days=1))
        .next_update(NOW + YEAR)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for serial in serials:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - timedelta(days=1))
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class OrgPki:
    """One organisation: root CA, intermediate CA and identities of every kind."""

    root: Issued
    intermediate: Issued
    client: Issued
    peer: Issued
    admin: Issued
    orderer: Issued
    no_role: Issued
    two_roles: Issued
    expired: Issued
    not_yet_valid: Issued
    revoked: Issued
    crl: bytes


def make_org(org: str) -> OrgPki:
    root = issue(make_name(f"ca.{org}", org=org), parent=None, is_ca=True)
    inter = issue(make_name(f"ica.{org}", org=org), parent=root, is_ca=True)

    def leaf(cn: str, *ous: str, **kwargs: object) -> Issued:
        name = make_name(f"{cn}@{org}", org=org, ous=ous)
        return issue(name, parent=inter, is_ca=False, **kwargs)  # type: ignore[arg-type]

    revoked = leaf("revoked", "client")
    attrs = {"role": "doctor", "hf.EnrollmentID": "u1"}
    return OrgPki(
        root=root,
        intermediate=inter,
        client=leaf("user1", "client", attrs=attrs),
        peer=leaf("peer0", "peer"),
        admin=leaf("admin", "admin"),
        orderer=leaf("orderer0", "orderer"),
        no_role=leaf("nobody", "department1"),
        two_roles=leaf("both", "client", "peer"),
        expired=leaf("old", "client", not_before=NOW - 2 * YEAR, not_after=NOW - DAY),
        not_yet_valid=leaf("new", "client", not_before=NOW + DAY, not_after=NOW + YEAR),
        revoked=revoked,
        crl=make_crl(inter, [revoked.cert.serial_number]),
    )


@pytest.fixture(scope="session")
def org1() -> OrgPki:
    return make_org("org1.example.com")


@pytest.fixture(scope="session")
def org2() -> OrgPki:
    return make_org("org2.example.com")
