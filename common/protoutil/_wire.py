"""Wire helpers shared by the protoutil modules: decode with WireError, hash, splice.

Nothing here knows a Fabric noun; the noun modules (proposal, transaction, block, ...)
build on these few primitives so every decode failure reads the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError

Signer = Callable[[bytes], bytes]
"""Signs a message (not a digest), returns the DER signature; e.g. `PrivateKey.sign`."""

M = TypeVar("M", bound=Message)

_LENGTH_DELIMITED = 2
_ONE_BYTE = 1 << 7
_TWO_BYTES = 1 << 14


@dataclass(frozen=True, slots=True)
class SignedData:
    """One signature to check: `identity` (a SerializedIdentity) signed `message`."""

    message: bytes
    identity: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A google.protobuf.Timestamp as plain numbers (seconds since the epoch, UTC)."""

    seconds: int
    nanos: int = 0

    @classmethod
    def now(cls) -> Timestamp:
        """The current wall-clock time at nanosecond resolution."""
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        return cls(seconds=seconds, nanos=nanos)


def decode(message_type: type[M], data: bytes, *, what: str) -> M:
    """Parse `data` as `message_type`; any failure becomes a WireError naming `what`."""
    if not isinstance(data, bytes):
        raise WireError(f"{what}: expected bytes, got {type(data).__name__}")
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        name = message_type.DESCRIPTOR.full_name
        raise WireError(f"{what} does not decode as {name}: {exc}") from exc
    return message


def encode(message: Message) -> bytes:
    """Serialise deterministically (map entries sorted by key)."""
    return message.SerializeToString(deterministic=True)


def sha256(data: bytes) -> bytes:
    """SHA-256 digest; protoutil hashes without touching the `cryptography` package."""
    return hashlib.sha256(data).digest()


def length_delimited_field(field_number: int, value: bytes) -> bytes:
    """Encode one length-delimited protobuf field (tag, varint length, value).

    Used to embed bytes we must not re-serialise, such as an original Header inside a
    Payload, so that the wire bytes stay exactly those the creator produced.
    """
    return length_delimited_head(field_number, len(value)) + value


def length_delimited_head(field_number: int, length: int) -> bytes:
    """The tag and varint length that precede a length-delimited field's `length`
    bytes: for writing a large field in pieces (writev) without joining it first."""
    tag = field_number << 3 | _LENGTH_DELIMITED
    if tag < _ONE_BYTE and length < _ONE_BYTE:
        return bytes((tag, length))
    if tag < _ONE_BYTE and length < _TWO_BYTES:
        return bytes((tag, length & 0x7F | 0x80, length >> 7))
    return varint(tag) + varint(length)


def timestamp_of(message: Message) -> Timestamp | None:
    """The Timestamp of a message's `timestamp` field, or None when it is unset."""
    if not message.HasField("timestamp"):
        return None
    stamp = message.timestamp  # type: ignore[attr-defined]
    return Timestamp(seconds=stamp.seconds, nanos=stamp.nanos)


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
