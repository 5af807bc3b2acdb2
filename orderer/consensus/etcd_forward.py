"""The Forward service between orderers: followers hand broadcast envelopes to the cutter.

`ForwardServicer` answers `medledger.orderer.v1.ForwardService/Forward` for every
channel of this orderer's etcd backend; the node registers it on its cluster gRPC
server (mutual TLS with the orderer organisations' certificates), and the cutter's
chain answers with `answer_forwarded`. `ForwardClient` dials other orderers: one
channel per cutter address, every call with a deadline; a call that fails as a whole
(cutter gone, deadline) counts as UNAVAILABLE for each envelope. `Forwarder` is the
follower's loop: it takes queued envelopes in batches, sends them to the current
cutter with a bounded number of calls in flight, and queues again those that came back
NOT_CUTTER or UNAVAILABLE (with backoff, up to `attempts_max` times) unless a stored
block has meanwhile resolved them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio

from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
    envelope_digest,
)
from orderer.consensus.etcd_types import BackendUnavailable, EnvelopeTooLarge
from protos.medledger.orderer import forward_pb2, forward_pb2_grpc

_LOG = logging.getLogger(__name__)

FORWARD_MESSAGE_BYTES_MAX = 64 * 1024 * 1024
FORWARD_ENVELOPES_MAX = 2000
"""Envelopes per Forward call; the servicer refuses larger requests."""
FORWARD_BATCH_MAX = 500
FORWARD_BATCH_BYTES_MAX = 8 * 1024 * 1024
_RETRY_DELAY_S = 0.1
_RETRY_DELAY_MAX_S = 1.0
_ANSWER_MARGIN_S = 0.5
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


UNAVAILABLE = ForwardOutcome(ForwardStatus.UNAVAILABLE, message="cutter unreachable")


class ForwardTarget(Protocol):
    """What the servicer needs from a channel's chain."""

    async def order_forwarded(
        self, envelopes: Sequence[bytes]
    ) -> list[ForwardOutcome]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardTls:
    """PEM material to dial other orderers' Forward services with mutual TLS."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    server_name: str | None = None


class ForwardServicer(forward_pb2_grpc.ForwardServiceServicer):
    """Serves Forward for the chains that `lookup` finds by channel id."""

    def __init__(self, lookup: Callable[[str], ForwardTarget | None]) -> None:
        self._lookup = lookup

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
        target = self._lookup(request.channel_id)
        if target is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no etcd chain for channel {request.channel_id}",
            )
        assert target is not None
        outcomes = await target.order_forwarded(list(request.envelopes))
        return forward_pb2.ForwardResponse(results=[_result(o) for o in outcomes])


class ForwardClient:
    """Calls other orderers' Forward services; one gRPC channel per address."""

    def __init__(self, *, sender: str, tls: ForwardTls | None = None) -> None:
        self.sender = sender
        self.tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def forward(
        self,
        address: str,
        *,
        channel_id: str,
        envelopes: Sequence[bytes],
        timeout_s: float,
    ) -> list[ForwardOutcome]:
        """One outcome per envelope; UNAVAILABLE for all when the call itself fails."""
        stub = forward_pb2_grpc.ForwardServiceStub(self._channel(address))
        request = forward_pb2.ForwardRequest(
            channel_id=channel_id, envelopes=envelopes, sender=self.sender
        )
        try:
            response = await stub.Forward(request, timeout=timeout_s)
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
            channel = _open_channel(address, self.tls)
            self._channels[address] = channel
        return channel


class Forwarder:
    """The follower's loop: queued envelopes go to the current cutter in batches."""

    def __init__(
        self,
        *,
        channel_id: str,
        table: EnvelopeTable,
        client: Callable[[], ForwardClient],
        timeout_s: float,
        attempts_max: int,
        in_flight_max: int,
    ) -> None:
        self.channel_id = channel_id
        self.table = table
        self.client = client
        self.timeout_s = timeout_s
        self.attempts_max = attempts_max
        self.in_flight_max = in_flight_max

    async def run(
        self,
        cutter_address: Callable[[], Awaitable[str]],
        is_follower: Callable[[], bool],
    ) -> None:
        """Forward until cancelled; `cutter_address` waits until this orderer follows."""
        slots = asyncio.Semaphore(self.in_flight_max)
        async with asyncio.TaskGroup() as calls:
            while True:
                address = await cutter_address()
                if not await self.table.wait_for_work(0.25):
                    continue
                await slots.acquire()
                entries = self.table.take(
                    count_max=FORWARD_BATCH_MAX, bytes_max=FORWARD_BATCH_BYTES_MAX
                )
                if not entries or not is_follower():
                    for entry in entries:
                        self.table.requeue(entry)
                    slots.release()
                    continue
                calls.create_task(self._send(address, entries, slots))

    async def _send(
        self, address: str, entries: list[PendingEnvelope], slots: asyncio.Semaphore
    ) -> None:
        try:
            outcomes = await self.client().forward(
                address,
                channel_id=self.channel_id,
                envelopes=[entry.envelope for entry in entries],
                timeout_s=self.timeout_s,
            )
            retry = [
                entry
                for entry, outcome in zip(entries, outcomes, strict=True)
                if not entry.is_done and self._settle(entry, outcome)
            ]
            if retry:
                attempts = max(entry.attempts for entry in retry)
                await asyncio.sleep(min(_RETRY_DELAY_MAX_S, _RETRY_DELAY_S * attempts))
                for entry in retry:
                    self.table.requeue(entry)
        finally:
            slots.release()

    def _settle(self, entry: PendingEnvelope, outcome: ForwardOutcome) -> bool:
        """Record a forward outcome; True when the entry must be forwarded again."""
        if outcome.status is ForwardStatus.ORDERED:
            return False  # resolved when the block reaches this orderer's store
        if outcome.status is ForwardStatus.REJECTED:
            self.table.fail(entry, EnvelopeTooLarge(outcome.message))
            return False
        entry.attempts += 1
        if entry.attempts >= self.attempts_max:
            message = f"forwarding failed {entry.attempts} times: {outcome.message}"
            self.table.fail(entry, BackendUnavailable(message))
            return False
        return True


async def answer_forwarded(
    table: EnvelopeTable,
    envelopes: Sequence[bytes],
    *,
    term_ended: asyncio.Event,
    timeout_s: float,
) -> list[ForwardOutcome]:
    """The cutter's answer: wait until each envelope is stored, or the term ends."""
    entries = [_admit_forwarded(table, envelope) for envelope in envelopes]
    waiting = {entry.future for entry in entries if isinstance(entry, PendingEnvelope)}
    await _wait_all(waiting, until=term_ended, timeout_s=timeout_s - _ANSWER_MARGIN_S)
    return [_answer(table, entry) for entry in entries]


def _admit_forwarded(
    table: EnvelopeTable, envelope: bytes
) -> PendingEnvelope | ForwardOutcome:
    digest = envelope_digest(envelope)
    known = table.block_of(digest)
    if known is not None:
        return ForwardOutcome(ForwardStatus.ORDERED, block_number=known)
    try:
        return table.admit(envelope, local=False, digest=digest)
    except BackendUnavailable as error:
        return ForwardOutcome(ForwardStatus.UNAVAILABLE, message=str(error))


def _answer(
    table: EnvelopeTable, entry: PendingEnvelope | ForwardOutcome
) -> ForwardOutcome:
    if isinstance(entry, ForwardOutcome):
        return entry
    future = entry.future
    if not future.done():
        table.discard(entry)
        return ForwardOutcome(ForwardStatus.UNAVAILABLE, message="not ordered in time")
    if future.cancelled():
        return ForwardOutcome(ForwardStatus.UNAVAILABLE, message="given up")
    error = future.exception()
    if error is None:
        return ForwardOutcome(ForwardStatus.ORDERED, block_number=future.result())
    if isinstance(error, EnvelopeTooLarge):
        return ForwardOutcome(ForwardStatus.REJECTED, message=str(error))
    return ForwardOutcome(ForwardStatus.UNAVAILABLE, message=str(error) or "term ended")


async def _wait_all(
    futures: set[asyncio.Future[int]], *, until: asyncio.Event, timeout_s: float
) -> None:
    """Wait until every future is done, `until` is set, or the timeout passes."""
    if not futures:
        return
    ended: asyncio.Future[Any] = asyncio.ensure_future(until.wait())
    try:
        deadline = time.monotonic() + timeout_s
        pending: set[asyncio.Future[Any]] = set(futures)
        while pending and not until.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            done, _ = await asyncio.wait(
                pending | {ended},
                timeout=remaining,
                return_when=asyncio.FIRST_COMPLETED,
            )
            pending -= done
    finally:
        ended.cancel()


def _open_channel(address: str, tls: ForwardTls | None) -> grpc.aio.Channel:
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
    )


def _outcome(result: forward_pb2.ForwardResult) -> ForwardOutcome:
    try:
        status = ForwardStatus(result.status)
    except ValueError:
        return ForwardOutcome(
            ForwardStatus.UNAVAILABLE, message=f"unknown status {result.status}"
        )
    return ForwardOutcome(status, result.block_number, result.message)
