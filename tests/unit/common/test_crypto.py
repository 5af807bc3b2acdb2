"""Unit tests for common.crypto: low-S ECDSA, key PEM, certificate and CRL parsing."""

from __future__ import annotations

import pickle

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import (
    Certificate,
    PrivateKey,
    PublicKey,
    RevocationList,
    load_certificate,
    sha256,
    verify_signature,
)
from common.crypto.signing import CURVE_ORDERS
from common.errors import InvalidSignature, MalformedCertificate, MalformedKey
from tests.unit.common.conftest import NOW, OrgPki, issue, make_name

P256_ORDER = CURVE_ORDERS["secp256r1"]
MESSAGE = b"diagnosis record 42"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate()


def _flip_s(signature: bytes) -> bytes:
    r, s = utils.decode_dss_signature(signature)
    return utils.encode_dss_signature(r, P256_ORDER - s)


def test_sha256_matches_known_vector() -> None:
    """The digest of b"abc" is the FIPS 180-2 test vector."""
    assert sha256(b"abc").hex().startswith("ba7816bf8f01cfea")


def test_sign_then_verify_round_trip(key: PrivateKey) -> None:
    """A signature made by the key verifies with its public key."""
    key.public_key.verify(key.sign(MESSAGE), MESSAGE)


def test_sign_is_always_low_s(key: PrivateKey) -> None:
    """Many signatures all have s <= n/2 (raw ECDSA is high-S half the time)."""
    for index in range(40):
        _, s = utils.decode_dss_signature(key.sign(b"m%d" % index))
        assert s <= P256_ORDER // 2


def test_high_s_variant_is_rejected_with_its_own_message(key: PrivateKey) -> None:
    """s' = n - s is mathematically valid ECDSA but must be refused as high-S."""
    high = _flip_s(key.sign(MESSAGE))
    with pytest.raises(InvalidSignature, match="low-S"):
        key.public_key.verify(high, MESSAGE)


def test_tampered_message_is_rejected(key: PrivateKey) -> None:
    """Changing one byte of the message breaks the signature."""
    with pytest.raises(InvalidSignature, match="does not match"):
        key.public_key.verify(key.sign(MESSAGE), MESSAGE + b"!")


def test_signature_from_another_key_is_rejected(key: PrivateKey) -> None:
    """A valid signature by a different key does not verify."""
    other = PrivateKey.generate()
    with pytest.raises(InvalidSignature, match="does not match"):
        key.public_key.verify(other.sign(MESSAGE), MESSAGE)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"\x30\x00",
        b"not a signature",
        utils.encode_dss_signature(1, 2) + b"\x00",  # trailing data
        b"\x30\x07\x02\x02\x00\x01\x02\x01\x02",  # non-minimal integer
    ],
)
def test_malformed_der_is_rejected(key: PrivateKey, signature: bytes) -> None:
    """Anything that is not strict DER SEQUENCE{r, s} is malformed."""
    with pytest.raises(InvalidSignature, match="malformed"):
        key.public_key.verify(signature, MESSAGE)


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (P256_ORDER, 1)])
def test_out_of_range_r_or_s_is_rejected(key: PrivateKey, r: int, s: int) -> None:
    """r and s must lie in [1, n-1]."""
    with pytest.raises(InvalidSignature, match="out of range"):
        key.public_key.verify(utils.encode_dss_signature(r, s), MESSAGE)


def test_private_key_pem_round_trip(key: PrivateKey) -> None:
    """to_pem writes PKCS#8, from_pem reads it back to the same key."""
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = PrivateKey.from_pem(pem)
    assert again.public_key == key.public_key
    key.public_key.verify(again.sign(MESSAGE), MESSAGE)


def test_private_key_loads_sec1_and_p384() -> None:
    """SEC1 "EC PRIVATE KEY" files and P-384 keys load; P-384 signs low-S too."""
    native = ec.generate_private_key(ec.SECP384R1())
    sec1 = native.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    key = PrivateKey.from_pem(sec1)
    key.public_key.verify(key.sign(MESSAGE), MESSAGE)


@pytest.mark.parametrize(
    "junk", [b"", b"-----BEGIN PRIVATE KEY-----\nAAAA\n", b"\x30\x03"]
)
def test_private_key_junk_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedKey):
        PrivateKey.from_pem(junk)


def test_unsupported_curve_is_malformed() -> None:
    """Only P-256 and P-384 are accepted."""
    pem = ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(MalformedKey, match="curve"):
        PrivateKey.from_pem(pem)


def test_public_key_pem_round_trip_and_ski(key: PrivateKey) -> None:
    """Public keys round-trip through PEM; the SKI is SHA-256 of the 65-byte point."""
    public = PublicKey.from_pem(key.public_key.to_pem())
    assert public == key.public_key
    assert hash(public) == hash(key.public_key)
    point = public.native.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert len(point) == 65
    assert public.ski() == sha256(point)
    assert pickle.loads(pickle.dumps(public)) == public


def test_certificate_fields(org1: OrgPki) -> None:
    """Subject, issuer, OUs, dates, CA flag and key ids are read from the cert."""
    cert = Certificate.from_pem(org1.client.pem)
    assert cert.subject_cn == "user1@org1.example.com"
    assert cert.subject_ous == ("client",)
    assert cert.subject_org == "org1.example.com"
    assert cert.issuer_cn == "ica.org1.example.com"
    assert cert.serial_number == org1.client.cert.serial_number
    assert cert.not_before < NOW < cert.not_after
    assert cert.not_after.tzinfo is not None
    assert not cert.is_ca
    assert Certificate.from_pem(org1.root.pem).is_ca
    assert cert.subject_key_id is not None
    inter = Certificate.from_pem(org1.intermediate.pem)
    assert cert.authority_key_id == inter.subject_key_id
    assert cert.subject_string() == (
        "CN=user1@org1.example.com,OU=client,O=org1.example.com,C=US"
    )
    assert cert.issuer_string().startswith("CN=ica.org1.example.com,")
    assert cert.der == org1.client.cert.public_bytes(serialization.Encoding.DER)


def test_certificate_accepts_der_and_equals_by_der(org1: OrgPki) -> None:
    cert = Certificate.from_pem(org1.peer.pem)
    assert Certificate.from_pem(cert.der) == cert
    assert pickle.loads(pickle.dumps(cert)) == cert


def test_certificate_public_key_verifies_the_holders_signature(org1: OrgPki) -> None:
    cert = Certificate.from_pem(org1.peer.pem)
    holder = PrivateKey.from_pem(org1.peer.key_pem)
    cert.public_key.verify(holder.sign(MESSAGE), MESSAGE)
    verify_signature(org1.peer.pem, signature=holder.sign(MESSAGE), message=MESSAGE)
    with pytest.raises(InvalidSignature):
        verify_signature(org1.peer.pem, signature=holder.sign(b"x"), message=MESSAGE)


def test_attributes_extension_is_parsed(org1: OrgPki) -> None:
    """The Fabric CA attribute extension decodes to a name -> value mapping."""
    assert Certificate.from_pem(org1.client.pem).attributes == {
        "role": "doctor",
        "hf.EnrollmentID": "u1",
    }
    assert Certificate.from_pem(org1.peer.pem).attributes == {}


def test_malformed_attributes_raise_on_access(org1: OrgPki) -> None:
    bad = (
        x509.CertificateBuilder()
        .subject_name(make_name("bad"))
        .issuer_name(org1.intermediate.cert.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(7)
        .not_valid_before(org1.client.cert.not_valid_before_utc)
        .not_valid_after(org1.client.cert.not_valid_after_utc)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1"), b'{"attrs": [1]}'
            ),
            critical=False,
        )
        .sign(org1.intermediate.key, hashes.SHA256())
    )
    cert = Certificate.from_native(bad)
    with pytest.raises(MalformedCertificate, match="attributes"):
        _ = cert.attributes


def test_is_issued_by_checks_name_and_signature(org1: OrgPki, org2: OrgPki) -> None:
    leaf = Certificate.from_pem(org1.client.pem)
    inter = Certificate.from_pem(org1.intermediate.pem)
    root = Certificate.from_pem(org1.root.pem)
    assert leaf.is_issued_by(inter)
    assert inter.is_issued_by(root)
    assert root.is_issued_by(root)
    assert not leaf.is_issued_by(root)
    assert not leaf.is_issued_by(Certificate.from_pem(org2.intermediate.pem))


def test_is_issued_by_rejects_same_name_with_another_key(org1: OrgPki) -> None:
    """An impostor CA with the same subject but its own key is not the issuer."""
    impostor = issue(org1.intermediate.cert.subject, parent=org1.root, is_ca=True)
    leaf = Certificate.from_pem(org1.client.pem)
    assert not leaf.is_issued_by(Certificate.from_pem(impostor.pem))


def test_load_certificate_caches_by_bytes(org1: OrgPki) -> None:
    """The same bytes give the same object; a cache hit does not re-parse."""
    first = load_certificate(org1.admin.pem)
    assert load_certificate(bytes(org1.admin.pem)) is first
    assert load_certificate(first.der) is not first
    assert load_certificate(first.der) == first


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30\x82\x01\x00",
    ],
)
def test_certificate_junk_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedCertificate):
        Certificate.from_pem(junk)


def test_revocation_list(org1: OrgPki) -> None:
    """A CRL lists its serials and is signed by its CA only."""
    crl = RevocationList.from_pem(org1.crl)
    assert crl.is_revoked(org1.revoked.cert.serial_number)
    assert not crl.is_revoked(org1.client.cert.serial_number)
    assert crl.is_signed_by(Certificate.from_pem(org1.intermediate.pem))
    assert not crl.is_signed_by(Certificate.from_pem(org1.root.pem))
    assert crl.issuer.startswith("CN=ica.org1.example.com")
    assert RevocationList.from_pem(crl.der) == crl
    with pytest.raises(MalformedCertificate, match="crl"):
        RevocationList.from_pem(b"-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    """Fuzz: random bytes into the parsers and verify raise only our own errors."""
    with pytest.raises(MalformedCertificate):
        Certificate.from_pem(data)
    with pytest.raises(MalformedCertificate):
        Certificate.from_pem(b"-----BEGIN CERTIFICATE-----\n" + data)
    with pytest.raises(MalformedKey):
        PublicKey.from_pem(data)
    public = _FUZZ_KEY.public_key
    with pytest.raises(InvalidSignature):
        public.verify(data, MESSAGE)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, P256_ORDER - 1), st.integers(1, P256_ORDER - 1))
def test_arbitrary_r_s_raise_only_invalid_signature(r: int, s: int) -> None:
    with pytest.raises(InvalidSignature):
        _FUZZ_KEY.public_key.verify(utils.encode_dss_signature(r, s), MESSAGE)


_FUZZ_KEY = PrivateKey.generate()
