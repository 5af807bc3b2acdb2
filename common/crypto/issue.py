"""Issuing X.509 material for MSPs: root and intermediate CAs, node and user
certificates with NodeOUs and Fabric CA attributes, and revocation lists (CRLs).

This is what the crypto generator (``network/cryptogen.py``) uses to make an
organisation's material; nodes never issue anything at run time.  All keys are ECDSA
P-256 and all signatures ECDSA with SHA-256.  Signatures on certificates and CRLs are
low-S, like every other signature in medledger, so that verifiers that reject high-S
signatures (ours, and Fabric's MSP) accept them unchanged.  Issuers come in, and
results go out, as the parsed `Certificate` and `RevocationList` of `common.crypto`;
their ``.pem`` is what goes on disk.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.crypto.certs import ATTRIBUTES_OID, Certificate, RevocationList
from common.crypto.signing import PrivateKey, PublicKey
from common.errors import CryptoError, MalformedCertificate

__all__ = [
    "CRL_REASONS",
    "ExtendedKeyUsage",
    "KeyUsage",
    "Subject",
    "attributes_extension_value",
    "crl_number",
    "issue_ca",
    "issue_certificate",
    "issue_crl",
    "issue_intermediate",
    "revoke_in_crl",
]

# DER of AlgorithmIdentifier{ecdsa-with-SHA256}, with absent parameters (RFC 5758).
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


class KeyUsage(StrEnum):
    """The key usages medledger certificates use (X.509 keyUsage bits)."""

    DIGITAL_SIGNATURE = "digital_signature"
    KEY_ENCIPHERMENT = "key_encipherment"
    KEY_AGREEMENT = "key_agreement"
    KEY_CERT_SIGN = "key_cert_sign"
    CRL_SIGN = "crl_sign"


class ExtendedKeyUsage(StrEnum):
    """TLS roles a certificate may play."""

    SERVER_AUTH = "server_auth"
    CLIENT_AUTH = "client_auth"


CA_KEY_USAGE = frozenset(
    {KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN}
)
SIGNING_KEY_USAGE = frozenset({KeyUsage.DIGITAL_SIGNATURE})


@dataclass(frozen=True)
class Subject:
    """The distinguished name of a certificate, in the fields MSPs look at."""

    common_name: str
    organization: str | None = None
    organizational_units: tuple[str, ...] = ()
    country: str | None = None
    state: str | None = None
    locality: str | None = None

    def to_name(self) -> x509.Name:
        """As an X.509 name, from country down to common name."""
        attributes = [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.ORGANIZATION_NAME, self.organization),
        ]
        attributes += [
            (NameOID.ORGANIZATIONAL_UNIT_NAME, unit)
            for unit in self.organizational_units
        ]
        attributes.append((NameOID.COMMON_NAME, self.common_name))
        try:
            return x509.Name(
                [x509.NameAttribute(oid, value) for oid, value in attributes if value]
            )
        except ValueError as error:
            raise MalformedCertificate(f"invalid subject {self}: {error}") from None


def issue_ca(
    subject: Subject, *, key: PrivateKey, not_before: datetime, not_after: datetime
) -> Certificate:
    """A self-signed root CA certificate (CA:true, keyCertSign + cRLSign, SKI)."""
    public_key = key.public_key
    builder = _base_builder(
        subject.to_name(),
        subject.to_name(),
        public_key,
        not_before=not_before,
        not_after=not_after,
    )
    builder = _add_constraints(
        builder, is_ca=True, path_length=None, key_usage=CA_KEY_USAGE
    )
    return _sign(builder, key)


def issue_intermediate(
    subject: Subject,
    *,
    public_key: PublicKey,
    issuer_cert: Certificate,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = 0,
) -> Certificate:
    """An intermediate CA certificate signed by `issuer_cert` (``path_length=0``: it
    may sign only leaf certificates)."""
    _check_issuer(issuer_cert, issuer_key)
    builder = _base_builder(
        subject.to_name(),
        issuer_cert.native.subject,
        public_key,
        not_before=not_before,
        not_after=not_after,
    )
    builder = _add_constraints(
        builder, is_ca=True, path_length=path_length, key_usage=CA_KEY_USAGE
    )
    builder = _add_authority_key_id(builder, issuer_cert)
    return _sign(builder, issuer_key)


def issue_certificate(
    subject: Subject,
    *,
    public_key: PublicKey,
    issuer_cert: Certificate,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool = False,
    san_dns: Collection[str] = (),
    san_ips: Collection[str] = (),
    key_usage: Collection[KeyUsage] = SIGNING_KEY_USAGE,
    ext_key_usage: Collection[ExtendedKeyUsage] = (),
    attributes: Mapping[str, str] | None = None,
) -> Certificate:
    """A certificate for `public_key`, signed by the CA `issuer_cert`/`issuer_key`.

    `san_dns`/`san_ips` become the subjectAltName (TLS server names); `attributes`, when
    given, go into the Fabric CA attribute extension (`ATTRIBUTES_OID`), where
    chaincode reads them with the client-identity API.

    Raises:
        CryptoError: `issuer_cert` is not a CA or `issuer_key` is not its key.
    """
    _check_issuer(issuer_cert, issuer_key)
    builder = _base_builder(
        subject.to_name(),
        issuer_cert.native.subject,
        public_key,
        not_before=not_before,
        not_after=not_after,
    )
    builder = _add_constraints(
        builder, is_ca=is_ca, path_length=None, key_usage=key_usage
    )
    builder = _add_authority_key_id(builder, issuer_cert)
    if ext_key_usage:
        usages = [_EXTENDED_KEY_USAGE_OIDS[usage] for usage in sorted(ext_key_usage)]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names = _subject_alternative_names(san_dns, san_ips)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=False
        )
    if attributes is not None:
        extension = x509.UnrecognizedExtension(
            ATTRIBUTES_OID,
            attributes_extension_value(attributes),
        )
        builder = builder.add_extension(extension, critical=False)
    return _sign(builder, issuer_key)


def issue_crl(
    *,
    issuer_cert: Certificate,
    issuer_key: PrivateKey,
    revoked_serials: Iterable[int],
    this_update: datetime,
    next_update: datetime,
    crl_number: int = 1,
) -> RevocationList:
    """A CRL of the CA `issuer_cert` listing `revoked_serials` (revoked at
    `this_update`); an empty iterable gives an empty CRL."""
    _check_issuer(issuer_cert, issuer_key)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.native.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
    )
    for serial in sorted(set(revoked_serials)):
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    draft = builder.sign(issuer_key.native, hashes.SHA256())
    return RevocationList.from_pem(_signed_der(draft.tbs_certlist_bytes, issuer_key))


CRL_REASONS = tuple(
    sorted(
        flag.value.lower()
        for flag in x509.ReasonFlags
        if flag is not x509.ReasonFlags.remove_from_crl
    )
)
"""CRL entry reasons by lower-case name (``keycompromise``, ``superseded``, ...)."""


def revoke_in_crl(
    previous: RevocationList | None,
    *,
    issuer_cert: Certificate,
    issuer_key: PrivateKey,
    serial: int,
    this_update: datetime,
    next_update: datetime,
    crl_number: int,
    reason: str | None = None,
) -> RevocationList:
    """The CA's next CRL: `previous`'s entries unchanged (dates, reasons), plus
    `serial` revoked at `this_update` with `reason` (a name of `CRL_REASONS`)."""
    _check_issuer(issuer_cert, issuer_key)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.native.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
    )
    for entry in previous.native if previous is not None else ():
        builder = builder.add_revoked_certificate(entry)
    added = (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(this_update)
    )
    if reason is not None:
        flags = {flag.value.lower(): flag for flag in x509.ReasonFlags}
        if reason.lower() not in CRL_REASONS:
            raise CryptoError(f"unknown CRL reason {reason!r}")
        added = added.add_extension(
            x509.CRLReason(flags[reason.lower()]), critical=False
        )
    builder = builder.add_revoked_certificate(added.build())
    draft = builder.sign(issuer_key.native, hashes.SHA256())
    return RevocationList.from_pem(_signed_der(draft.tbs_certlist_bytes, issuer_key))


def crl_number(crl: RevocationList) -> int:
    """The CRL's number (its CRLNumber extension); 0 when it has none."""
    try:
        extension = crl.native.extensions.get_extension_for_class(x509.CRLNumber)
    except x509.ExtensionNotFound:
        return 0
    return int(extension.value.crl_number)


def attributes_extension_value(attributes: Mapping[str, str]) -> bytes:
    """The raw extension value Fabric CA writes: compact JSON ``{"attrs": {...}}``."""
    document = {"attrs": dict(sorted(attributes.items()))}
    return json.dumps(document, separators=(",", ":")).encode()


_EXTENDED_KEY_USAGE_OIDS = {
    ExtendedKeyUsage.SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsage.CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH,
}


def _check_issuer(issuer_cert: Certificate, issuer_key: PrivateKey) -> None:
    if not issuer_cert.is_ca:
        raise CryptoError(f"issuer '{issuer_cert.subject_cn}' is not a CA certificate")
    if issuer_key.public_key != issuer_cert.public_key:
        raise CryptoError(
            f"the issuer key does not belong to '{issuer_cert.subject_cn}'"
        )


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    *,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    if not_after <= not_before:
        raise ValueError(f"not_after {not_after} is not after not_before {not_before}")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key.native)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectKeyIdentifier(public_key.ski()),
            critical=False,
        )
    )


def _add_constraints(
    builder: x509.CertificateBuilder,
    *,
    is_ca: bool,
    path_length: int | None,
    key_usage: Collection[KeyUsage],
) -> x509.CertificateBuilder:
    usage = set(key_usage)
    key_usage_extension = x509.KeyUsage(
        digital_signature=KeyUsage.DIGITAL_SIGNATURE in usage,
        content_commitment=False,
        key_encipherment=KeyUsage.KEY_ENCIPHERMENT in usage,
        data_encipherment=False,
        key_agreement=KeyUsage.KEY_AGREEMENT in usage,
        key_cert_sign=KeyUsage.KEY_CERT_SIGN in usage,
        crl_sign=KeyUsage.CRL_SIGN in usage,
        encipher_only=False,
        decipher_only=False,
    )
    return builder.add_extension(
        x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None),
        critical=True,
    ).add_extension(key_usage_extension, critical=True)


def _add_authority_key_id(
    builder: x509.CertificateBuilder, issuer: Certificate
) -> x509.CertificateBuilder:
    return builder.add_extension(_authority_key_id(issuer), critical=False)


def _authority_key_id(issuer: Certificate) -> x509.AuthorityKeyIdentifier:
    """The issuer's own SKI when it has one, else Fabric's SKI of its public key."""
    return x509.AuthorityKeyIdentifier(
        key_identifier=issuer.subject_key_id or issuer.public_key.ski(),
        authority_cert_issuer=None,
        authority_cert_serial_number=None,
    )


def _subject_alternative_names(
    san_dns: Collection[str], san_ips: Collection[str]
) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName(name) for name in dict.fromkeys(san_dns)
    ]
    names += [x509.IPAddress(ip_address(ip)) for ip in dict.fromkeys(san_ips)]
    return names


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> Certificate:
    """Sign with a low-S signature.

    `cryptography` signs with whatever S the ECDSA nonce gives, so the certificate is
    built once to obtain its TBS bytes and then re-assembled around our low-S signature.
    """
    draft = builder.sign(key.native, hashes.SHA256())
    return Certificate.from_pem(_signed_der(draft.tbs_certificate_bytes, key))


def _signed_der(tbs: bytes, key: PrivateKey) -> bytes:
    """DER of SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }."""
    signature = key.sign(tbs)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + _ECDSA_WITH_SHA256 + bit_string
    return b"\x30" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded
