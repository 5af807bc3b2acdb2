"""Authenticated encryption (AES-256-GCM) for application payloads.

Used where a value must travel through a public place, such as a transaction response
that every channel member receives, yet be readable by one party only. Callers supply
a unique nonce per key (for example derived from a transaction id, which the ledger
never accepts twice).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.errors import CryptoError

AEAD_KEY_BYTES = 32
AEAD_NONCE_BYTES = 12


class AeadError(CryptoError):
    """A ciphertext that does not open: wrong key, nonce or associated data, or altered."""


def aead_seal(
    *, key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes
) -> bytes:
    """AES-256-GCM ciphertext with its 16-byte tag appended."""
    _check(key, nonce)
    return AESGCM(key).encrypt(nonce, plaintext, associated_data)


def aead_open(
    *, key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes
) -> bytes:
    """The plaintext of `aead_seal`'s output.

    Raises:
        AeadError: the ciphertext, nonce, key or associated data do not match.
    """
    _check(key, nonce)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
    except InvalidTag:
        raise AeadError("ciphertext does not open with this key and context") from None


def _check(key: bytes, nonce: bytes) -> None:
    if len(key) != AEAD_KEY_BYTES:
        raise AeadError(f"key must be {AEAD_KEY_BYTES} bytes, not {len(key)}")
    if len(nonce) != AEAD_NONCE_BYTES:
        raise AeadError(f"nonce must be {AEAD_NONCE_BYTES} bytes, not {len(nonce)}")
