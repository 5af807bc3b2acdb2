"""ECDSA keys and signatures as Fabric uses them: SHA-256 digests, DER encoding, low-S.

Every signature medledger makes or checks (proposals, endorsements, envelopes, blocks)
goes through `PrivateKey.sign` and `PublicKey.verify`; nothing else touches ECDSA.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from common.errors import InvalidSignature, MalformedKey

# The group order n of each supported curve; low-S means s <= n // 2.
CURVE_ORDERS: dict[str, int] = {
    "secp256r1": int(
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16
    ),
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)


def sha256(data: bytes) -> bytes:
    """Return the SHA-256 digest of `data`."""
    return hashlib.sha256(data).digest()


class PrivateKey:
    """An ECDSA private key on P-256 (P-384 accepted when loading)."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        _curve_order(key.curve, error=MalformedKey)
        self._key = key

    @classmethod
    def generate(cls) -> PrivateKey:
        """Make a fresh P-256 key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> PrivateKey:
        """Load an unencrypted PKCS#8 or SEC1 ("EC PRIVATE KEY") key, PEM or DER.

        Raises:
            MalformedKey: the bytes are not an unencrypted EC key on a supported curve.
        """
        try:
            if pem.lstrip().startswith(b"-----"):
                key = serialization.load_pem_private_key(pem, password=None)
            else:
                key = serialization.load_der_private_key(pem, password=None)
        except _PARSE_ERRORS as error:
            raise MalformedKey(f"malformed private key: {error}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise MalformedKey(f"unsupported private key type {type(key).__name__}")
        return cls(key)

    @property
    def native(self) -> ec.EllipticCurvePrivateKey:
        """The `cryptography` key object, for use inside `common.crypto` only."""
        return self._key

    def to_pem(self) -> bytes:
        """Encode as unencrypted PKCS#8 PEM."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        """Sign SHA-256(message); the DER signature is always low-S."""
        der = self._key.sign(message, _ECDSA_SHA256)
        r, s = utils.decode_dss_signature(der)
        order = _curve_order(self._key.curve, error=MalformedKey)
        if s > order // 2:
            s = order - s
        return utils.encode_dss_signature(r, s)

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self._key.public_key())

    def __repr__(self) -> str:
        return f"PrivateKey(ski={self.public_key.ski().hex()[:16]}…)"


class PublicKey:
    """An ECDSA public key on P-256 or P-384; compares equal by its point."""

    __slots__ = ("_key", "_order", "_point")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._order = _curve_order(key.curve, error=MalformedKey)
        self._key = key
        self._point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> PublicKey:
        """Load a SubjectPublicKeyInfo key, PEM or DER.

        Raises:
            MalformedKey: the bytes are not an EC public key on a supported curve.
        """
        try:
            if pem.lstrip().startswith(b"-----"):
                key = serialization.load_pem_public_key(pem)
            else:
                key = serialization.load_der_public_key(pem)
        except _PARSE_ERRORS as error:
            raise MalformedKey(f"malformed public key: {error}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise MalformedKey(f"unsupported public key type {type(key).__name__}")
        return cls(key)

    @property
    def native(self) -> ec.EllipticCurvePublicKey:
        """The `cryptography` key object, for use inside `common.crypto` only."""
        return self._key

    def to_pem(self) -> bytes:
        """Encode as SubjectPublicKeyInfo PEM."""
        return self._key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def to_der(self) -> bytes:
        """Encode as SubjectPublicKeyInfo DER."""
        return self._key.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check a DER ECDSA signature over SHA-256(message).

        Raises:
            InvalidSignature: malformed DER, r or s out of range, high-S, or no match.
        """
        try:
            r, s = utils.decode_dss_signature(signature)
        except _PARSE_ERRORS:
            raise InvalidSignature("malformed signature: not DER ECDSA") from None
        if not (0 < r < self._order and 0 < s < self._order):
            raise InvalidSignature("malformed signature: r or s out of range")
        if s > self._order // 2:
            raise InvalidSignature("signature is not low-S (s > n/2)")
        try:
            self._key.verify(signature, message, _ECDSA_SHA256)
        except _CryptographyInvalidSignature:
            raise InvalidSignature("signature does not match message and key") from None

    def ski(self) -> bytes:
        """SHA-256 of the uncompressed point: Fabric's key identifier (SKI)."""
        return sha256(self._point)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._point == self._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return (PublicKey.from_pem, (self.to_der(),))

    def __repr__(self) -> str:
        return f"PublicKey(ski={self.ski().hex()[:16]}…)"


def _curve_order(curve: ec.EllipticCurve, *, error: type[Exception]) -> int:
    """The group order of a supported curve; `error` for any other curve."""
    order = CURVE_ORDERS.get(curve.name)
    if order is None:
        raise error(f"unsupported elliptic curve {curve.name}")
    return order
