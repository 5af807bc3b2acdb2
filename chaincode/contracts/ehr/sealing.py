"""Sealed responses: ReadDiagnosis's plaintext encrypted for the reader only.

A submitted transaction's response is written into the block, which every member of the
channel receives. So a reader that passes a 32-byte key as transient data
`response_key` gets the diagnosis encrypted under it with AES-256-GCM (through
`common.crypto`; chaincode never touches the `cryptography` package itself). The nonce
is derived from the transaction id, so every endorser of the proposal produces the same
bytes, and the transaction id is authenticated as associated data.
"""

from __future__ import annotations

import base64
import hashlib

from common.crypto.aead import (
    AEAD_KEY_BYTES,
    AEAD_NONCE_BYTES,
    AeadError,
    aead_open,
    aead_seal,
)

KEY_BYTES = AEAD_KEY_BYTES
_NONCE_LABEL = b"medledger-ehr-response-nonce"


class SealError(ValueError):
    """A sealed response that does not open: wrong key or transaction id, or altered."""


def seal(key: bytes, tx_id: str, plaintext: bytes) -> dict[str, str]:
    """The sealed form of `plaintext`: {"nonce": hex, "ciphertext": b64 (tag appended)}.

    Raises:
        ValueError: the key is not 32 bytes.
    """
    _check_key(key)
    nonce = _nonce(tx_id)
    ciphertext = aead_seal(
        key=key, nonce=nonce, plaintext=plaintext, associated_data=tx_id.encode()
    )
    return {"nonce": nonce.hex(), "ciphertext": base64.b64encode(ciphertext).decode()}


def open_sealed(key: bytes, tx_id: str, sealed: dict[str, str]) -> bytes:
    """The plaintext of a sealed ReadDiagnosis response (client side).

    Raises:
        SealError: wrong key or transaction id, or the data was altered.
        ValueError: the key is not 32 bytes.
    """
    _check_key(key)
    try:
        return aead_open(
            key=key,
            nonce=bytes.fromhex(sealed["nonce"]),
            ciphertext=base64.b64decode(sealed["ciphertext"]),
            associated_data=tx_id.encode(),
        )
    except (AeadError, KeyError, ValueError) as error:
        raise SealError(
            "the sealed response does not open with this key and tx id"
        ) from error


def _nonce(tx_id: str) -> bytes:
    return hashlib.sha256(_NONCE_LABEL + tx_id.encode()).digest()[:AEAD_NONCE_BYTES]


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"response_key must be {KEY_BYTES} bytes, not {len(key)}")
