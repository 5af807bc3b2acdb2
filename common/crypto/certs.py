"""Parsed X.509 certificates and CRLs: the facts the MSP needs, read once and cached.

Certificates arrive as PEM inside every SerializedIdentity, so `load_certificate`
caches the parsed object (and with it the public key) by the exact bytes received.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.crypto.signing import PublicKey
from common.errors import MalformedCertificate, MalformedKey

# Fabric CA puts enrollment attributes in this extension as JSON {"attrs": {...}}.
ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
CERTIFICATE_CACHE_SIZE = 4096
_WARNINGS_LOCK = threading.Lock()

# What `cryptography` raises on bad DER; its x509 errors are not ValueErrors.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
# Spell these attribute types the way Go's pkix package does, as Fabric's IDs do.
_NAME_OVERRIDES = {
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.POSTAL_CODE: "POSTALCODE",
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Certificate:
    """An immutable parsed X.509 certificate with an EC public key; equal by DER."""

    pem: bytes
    der: bytes
    subject_cn: str
    subject_ous: tuple[str, ...]
    subject_org: str | None
    issuer_cn: str
    subject_rfc4514: str
    issuer_rfc4514: str
    subject_der: bytes
    issuer_der: bytes
    serial_number: int
    not_before: datetime
    not_after: datetime
    is_ca: bool
    public_key: PublicKey
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    attributes_json: bytes | None
    native: x509.Certificate = field(repr=False)

    @classmethod
    def from_pem(cls, pem: bytes) -> Certificate:
        """Parse one certificate from PEM (the first block) or DER.

        Raises:
            MalformedCertificate: not an X.509 certificate with a P-256/P-384 EC key.
        """
        try:
            with _quiet_parsing():
                if pem.lstrip().startswith(b"-----"):
                    native = x509.load_pem_x509_certificate(pem)
                else:
                    native = x509.load_der_x509_certificate(pem)
                return cls._from_native(native)
        except _PARSE_ERRORS as error:
            raise MalformedCertificate(f"malformed certificate: {error}") from None
        except MalformedKey as error:
            raise MalformedCertificate(f"certificate key: {error}") from None

    @classmethod
    def from_native(cls, native: x509.Certificate) -> Certificate:
        """Wrap a `cryptography` certificate (for `common.crypto` modules only)."""
        try:
            with _quiet_parsing():
                return cls._from_native(native)
        except _PARSE_ERRORS as error:
            raise MalformedCertificate(f"malformed certificate: {error}") from None

    @classmethod
    def _from_native(cls, native: x509.Certificate) -> Certificate:
        """Read every field now, so a bad extension fails at load and not later."""
        public_key = native.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise MalformedKey(f"unsupported key type {type(public_key).__name__}")
        extensions = native.extensions
        subject, issuer = native.subject, native.issuer
        return cls(
            pem=native.public_bytes(serialization.Encoding.PEM),
            der=native.public_bytes(serialization.Encoding.DER),
            subject_cn=_first(subject, NameOID.COMMON_NAME) or "",
            subject_ous=_all(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            subject_org=_first(subject, NameOID.ORGANIZATION_NAME),
            issuer_cn=_first(issuer, NameOID.COMMON_NAME) or "",
            subject_rfc4514=subject.rfc4514_string(_NAME_OVERRIDES),
            issuer_rfc4514=issuer.rfc4514_string(_NAME_OVERRIDES),
            subject_der=subject.public_bytes(),
            issuer_der=issuer.public_bytes(),
            serial_number=native.serial_number,
            not_before=native.not_valid_before_utc,
            not_after=native.not_valid_after_utc,
            is_ca=_is_ca(extensions),
            public_key=PublicKey(public_key),
            subject_key_id=_subject_key_id(extensions),
            authority_key_id=_authority_key_id(extensions),
            attributes_json=_attributes_json(extensions),
            native=native,
        )

    @property
    def attributes(self) -> dict[str, str]:
        """Fabric CA attributes (`{"attrs": {...}}` extension); {} when absent.

        Raises:
            MalformedCertificate: the extension is present but not that JSON shape.
        """
        if self.attributes_json is None:
            return {}
        return _parse_attributes(self.attributes_json)

    def subject_string(self) -> str:
        """The subject as an RFC 4514 string, most specific first ("CN=…,OU=…,O=…")."""
        return self.subject_rfc4514

    def issuer_string(self) -> str:
        """The issuer as an RFC 4514 string, most specific first."""
        return self.issuer_rfc4514

    def is_issued_by(self, issuer: Certificate) -> bool:
        """True when the issuer's name matches and its key verifies our signature."""
        if self.issuer_der != issuer.subject_der:
            return False
        try:
            self.native.verify_directly_issued_by(issuer.native)
        except (_CryptographyInvalidSignature, *_PARSE_ERRORS):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return (load_certificate, (self.der,))


@functools.lru_cache(maxsize=CERTIFICATE_CACHE_SIZE)
def load_certificate(pem_or_der: bytes) -> Certificate:
    """Parse a certificate, cached by the exact bytes (same bytes, same object).

    Raises:
        MalformedCertificate: see `Certificate.from_pem`.
    """
    return Certificate.from_pem(pem_or_der)


def verify_signature(certificate: bytes, *, signature: bytes, message: bytes) -> None:
    """Verify a signature with the key of a certificate given as bytes (parse cached).

    Picklable inputs only, so a process pool can run it.

    Raises:
        MalformedCertificate: the certificate bytes do not parse.
        InvalidSignature: see `PublicKey.verify`.
    """
    load_certificate(certificate).public_key.verify(signature, message)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RevocationList:
    """An immutable parsed X.509 CRL."""

    pem: bytes
    der: bytes
    issuer: str
    issuer_der: bytes
    authority_key_id: bytes | None
    revoked_serials: frozenset[int]
    native: x509.CertificateRevocationList = field(repr=False)

    @classmethod
    def from_pem(cls, pem: bytes) -> RevocationList:
        """Parse a CRL from PEM or DER.

        Raises:
            MalformedCertificate: the bytes are not an X.509 CRL.
        """
        try:
            with _quiet_parsing():
                if pem.lstrip().startswith(b"-----"):
                    native = x509.load_pem_x509_crl(pem)
                else:
                    native = x509.load_der_x509_crl(pem)
                return cls._from_native(native)
        except _PARSE_ERRORS as error:
            raise MalformedCertificate(f"malformed crl: {error}") from None

    @classmethod
    def _from_native(cls, native: x509.CertificateRevocationList) -> RevocationList:
        issuer = native.issuer
        return cls(
            pem=native.public_bytes(serialization.Encoding.PEM),
            der=native.public_bytes(serialization.Encoding.DER),
            issuer=issuer.rfc4514_string(_NAME_OVERRIDES),
            issuer_der=issuer.public_bytes(),
            authority_key_id=_authority_key_id(native.extensions),
            revoked_serials=frozenset(entry.serial_number for entry in native),
            native=native,
        )

    def is_revoked(self, serial: int) -> bool:
        """True when `serial` is listed in this CRL."""
        return serial in self.revoked_serials

    def is_signed_by(self, ca: Certificate) -> bool:
        """True when the CA's name is our issuer and its key verifies our signature."""
        if self.issuer_der != ca.subject_der:
            return False
        try:
            return self.native.is_signature_valid(ca.public_key.native)
        except _PARSE_ERRORS:
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RevocationList) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)


@contextlib.contextmanager
def _quiet_parsing() -> Iterator[None]:
    """Silence `cryptography`'s warnings about odd but parseable DER while we read it.

    Network input must not spam logs (or, under pytest, turn into stray errors). The
    lock keeps concurrent threads from restoring each other's warning filters.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = _all(name, oid)
    return values[0] if values else None


def _all(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(
        value if isinstance(value, str) else value.decode("utf-8", "replace")
        for value in (attribute.value for attribute in name.get_attributes_for_oid(oid))
    )


def _is_ca(extensions: x509.Extensions) -> bool:
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _subject_key_id(extensions: x509.Extensions) -> bytes | None:
    try:
        ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ski.value.digest


def _authority_key_id(extensions: x509.Extensions) -> bytes | None:
    try:
        aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return aki.value.key_identifier


def _attributes_json(extensions: x509.Extensions) -> bytes | None:
    try:
        extension = extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _parse_attributes(raw: bytes) -> dict[str, str]:
    """Decode `{"attrs": {name: value}}` with string values, as Fabric CA writes it."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedCertificate("certificate attributes: not json") from None
    attrs = document.get("attrs") if isinstance(document, dict) else None
    if not isinstance(attrs, dict) or not all(
        isinstance(value, str) for value in attrs.values()
    ):
        raise MalformedCertificate('certificate attributes: not {"attrs": {str: str}}')
    return dict(attrs)
