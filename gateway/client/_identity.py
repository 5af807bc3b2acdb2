"""Who the client is and how it signs: an X.509 identity under an MSP id, and a signer.

`Identity` is what goes into every request (`msp.SerializedIdentity{mspid, PEM}`).
A `Signer` signs a message (it hashes with SHA-256 itself) and returns a DER ECDSA
signature, low-S. Both are read from an MSP folder (`signcerts/`, `keystore/`) by
`identity_from_msp` and `signer_from_msp`. Applications that sign elsewhere (an HSM, a
browser) sign the `digest` of the bytes the client hands out; see `offline signing`
in `gateway.client`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.msp import load_signing_identity
from common.protoutil import parse_serialized_identity, serialize_identity

__all__ = ["Identity", "Signer", "digest", "identity_from_msp", "signer_from_msp"]

Signer = Callable[[bytes], bytes]
"""Signs SHA-256(message), returns the DER signature."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An MSP id and the PEM certificate the client presents."""

    mspid: str
    credentials: bytes

    @property
    def serialized(self) -> bytes:
        """The `msp.SerializedIdentity` bytes: the creator of every request."""
        return serialize_identity(self.mspid, self.credentials)


def identity_from_msp(msp_dir: Path | str, mspid: str) -> Identity:
    """The identity in an MSP folder's `signcerts/`.

    Raises:
        ConfigError: no certificate, or no key matching it in `keystore/`.
    """
    signing = load_signing_identity(msp_dir, mspid=mspid)
    return Identity(mspid, parse_serialized_identity(signing.serialized).id_bytes)


def signer_from_msp(msp_dir: Path | str, mspid: str) -> Signer:
    """A signer with the private key in an MSP folder's `keystore/`.

    Raises:
        ConfigError: no certificate, or no key matching it.
    """
    return load_signing_identity(msp_dir, mspid=mspid).sign


def digest(message: bytes) -> bytes:
    """SHA-256 of `message`: what an external signer signs."""
    return hashlib.sha256(message).digest()
