"""Transaction ids, nonces and serialized identities: a transaction's name and creator.

A tx id is lowercase hex SHA-256(nonce ‖ creator), where creator is the exact
SignatureHeader.creator bytes (a marshaled msp.SerializedIdentity). Endorsers and
committers recompute it and reject any mismatch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from common.errors import MalformedIdentity, TxIdMismatch, WireError
from common.protoutil._wire import decode, encode, sha256
from protos.msp import identities_pb2

NONCE_SIZE = 24
"""Bytes of randomness per nonce, as the Fabric Gateway Node client uses."""


@dataclass(frozen=True, slots=True)
class SerializedIdentity:
    """An msp.SerializedIdentity: the MSP id and the PEM certificate (`id_bytes`)."""

    mspid: str
    id_bytes: bytes


def new_nonce() -> bytes:
    """A fresh random nonce of NONCE_SIZE bytes."""
    return secrets.token_bytes(NONCE_SIZE)


def compute_tx_id(*, nonce: bytes, creator: bytes) -> str:
    """Lowercase hex SHA-256(nonce ‖ creator)."""
    return sha256(nonce + creator).hex()


def check_tx_id(*, tx_id: str, nonce: bytes, creator: bytes) -> None:
    """Raise TxIdMismatch unless `tx_id` is the id that nonce and creator determine.

    Raises:
        TxIdMismatch: the id differs (the comparison is exact, so upper-case hex fails).
    """
    expected = compute_tx_id(nonce=nonce, creator=creator)
    if tx_id != expected:
        raise TxIdMismatch(
            f"tx id {tx_id!r} is not sha256(nonce ‖ creator) = {expected}"
        )


def serialize_identity(mspid: str, cert_pem: bytes) -> bytes:
    """Marshal an msp.SerializedIdentity{mspid, id_bytes = cert_pem}."""
    return encode(identities_pb2.SerializedIdentity(mspid=mspid, id_bytes=cert_pem))


def parse_serialized_identity(data: bytes) -> SerializedIdentity:
    """Decode SerializedIdentity bytes; the MSP id and the certificate must be present.

    Raises:
        MalformedIdentity: the bytes do not decode, or MSP id or certificate is empty.
    """
    try:
        message = decode(
            identities_pb2.SerializedIdentity, data, what="serialized identity"
        )
    except WireError as exc:
        raise MalformedIdentity(str(exc)) from exc
    if not message.mspid:
        raise MalformedIdentity("serialized identity has no mspid")
    if not message.id_bytes:
        raise MalformedIdentity("serialized identity has no certificate (id_bytes)")
    return SerializedIdentity(mspid=message.mspid, id_bytes=message.id_bytes)
