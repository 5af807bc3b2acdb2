"""Deliver seek requests: the signed DELIVER_SEEK_INFO envelope opening a block stream.

Used against the orderer's and the peer's Deliver services. Built as the Fabric Gateway
Node client builds it: ChannelHeader{type, channel_id, timestamp, epoch 0, optional
tls_cert_hash}, SignatureHeader{creator} with no nonce, data = marshaled SeekInfo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.errors import WireError
from common.protoutil._wire import Signer, Timestamp, decode, encode
from common.protoutil.envelope import (
    ParsedEnvelope,
    parse_envelope,
    payload_bytes,
    sign_envelope,
)
from common.protoutil.header import (
    channel_header_bytes,
    header_bytes,
    signature_header_bytes,
)
from protos.common import common_pb2
from protos.orderer import ab_pb2

SeekKind = Literal["newest", "oldest", "specified", "next_commit"]

BLOCK_UNTIL_READY = ab_pb2.SeekInfo.BLOCK_UNTIL_READY
FAIL_IF_NOT_READY = ab_pb2.SeekInfo.FAIL_IF_NOT_READY
STRICT = ab_pb2.SeekInfo.STRICT
BEST_EFFORT = ab_pb2.SeekInfo.BEST_EFFORT
CONTENT_BLOCK = ab_pb2.SeekInfo.BLOCK
CONTENT_HEADER_WITH_SIG = ab_pb2.SeekInfo.HEADER_WITH_SIG


@dataclass(frozen=True, slots=True)
class SeekPosition:
    """An orderer.SeekPosition; `number` is meaningful only for kind "specified"."""

    kind: SeekKind
    number: int = 0

    @classmethod
    def newest(cls) -> SeekPosition:
        return cls("newest")

    @classmethod
    def oldest(cls) -> SeekPosition:
        return cls("oldest")

    @classmethod
    def next_commit(cls) -> SeekPosition:
        return cls("next_commit")

    @classmethod
    def specified(cls, number: int) -> SeekPosition:
        return cls("specified", number)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSeek:
    """A decoded DELIVER_SEEK_INFO envelope and the SeekInfo it carries."""

    envelope: ParsedEnvelope
    start: SeekPosition
    stop: SeekPosition
    behavior: int
    error_response: int
    content_type: int


def create_seek_envelope(
    *,
    channel_id: str,
    start: SeekPosition,
    stop: SeekPosition,
    behavior: int,
    creator: bytes,
    signer: Signer,
    tls_cert_hash: bytes | None = None,
    timestamp: Timestamp | None = None,
    error_response: int = STRICT,
    content_type: int = CONTENT_BLOCK,
) -> common_pb2.Envelope:
    """Build and sign the envelope asking a Deliver service for blocks start..stop."""
    seek_info = ab_pb2.SeekInfo(
        start=_position_message(start),
        stop=_position_message(stop),
        behavior=behavior,  # type: ignore[arg-type]
        error_response=error_response,  # type: ignore[arg-type]
        content_type=content_type,  # type: ignore[arg-type]
    )
    channel_header = channel_header_bytes(
        header_type=common_pb2.DELIVER_SEEK_INFO,
        channel_id=channel_id,
        timestamp=Timestamp.now() if timestamp is None else timestamp,
        tls_cert_hash=tls_cert_hash or b"",
    )
    header = header_bytes(
        channel_header=channel_header,
        signature_header=signature_header_bytes(creator=creator),
    )
    return sign_envelope(payload_bytes(header=header, data=encode(seek_info)), signer)


def parse_seek_envelope(data: bytes | common_pb2.Envelope) -> ParsedSeek:
    """Decode a DELIVER_SEEK_INFO envelope and its SeekInfo.

    Raises:
        WireError: wrong header type, a missing start or stop position, or a layer that
            does not decode.
    """
    envelope = parse_envelope(data)
    if envelope.header_type != common_pb2.DELIVER_SEEK_INFO:
        raise WireError(
            f"envelope header type {envelope.header_type} is not DELIVER_SEEK_INFO"
        )
    seek_info = decode(
        ab_pb2.SeekInfo, envelope.data, what="envelope.payload.data (SeekInfo)"
    )
    return ParsedSeek(
        envelope=envelope,
        start=_position_of(seek_info, "start"),
        stop=_position_of(seek_info, "stop"),
        behavior=seek_info.behavior,
        error_response=seek_info.error_response,
        content_type=seek_info.content_type,
    )


def _position_message(position: SeekPosition) -> ab_pb2.SeekPosition:
    if position.kind == "newest":
        return ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
    if position.kind == "oldest":
        return ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest())
    if position.kind == "next_commit":
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=position.number))


def _position_of(
    seek_info: ab_pb2.SeekInfo, field: Literal["start", "stop"]
) -> SeekPosition:
    message: ab_pb2.SeekPosition = getattr(seek_info, field)
    kind = message.WhichOneof("Type") if seek_info.HasField(field) else None
    if kind is None:
        raise WireError(f"SeekInfo.{field} position is missing")
    if kind == "specified":
        return SeekPosition.specified(message.specified.number)
    if kind == "newest":
        return SeekPosition.newest()
    if kind == "oldest":
        return SeekPosition.oldest()
    return SeekPosition.next_commit()
