"""Envelopes: a signed common.Payload, the unit the orderer orders and a block stores.

Order phase. Envelope.signature is the creator's signature over the exact payload bytes;
the payload's header says which channel and type the data belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from common.errors import WireError
from common.protoutil._wire import SignedData, Signer, decode, length_delimited_field
from common.protoutil.header import ChannelHeader, Header, SignatureHeader, parse_header
from protos.common import common_pb2

_PAYLOAD_HEADER_FIELD = 1
_PAYLOAD_DATA_FIELD = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEnvelope:
    """A decoded Envelope: signed payload bytes, signature, header halves and data."""

    payload_bytes: bytes
    signature: bytes
    header: Header
    data: bytes

    @property
    def channel_header(self) -> ChannelHeader:
        return self.header.channel_header

    @property
    def signature_header(self) -> SignatureHeader:
        return self.header.signature_header

    @property
    def header_type(self) -> int:
        return self.header.channel_header.type

    @property
    def channel_id(self) -> str:
        return self.header.channel_header.channel_id

    @property
    def tx_id(self) -> str:
        return self.header.channel_header.tx_id

    @property
    def creator(self) -> bytes:
        return self.header.signature_header.creator


def payload_bytes(*, header: bytes, data: bytes) -> bytes:
    """Marshal a common.Payload around an already-marshaled Header, byte for byte.

    Splicing keeps the header exactly as its creator encoded it; for a canonical header
    this is also exactly what marshaling Payload{header, data} yields.
    """
    return length_delimited_field(_PAYLOAD_HEADER_FIELD, header) + (
        length_delimited_field(_PAYLOAD_DATA_FIELD, data) if data else b""
    )


def sign_envelope(payload: bytes, signer: Signer) -> common_pb2.Envelope:
    """Wrap payload bytes with the creator's signature over exactly those bytes."""
    return common_pb2.Envelope(payload=payload, signature=signer(payload))


def parse_envelope(data: bytes | common_pb2.Envelope) -> ParsedEnvelope:
    """Decode an Envelope, its Payload and both header halves.

    Raises:
        WireError: a layer is missing or does not decode; the message names the layer.
    """
    if isinstance(data, common_pb2.Envelope):
        envelope = data
    else:
        envelope = decode(common_pb2.Envelope, data, what="envelope")
    if not envelope.payload:
        raise WireError("envelope.payload is missing")
    payload = decode(common_pb2.Payload, envelope.payload, what="envelope.payload")
    if not payload.HasField("header"):
        raise WireError("envelope.payload.header is missing")
    return ParsedEnvelope(
        payload_bytes=envelope.payload,
        signature=envelope.signature,
        header=parse_header(payload.header, what="envelope.payload.header"),
        data=payload.data,
    )


def envelope_signed_data(envelope: ParsedEnvelope) -> SignedData:
    """What to verify: the creator's signature over the exact payload bytes."""
    return SignedData(
        message=envelope.payload_bytes,
        identity=envelope.creator,
        signature=envelope.signature,
    )


def block_time(block: common_pb2.Block) -> datetime | None:
    """The channel-header time of the block's last decodable transaction (None: none).

    Block signatures are checked against the MSPs as they were at this time, so a
    certificate that expired after the block was made still verifies it.
    """
    for data in reversed(block.data.data):
        try:
            timestamp = parse_envelope(data).channel_header.timestamp
        except WireError:
            continue
        if timestamp is not None:
            try:
                return datetime.fromtimestamp(timestamp.seconds, UTC)
            except (OverflowError, OSError, ValueError):
                return None
    return None
