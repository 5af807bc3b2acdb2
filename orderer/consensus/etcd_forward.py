"""The Forward service between orderers: followers hand broadcast envelopes to the cutter.

`ForwardServicer` answers `medledger.orderer.v1.ForwardService/Forward` for every
channel of this orderer's etcd backend, on the orderer's gRPC listener; the cutter's
chain does the work (etcd_routing). `ForwardClient` dials other orderers: one channel
per cutter address, every call with a deadline; a call that fails as a whole (cutter
gone, deadline) counts as UNAVAILABLE for each envelope.

Forwarded envelopes skip Broadcast's checks (the follower made them), so the cutter
must know the caller is an orderer of this ordering service. Each request carries an
HMAC-SHA256 over its channel id and envelopes (metadata `medledger-forward-mac-bin`),
keyed with a random secret kept in etcd under `<prefix>/forward-key`: whoever can read
etcd (the orderers, with their client certificates) can forward; nobody else can, even
when the listener does not ask for client certificates.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_types import EtcdError, Get, KeyMissing, Put
from protos.medledger.orderer import forward_pb2, forward_pb2_grpc

_LOG = logging.getLogger(__name__)

SERVICE_NAME = "medledger.orderer.v1.ForwardService"
FORWARD_MESSAGE_BYTES_MAX = 64 * 1024 * 1024
FORWARD_ENVELOPES_MAX = 2000
"""Envelopes per Forward call; the servicer refuses larger requests."""
MAC_METADATA = "medledger-forward-mac-bin"
FORWARD_KEY_BYTES = 32
_CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", FORWARD_MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", FORWARD_MESSAGE_BYTES_MAX),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


class ForwardStatus(enum.IntEnum):
    """What became of one forwarded envelope (the proto's ForwardStatus)."""

    ORDERED = forward_pb2.FORWARD_STATUS_ORDERED
    NOT_CUTTER = forward_pb2.FORWARD_STATUS_NOT_CUTTER
    UNAVAILABLE = forward_pb2.FORWARD_STATUS_UNAVAILABLE
    REJECTED = forward_pb2.FORWARD_STATUS_REJECTED


@dataclass(frozen=True, slots=True)
class ForwardOutcome:
    status: ForwardStatus
    block_number: int = 0
    message: str = ""
    reject_status: int = 0
    """With REJECTED: the common.Status Broadcast answers with."""


UNAVAILABLE = ForwardOutcome(ForwardStatus.UNAVAILABLE, message="cutter unreachable")


class ForwardTarget(Protocol):
    """What the servicer needs from a channel's chain."""

    async def order_forwarded(
        self, envelopes: Sequence[bytes], *, config_sequences: Sequence[int] = ()
    ) -> list[ForwardOutcome]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardTls:
    """PEM material to dial other orderers' Forward services with mutual TLS."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    server_name: str | None = None


ForwardKey = Callable[[], Awaitable[bytes]]
"""Returns the shared forwarding secret (loaded from etcd once)."""


class ForwardServicer(forward_pb2_grpc.ForwardServiceServicer):
    """Serves Forward for the chains that `lookup` finds by channel id."""

    def __init__(
        self, lookup: Callable[[str], ForwardTarget | None], *, key: ForwardKey
    ) -> None:
        self._lookup = lookup
        self._key = key

    async def Forward(
        self,
        request: forward_pb2.ForwardRequest,
        context: grpc.aio.ServicerContext[
            forward_pb2.ForwardRequest, forward_pb2.ForwardResponse
        ],
    ) -> forward_pb2.ForwardResponse:
        if not request.channel_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "channel_id is empty")
        if len(request.envelopes) > FORWARD_ENVELOPES_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.envelopes)} envelopes, at most {FORWARD_ENVELOPES_MAX}",
            )
        sequences = list(request.config_sequences)
        if sequences and len(sequences) != len(request.envelopes):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(sequences)} config sequences for {len(request.envelopes)} "
                "envelopes",
            )
        await self._authenticate(request, context)
        target = self._lookup(request.channel_id)
        if target is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no etcd chain for channel {request.channel_id}",
            )
        assert target is not None
        outcomes = await target.order_forwarded(
            list(request.envelopes), config_sequences=sequences
        )
        return forward_pb2.ForwardResponse(results=[_result(o) for o in outcomes])

    async def _authenticate(
        self,
        request: forward_pb2.ForwardRequest,
        context: grpc.aio.ServicerContext[
            forward_pb2.ForwardRequest, forward_pb2.ForwardResponse
        ],
    ) -> None:
        sent = dict(context.invocation_metadata() or ()).get(MAC_METADATA)
        if not isinstance(sent, bytes):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no forwarding MAC")
        try:
            key = await self._key()
        except EtcdError as error:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"forwarding key unavailable: {error}"
            )
        expected = forward_mac(
            key,
            request.channel_id,
            request.envelopes,
            config_sequences=request.config_sequences,
        )
        if not hmac.compare_digest(expected, bytes(sent)):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad forwarding MAC")


def forward_handler(servicer: ForwardServicer) -> grpc.GenericRpcHandler[Any, Any]:
    """A generic handler serving `servicer` as medledger.orderer.v1.ForwardService."""
    methods = {
        "Forward": grpc.unary_unary_rpc_method_handler(
            servicer.Forward,
            request_deserializer=forward_pb2.ForwardRequest.FromString,
            response_serializer=forward_pb2.ForwardResponse.SerializeToString,
        )
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)


class ForwardClient:
    """Calls other orderers' Forward services; one gRPC channel per address."""

    def __init__(
        self, *, sender: str, key: ForwardKey, tls: ForwardTls | None = None
    ) -> None:
        self.sender = sender
        self.tls = tls
        self._key = key
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def forward(
        self,
        address: str,
        *,
        channel_id: str,
        envelopes: Sequence[bytes],
        config_sequences: Sequence[int] = (),
        timeout_s: float,
    ) -> list[ForwardOutcome]:
        """One outcome per envelope; UNAVAILABLE for all when the call itself fails.

        `config_sequences` (one per envelope, or none) are the sequences of the
        configs the envelopes were checked against.
        """
        stub = forward_pb2_grpc.ForwardServiceStub(self._channel(address))
        request = forward_pb2.ForwardRequest(
            channel_id=channel_id,
            envelopes=envelopes,
            sender=self.sender,
            config_sequences=config_sequences,
        )
        try:
            mac = forward_mac(
                await self._key(),
                channel_id,
                envelopes,
                config_sequences=config_sequences,
            )
            response = await stub.Forward(
                request, timeout=timeout_s, metadata=((MAC_METADATA, mac),)
            )
        except EtcdError as error:
            _LOG.info("no forwarding key channel=%s: %s", channel_id, error)
            return [UNAVAILABLE] * len(envelopes)
        except grpc.aio.AioRpcError as error:
            _LOG.info(
                "forward to %s failed channel=%s: %s %s",
                address,
                channel_id,
                error.code().name,
                error.details(),
            )
            return [UNAVAILABLE] * len(envelopes)
        if len(response.results) != len(envelopes):
            _LOG.warning(
                "forward to %s: %d results for %d envelopes",
                address,
                len(response.results),
                len(envelopes),
            )
            return [UNAVAILABLE] * len(envelopes)
        return [_outcome(result) for result in response.results]

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(grace=None)

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = open_orderer_channel(address, self.tls)
            self._channels[address] = channel
        return channel


def forward_mac(
    key: bytes,
    channel_id: str,
    envelopes: Sequence[bytes],
    *,
    config_sequences: Sequence[int] = (),
) -> bytes:
    """HMAC-SHA256 over the channel id, each envelope and (when there are any) the
    config sequences as one part of 8-byte big-endian numbers; every part
    length-prefixed."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    sequences = b"".join(number.to_bytes(8, "big") for number in config_sequences)
    for part in (channel_id.encode(), *envelopes, *([sequences] if sequences else [])):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.digest()


class SharedForwardKey:
    """The forwarding secret in etcd: created by the first orderer, read by the rest."""

    def __init__(self, client: Callable[[], EtcdClient], key: bytes) -> None:
        self._client = client
        self._etcd_key = key
        self._secret: bytes | None = None

    async def __call__(self) -> bytes:
        """The secret (cached after the first read).

        Raises:
            EtcdError: etcd did not answer, or holds a malformed secret.
        """
        if self._secret is None:
            fresh = os.urandom(FORWARD_KEY_BYTES)
            result = await self._client().txn(
                [KeyMissing(self._etcd_key)],
                [Put(self._etcd_key, fresh)],
                [Get(self._etcd_key)],
            )
            found = result.ranges[0].kvs if not result.succeeded else ()
            secret = fresh if result.succeeded else found[0].value if found else b""
            if len(secret) != FORWARD_KEY_BYTES:
                raise EtcdError(
                    f"etcd key {self._etcd_key!r} is not a forwarding secret"
                )
            self._secret = secret
        return self._secret


def open_orderer_channel(address: str, tls: ForwardTls | None) -> grpc.aio.Channel:
    """A gRPC channel to another orderer (mutual TLS with `tls`, else plaintext)."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_pem,
        private_key=tls.key_pem,
        certificate_chain=tls.cert_pem,
    )
    options: list[tuple[str, int | str]] = list(_CHANNEL_OPTIONS)
    if tls.server_name is not None:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(address, credentials, options=options)


def _result(outcome: ForwardOutcome) -> forward_pb2.ForwardResult:
    return forward_pb2.ForwardResult(
        status=outcome.status.value,
        block_number=outcome.block_number,
        message=outcome.message,
        reject_status=outcome.reject_status,
    )


def _outcome(result: forward_pb2.ForwardResult) -> ForwardOutcome:
    try:
        status = ForwardStatus(result.status)
    except ValueError:
        return ForwardOutcome(
            ForwardStatus.UNAVAILABLE, message=f"unknown status {result.status}"
        )
    return ForwardOutcome(
        status, result.block_number, result.message, result.reject_status
    )
