"""Identities: an X.509 certificate under an MSP id, as carried in SerializedIdentity.

An `Identity` keeps the exact serialized bytes it came from, because creators and
endorsers are hashed and compared byte for byte (tx id, IDENTITY principals).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.crypto import Certificate, PrivateKey, load_certificate
from common.errors import MalformedCertificate, MalformedIdentity, MalformedKey
from protos.msp import identities_pb2


class Role(enum.StrEnum):
    """The roles of Fabric's MSPRole; MEMBER is any valid identity of the MSP."""

    MEMBER = "member"
    ADMIN = "admin"
    CLIENT = "client"
    PEER = "peer"
    ORDERER = "orderer"


@dataclass(frozen=True, slots=True)
class Identity:
    """A certificate presented under an MSP id, with its exact serialized bytes."""

    mspid: str
    certificate: Certificate
    serialized: bytes

    @classmethod
    def from_certificate_pem(cls, *, mspid: str, pem: bytes) -> Identity:
        """Build an identity (and its SerializedIdentity bytes) from a PEM certificate.

        Raises:
            MalformedIdentity: `pem` is not a PEM certificate.
        """
        certificate = certificate_from_id_bytes(pem, mspid=mspid)
        message = identities_pb2.SerializedIdentity(mspid=mspid, id_bytes=pem)
        return cls(mspid, certificate, message.SerializeToString())

    @property
    def id(self) -> str:
        """Fabric's client identity id: "x509::<subject>::<issuer>"."""
        return (
            f"x509::{self.certificate.subject_string()}"
            f"::{self.certificate.issuer_string()}"
        )

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check that this identity's key signed `message`.

        Raises:
            InvalidSignature: malformed, high-S or not matching.
        """
        self.certificate.public_key.verify(signature, message)

    def __repr__(self) -> str:
        return (
            f"Identity(mspid={self.mspid!r}, subject={self.certificate.subject_cn!r})"
        )


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """An identity together with its private key: what a node or client signs with."""

    identity: Identity
    private_key: PrivateKey

    def __post_init__(self) -> None:
        if self.private_key.public_key != self.identity.certificate.public_key:
            raise MalformedKey(
                f"private key does not match certificate "
                f"{self.identity.certificate.subject_string()!r}"
            )

    @property
    def mspid(self) -> str:
        return self.identity.mspid

    @property
    def serialized(self) -> bytes:
        return self.identity.serialized

    def sign(self, message: bytes) -> bytes:
        """Sign SHA-256(message), low-S DER."""
        return self.private_key.sign(message)

    def __repr__(self) -> str:
        return f"SigningIdentity({self.identity!r})"


def parse_serialized_identity(serialized: bytes) -> tuple[str, bytes]:
    """Split SerializedIdentity bytes into (mspid, id_bytes).

    Raises:
        MalformedIdentity: the bytes are not a SerializedIdentity.
    """
    try:
        message = identities_pb2.SerializedIdentity.FromString(serialized)
    except DecodeError:
        raise MalformedIdentity("malformed serialized identity: not protobuf") from None
    return message.mspid, message.id_bytes


def certificate_from_id_bytes(id_bytes: bytes, *, mspid: str) -> Certificate:
    """Parse the PEM certificate of a SerializedIdentity (cached by bytes).

    Raises:
        MalformedIdentity: id_bytes is not a PEM certificate.
    """
    if b"-----BEGIN" not in id_bytes:
        raise MalformedIdentity(f"identity of msp {mspid!r}: id_bytes are not PEM")
    return _parse_certificate(id_bytes, mspid=mspid)


def _parse_certificate(pem: bytes, *, mspid: str) -> Certificate:
    try:
        return load_certificate(pem)
    except MalformedCertificate as error:
        raise MalformedIdentity(f"identity of msp {mspid!r}: {error}") from None
