"""Sealed responses: ReadDiagnosis's plaintext encrypted for the reader only.

A submitted transaction's response is written into the block, which every member of the
channel receives. So a reader that passes a 32-byte AES key as transient data
`response_key` gets the diagnosis AES-GCM encrypted under it; the nonce is derived from
the transaction id, so every endorser of the proposal produces the same bytes.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_LABEL = b"medledger-ehr-response"


def _nonce(tx_id: str) -> bytes:
    return hashlib.sha256(_NONCE_LABEL + tx_id.encode()).digest()[:12]


def seal(key: bytes, tx_id: str, plaintext: bytes) -> dict[str, str]:
    """The sealed form of `plaintext`: {"nonce": hex, "ciphertext": base64}.

    Raises:
        ValueError: the key is not 32 bytes.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"response_key must be {KEY_BYTES} bytes, not {len(key)}")
    nonce = _nonce(tx_id)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, tx_id.encode())
    return {"nonce": nonce.hex(), "ciphertext": base64.b64encode(ciphertext).decode()}


def open_sealed(key: bytes, tx_id: str, sealed: dict[str, str]) -> bytes:
    """The plaintext of a sealed ReadDiagnosis response (client side).

    Raises:
        cryptography.exceptions.InvalidTag: wrong key, transaction id or tampered data.
    """
    ciphertext = base64.b64decode(sealed["ciphertext"])
    return AESGCM(key).decrypt(
        bytes.fromhex(sealed["nonce"]), ciphertext, tx_id.encode()
    )
