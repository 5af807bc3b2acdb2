"""Channel and signature headers: the common.Header every proposal and envelope carries.

Builders return marshaled bytes; parsers return frozen views that keep the exact bytes
they were decoded from (`raw`), because hashes and signatures cover those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import WireError
from common.protoutil._wire import Timestamp, decode, encode
from protos.common import common_pb2


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHeader:
    """A decoded common.ChannelHeader plus the bytes it came from."""

    raw: bytes
    type: int
    version: int
    timestamp: Timestamp | None
    channel_id: str
    tx_id: str
    epoch: int
    extension: bytes
    tls_cert_hash: bytes


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """A decoded common.SignatureHeader plus the bytes it came from."""

    raw: bytes
    creator: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """Both halves of a common.Header, each with its original bytes."""

    channel_header: ChannelHeader
    signature_header: SignatureHeader


def channel_header_bytes(
    *,
    header_type: int,
    channel_id: str,
    tx_id: str = "",
    timestamp: Timestamp | None = None,
    extension: bytes = b"",
    tls_cert_hash: bytes = b"",
) -> bytes:
    """Marshal a ChannelHeader, version 0, epoch 0 (the only epoch Fabric accepts)."""
    message = common_pb2.ChannelHeader(
        type=header_type,
        channel_id=channel_id,
        tx_id=tx_id,
        epoch=0,
        extension=extension,
        tls_cert_hash=tls_cert_hash,
    )
    if timestamp is not None:
        message.timestamp.seconds = timestamp.seconds
        message.timestamp.nanos = timestamp.nanos
    return encode(message)


def signature_header_bytes(*, creator: bytes, nonce: bytes = b"") -> bytes:
    """Marshal a SignatureHeader{creator, nonce}."""
    return encode(common_pb2.SignatureHeader(creator=creator, nonce=nonce))


def header_bytes(*, channel_header: bytes, signature_header: bytes) -> bytes:
    """Marshal a common.Header from the two already-marshaled halves."""
    return encode(
        common_pb2.Header(
            channel_header=channel_header, signature_header=signature_header
        )
    )


def parse_channel_header(data: bytes, *, what: str = "channel header") -> ChannelHeader:
    """Decode ChannelHeader bytes; empty bytes are rejected as a missing header.

    Raises:
        WireError: the bytes are empty or do not decode.
    """
    if not data:
        raise WireError(f"{what} is missing")
    message = decode(common_pb2.ChannelHeader, data, what=what)
    stamp = message.timestamp if message.HasField("timestamp") else None
    return ChannelHeader(
        raw=data,
        type=message.type,
        version=message.version,
        timestamp=None if stamp is None else Timestamp(stamp.seconds, stamp.nanos),
        channel_id=message.channel_id,
        tx_id=message.tx_id,
        epoch=message.epoch,
        extension=message.extension,
        tls_cert_hash=message.tls_cert_hash,
    )


def parse_signature_header(
    data: bytes, *, what: str = "signature header"
) -> SignatureHeader:
    """Decode SignatureHeader bytes; empty bytes are rejected as a missing header.

    Raises:
        WireError: the bytes are empty or do not decode.
    """
    if not data:
        raise WireError(f"{what} is missing")
    message = decode(common_pb2.SignatureHeader, data, what=what)
    return SignatureHeader(raw=data, creator=message.creator, nonce=message.nonce)


def parse_header(message: common_pb2.Header, *, what: str = "header") -> Header:
    """Decode both halves of an already-decoded common.Header.

    Raises:
        WireError: either half is missing or does not decode.
    """
    return Header(
        parse_channel_header(message.channel_header, what=f"{what}.channel_header"),
        parse_signature_header(
            message.signature_header, what=f"{what}.signature_header"
        ),
    )
