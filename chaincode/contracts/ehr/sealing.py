"""Sealed responses: ReadDiagnosis's plaintext encrypted for the reader only.

A submitted transaction's response is written into the block, which every member of the
channel receives. So a reader that passes a 32-byte key as transient data
`response_key` gets the diagnosis encrypted under it. The nonce is derived from the
transaction id, so every endorser of the proposal produces the same bytes.

The construction uses the standard library only (chaincode must not import the
`cryptography` package; see the import-linter contracts): HMAC-SHA256 as a PRF in
counter mode for the key stream, and encrypt-then-MAC with HMAC-SHA256 over the nonce,
the transaction id and the ciphertext; the encryption and MAC keys are derived from the
reader's key with distinct labels.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

KEY_BYTES = 32
_NONCE_LABEL = b"medledger-ehr-response-nonce"
_BLOCK = hashlib.sha256().digest_size


class SealError(ValueError):
    """A sealed response that does not open: wrong key or transaction id, or altered."""


def _prf(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) != KEY_BYTES:
        raise ValueError(f"response_key must be {KEY_BYTES} bytes, not {len(key)}")
    return _prf(key, b"encrypt"), _prf(key, b"authenticate")


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + _BLOCK - 1) // _BLOCK
    return b"".join(
        _prf(key, nonce + counter.to_bytes(8, "big")) for counter in range(blocks)
    )[:length]


def _tag(key: bytes, nonce: bytes, tx_id: str, ciphertext: bytes) -> bytes:
    return _prf(
        key, nonce + len(tx_id).to_bytes(4, "big") + tx_id.encode() + ciphertext
    )


def seal(key: bytes, tx_id: str, plaintext: bytes) -> dict[str, str]:
    """The sealed form of `plaintext`: {"nonce": hex, "ciphertext": b64, "tag": hex}.

    Raises:
        ValueError: the key is not 32 bytes.
    """
    encrypt_key, mac_key = _keys(key)
    nonce = hashlib.sha256(_NONCE_LABEL + tx_id.encode()).digest()[:16]
    stream = _stream(encrypt_key, nonce, len(plaintext))
    ciphertext = bytes(a ^ b for a, b in zip(plaintext, stream, strict=True))
    return {
        "nonce": nonce.hex(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "tag": _tag(mac_key, nonce, tx_id, ciphertext).hex(),
    }


def open_sealed(key: bytes, tx_id: str, sealed: dict[str, str]) -> bytes:
    """The plaintext of a sealed ReadDiagnosis response (client side).

    Raises:
        SealError: wrong key or transaction id, or the data was altered.
        ValueError: the key is not 32 bytes.
    """
    encrypt_key, mac_key = _keys(key)
    nonce = bytes.fromhex(sealed["nonce"])
    ciphertext = base64.b64decode(sealed["ciphertext"])
    expected = _tag(mac_key, nonce, tx_id, ciphertext)
    if not hmac.compare_digest(expected, bytes.fromhex(sealed["tag"])):
        raise SealError("the sealed response does not open with this key and tx id")
    stream = _stream(encrypt_key, nonce, len(ciphertext))
    return bytes(a ^ b for a, b in zip(ciphertext, stream, strict=True))
