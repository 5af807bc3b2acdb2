"""What the protoutil tests share: the conformance vectors and a deterministic signer.

`load_vector` reads one JSON file of tests/vectors; `fake_signer` stands in for an
ECDSA key where only determinism matters; `CREATOR` is the serialized identity the
proposal vectors were made with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from common import protoutil as pu

VECTORS = Path(__file__).parents[2] / "vectors"
CREATOR = pu.serialize_identity("Org1MSP", b"-----BEGIN CERTIFICATE-----\nuser1\n")


def load_vector(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def fake_signer(key: bytes) -> pu.Signer:
    """A deterministic stand-in for an ECDSA key: HMAC-SHA256 over the message."""
    return lambda message: hmac.new(key, message, hashlib.sha256).digest()
