"""Config transactions on the wire: CONFIG_UPDATE requests and the CONFIG envelopes made
from them.

An administrator broadcasts an Envelope of type CONFIG_UPDATE whose data is a
`ConfigUpdateEnvelope`: the marshaled `ConfigUpdate` plus one `ConfigSignature` per
approving admin, each over ``signature_header ‖ config_update``. The orderer validates
it (`common.configtx.validator`) and orders an Envelope of type CONFIG, signed by
itself, whose data is the resulting `ConfigEnvelope`; that envelope alone makes a
config block.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import ConfigUpdateError, WireError
from common.policies import SignedData
from common.protoutil import (
    Timestamp,
    channel_header_bytes,
    compute_tx_id,
    header_bytes,
    new_nonce,
    parse_envelope,
    payload_bytes,
    sign_envelope,
    signature_header_bytes,
)
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "EnvelopeSigner",
    "config_update_signed_data",
    "create_config_tx",
    "create_signed_tx",
    "parse_config_tx",
    "parse_config_update_tx",
]

M = TypeVar("M", bound=Message)


class EnvelopeSigner(Protocol):
    """Who signs an envelope: a serialized identity and its key (`SigningIdentity`)."""

    @property
    def serialized(self) -> bytes:
        """The marshaled msp.SerializedIdentity that goes into SignatureHeader.creator."""

    def sign(self, message: bytes) -> bytes:
        """A DER ECDSA signature over SHA-256(message)."""


def parse_config_update_tx(
    envelope: bytes | common_pb2.Envelope, *, channel_id: str
) -> tuple[common_pb2.Envelope, configtx_pb2.ConfigUpdateEnvelope]:
    """Decode a CONFIG_UPDATE envelope for `channel_id` down to its ConfigUpdateEnvelope.

    Returns the Envelope message too, which becomes the new config's `last_update`.

    Raises:
        ConfigUpdateError: not an envelope of type CONFIG_UPDATE for this channel, or its
            data is not a ConfigUpdateEnvelope.
    """
    message = (
        envelope
        if isinstance(envelope, common_pb2.Envelope)
        else decode(common_pb2.Envelope, envelope, what="config update envelope")
    )
    try:
        parsed = parse_envelope(message)
    except WireError as error:
        raise ConfigUpdateError(f"config update envelope: {error}") from error
    if parsed.header_type != common_pb2.CONFIG_UPDATE:
        raise ConfigUpdateError(
            f"envelope has header type {parsed.header_type}, expected CONFIG_UPDATE "
            f"({common_pb2.CONFIG_UPDATE})"
        )
    if parsed.channel_id != channel_id:
        raise ConfigUpdateError(
            f"envelope is for channel {parsed.channel_id!r}, not {channel_id!r}"
        )
    update_envelope = decode(
        configtx_pb2.ConfigUpdateEnvelope, parsed.data, what="ConfigUpdateEnvelope"
    )
    return message, update_envelope


def config_update_signed_data(
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
) -> list[SignedData]:
    """What each ConfigSignature vouches for: ``signature_header ‖ config_update``, signed
    by the header's creator.

    An empty header yields an empty creator, which policy evaluation then ignores as an
    invalid identity, as Fabric does.

    Raises:
        ConfigUpdateError: a signature header does not decode.
    """
    signed = []
    for index, config_signature in enumerate(update_envelope.signatures):
        header = decode(
            common_pb2.SignatureHeader,
            config_signature.signature_header,
            what=f"signature {index} header",
        )
        signed.append(
            SignedData(
                data=config_signature.signature_header + update_envelope.config_update,
                identity=header.creator,
                signature=config_signature.signature,
            )
        )
    return signed


def create_config_tx(
    config_envelope: configtx_pb2.ConfigEnvelope,
    signer: EnvelopeSigner,
    *,
    channel_id: str,
    timestamp: Timestamp | None = None,
    nonce: bytes | None = None,
) -> common_pb2.Envelope:
    """The CONFIG envelope an orderer puts alone in a config block, signed by `signer`.

    As Fabric's orderer: channel header version 0, epoch 0, the time in whole seconds;
    the tx id is SHA-256(nonce ‖ creator) like any other transaction's.
    """
    return create_signed_tx(
        common_pb2.CONFIG,
        _encode(config_envelope),
        signer,
        channel_id=channel_id,
        timestamp=timestamp,
        nonce=nonce,
    )


def create_signed_tx(
    header_type: int,
    data: bytes,
    signer: EnvelopeSigner,
    *,
    channel_id: str,
    timestamp: Timestamp | None = None,
    nonce: bytes | None = None,
) -> common_pb2.Envelope:
    """An Envelope of `header_type` around `data`, signed by its creator `signer`.

    The timestamp defaults to now in whole seconds and the nonce to fresh random bytes.
    """
    nonce = new_nonce() if nonce is None else nonce
    creator = signer.serialized
    header = header_bytes(
        channel_header=channel_header_bytes(
            header_type=header_type,
            channel_id=channel_id,
            tx_id=compute_tx_id(nonce=nonce, creator=creator),
            timestamp=Timestamp(Timestamp.now().seconds)
            if timestamp is None
            else timestamp,
        ),
        signature_header=signature_header_bytes(creator=creator, nonce=nonce),
    )
    return sign_envelope(payload_bytes(header=header, data=data), signer.sign)


def parse_config_tx(
    envelope: bytes | common_pb2.Envelope,
) -> configtx_pb2.ConfigEnvelope:
    """The ConfigEnvelope carried by a CONFIG envelope (from a config block).

    Raises:
        ConfigUpdateError: not an envelope of type CONFIG, or its data does not decode.
    """
    try:
        parsed = parse_envelope(envelope)
    except WireError as error:
        raise ConfigUpdateError(f"config envelope: {error}") from error
    if parsed.header_type != common_pb2.CONFIG:
        raise ConfigUpdateError(
            f"envelope has header type {parsed.header_type}, expected CONFIG "
            f"({common_pb2.CONFIG})"
        )
    return decode(configtx_pb2.ConfigEnvelope, parsed.data, what="ConfigEnvelope")


def decode(message_type: type[M], data: bytes, *, what: str) -> M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        raise ConfigUpdateError(
            f"{what} does not decode as {message_type.DESCRIPTOR.full_name}: {error}"
        ) from error
    return message


def _encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)
