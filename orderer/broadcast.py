"""Broadcast checks: may this envelope be ordered on its channel? (no I/O)

Each envelope goes through the checks in Fabric's order and either passes or raises
`BroadcastRejected` with the status to answer:

    bytes decode as Envelope → Payload → Header halves          else BAD_REQUEST
    the channel is joined here                                  else NOT_FOUND
    size ≤ BatchSize.AbsoluteMaxBytes                           else REQUEST_ENTITY_TOO_LARGE
    header type ENDORSER_TRANSACTION or CONFIG_UPDATE           else BAD_REQUEST
    creator valid in the channel's MSPs, signature over the
    payload verifies, /Channel/Writers satisfied                else FORBIDDEN
    endorser tx: tx id = SHA-256(nonce ‖ creator)               else BAD_REQUEST
    config update applies to the current config (configupdate)  else BAD_REQUEST
    config update's signatures satisfy each mod_policy          else FORBIDDEN

Signature checks dominate the cost, so an `EnvelopeChecker` (one per channel config)
remembers each creator it has accepted (deserialised, validated, Writers satisfied)
until the certificate expires; only the signature is verified per envelope, with the
creator's cached key, over the exact payload bytes received. The checks come in two
halves around the signature (`check_unsigned`, `check_signed`) so that Broadcast can
verify signatures in batches in a worker process (orderer.signature_worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from common.channelconfig import ChannelConfig
from common.errors import IdentityError, PolicyError, WireError
from common.protoutil import ParsedEnvelope, check_tx_id, parse_envelope
from orderer.errors import BroadcastRejected
from orderer.signature_worker import SignatureItem, Verdict, signature_verdict
from protos.common import common_pb2

__all__ = ["ACCEPTED_TYPES", "EnvelopeChecker", "parse_broadcast_envelope"]

ACCEPTED_TYPES = frozenset({common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG_UPDATE})
WRITERS = "/Channel/Writers"
CREATOR_CACHE_SIZE = 4096


def parse_broadcast_envelope(data: bytes) -> ParsedEnvelope:
    """Decode an envelope's layers (BAD_REQUEST when one does not decode)."""
    try:
        return parse_envelope(data)
    except WireError as error:
        raise BroadcastRejected(str(error), status=common_pb2.BAD_REQUEST) from None


@dataclass(frozen=True, slots=True)
class _Creator:
    certificate: bytes
    expires_s: float


class EnvelopeChecker:
    """The per-channel checks after the channel is known, for one channel config."""

    def __init__(
        self, config: ChannelConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._writers = config.policy_manager.get(WRITERS)
        self._max_bytes = config.batch_size.absolute_max_bytes
        self._clock = clock
        self._creators: dict[bytes, _Creator] = {}

    def check(self, envelope: ParsedEnvelope, *, size: int) -> None:
        """Raise BroadcastRejected unless the envelope may be ordered."""
        signature = self.check_unsigned(envelope, size=size)
        self.check_signed(envelope, signature_verdict(signature))

    def check_unsigned(self, envelope: ParsedEnvelope, *, size: int) -> SignatureItem:
        """The checks before the signature's; returns the signature to verify.

        Raises:
            BroadcastRejected: size, header type or creator refused.
        """
        if size > self._max_bytes:
            raise BroadcastRejected(
                f"envelope of {size} bytes is larger than AbsoluteMaxBytes "
                f"{self._max_bytes}",
                status=common_pb2.REQUEST_ENTITY_TOO_LARGE,
            )
        header_type = envelope.header_type
        if header_type not in ACCEPTED_TYPES:
            raise BroadcastRejected(
                f"header type {header_type} cannot be broadcast "
                "(only ENDORSER_TRANSACTION and CONFIG_UPDATE)",
                status=common_pb2.BAD_REQUEST,
            )
        creator = self._accepted_creator(envelope.creator)
        return (creator.certificate, envelope.payload_bytes, envelope.signature)

    @staticmethod
    def check_signed(envelope: ParsedEnvelope, signature: Verdict) -> None:
        """The checks from the signature's verdict on (`check_unsigned` passed).

        Raises:
            BroadcastRejected: bad signature (FORBIDDEN) or tx id (BAD_REQUEST).
        """
        if signature is not None:
            raise _forbidden(f"envelope signature: {signature}")
        if envelope.header_type == common_pb2.ENDORSER_TRANSACTION:
            _check_tx_id(envelope)

    def _accepted_creator(self, serialized: bytes) -> _Creator:
        now = self._clock()
        cached = self._creators.get(serialized)
        if cached is not None and now < cached.expires_s:
            return cached
        msps = self._config.msp_manager
        try:
            identity = msps.deserialize_identity(serialized)
            msps.validate(identity)
            self._writers.evaluate_identities([identity], msps)
        except (IdentityError, PolicyError) as error:
            raise _forbidden(f"creator: {error}") from None
        creator = _Creator(
            identity.certificate.der, identity.certificate.not_after.timestamp()
        )
        if len(self._creators) >= CREATOR_CACHE_SIZE:
            self._creators.clear()
        self._creators[serialized] = creator
        return creator


def _check_tx_id(envelope: ParsedEnvelope) -> None:
    try:
        check_tx_id(
            tx_id=envelope.tx_id,
            nonce=envelope.signature_header.nonce,
            creator=envelope.creator,
        )
    except WireError as error:
        raise BroadcastRejected(str(error), status=common_pb2.BAD_REQUEST) from None


def _forbidden(message: str) -> BroadcastRejected:
    return BroadcastRejected(message, status=common_pb2.FORBIDDEN)
