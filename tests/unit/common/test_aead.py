"""AES-256-GCM sealing in common.crypto.aead: round trip and every kind of tampering."""

from __future__ import annotations

import pytest

from common.crypto.aead import AeadError, aead_open, aead_seal

KEY = bytes(range(32))
NONCE = bytes(12)


def test_round_trip() -> None:
    sealed = aead_seal(
        key=KEY, nonce=NONCE, plaintext=b"influenza A", associated_data=b"tx1"
    )

    assert b"influenza" not in sealed
    assert aead_open(
        key=KEY, nonce=NONCE, ciphertext=sealed, associated_data=b"tx1"
    ) == (b"influenza A")


@pytest.mark.parametrize("change", ["key", "nonce", "data", "ciphertext"])
def test_any_change_fails_to_open(change: str) -> None:
    sealed = aead_seal(
        key=KEY, nonce=NONCE, plaintext=b"secret", associated_data=b"tx1"
    )
    key, nonce, data = KEY, NONCE, b"tx1"
    if change == "key":
        key = bytes(32)
    elif change == "nonce":
        nonce = b"\x01" * 12
    elif change == "data":
        data = b"tx2"
    else:
        sealed = bytes([sealed[0] ^ 1]) + sealed[1:]

    with pytest.raises(AeadError):
        aead_open(key=key, nonce=nonce, ciphertext=sealed, associated_data=data)


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(AeadError, match="key must be 32 bytes"):
        aead_seal(key=b"short", nonce=NONCE, plaintext=b"", associated_data=b"")
    with pytest.raises(AeadError, match="nonce must be 12 bytes"):
        aead_seal(key=KEY, nonce=b"x", plaintext=b"", associated_data=b"")
