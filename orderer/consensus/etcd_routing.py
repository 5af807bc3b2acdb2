"""Routing envelopes to the cutter: the follower's forwarding loop, the cutter's answers.

`Forwarder` is the follower's loop: it takes queued envelopes in batches, sends them
to the current cutter with a bounded number of calls in flight, and queues again those
that came back NOT_CUTTER or UNAVAILABLE (with backoff, up to `attempts_max` times) —
but first it brings its store up to etcd's height, so an envelope the failed cutter did
write is resolved here and not sent again. `answer_forwarded` is the cutter's side: it
admits forwarded envelopes to the table and answers once each is in a block stored
here, or UNAVAILABLE when its term ends or time runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from orderer.consensus.etcd_forward import ForwardClient, ForwardOutcome, ForwardStatus
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
    envelope_digest,
)
from orderer.consensus.etcd_types import EnvelopeTooLarge
from orderer.errors import BackendUnavailable, BroadcastRejected
from protos.common import common_pb2

FORWARD_BATCH_MAX = 500
FORWARD_BATCH_BYTES_MAX = 8 * 1024 * 1024
_RETRY_DELAY_S = 0.1
_RETRY_DELAY_MAX_S = 1.0
_ANSWER_MARGIN_S = 0.5
ABANDONED = ForwardOutcome(ForwardStatus.UNAVAILABLE, message="the cutter changed")


class Forwarder:
    """The follower's loop: queued envelopes go to the current cutter in batches."""

    def __init__(
        self,
        *,
        channel_id: str,
        table: EnvelopeTable,
        client: Callable[[], ForwardClient],
        caught_up: Callable[[], Awaitable[object]],
        timeout_s: float,
        attempts_max: int,
        in_flight_max: int,
    ) -> None:
        self.channel_id = channel_id
        self.table = table
        self.client = client
        self.caught_up = caught_up
        self.timeout_s = timeout_s
        self.attempts_max = attempts_max
        self.in_flight_max = in_flight_max
        self._calls: dict[asyncio.Future[list[ForwardOutcome]], str] = {}
        self._moved = asyncio.Event()
        self._address: Callable[[], str | None] = lambda: None

    def cutter_changed(self, address: str | None) -> None:
        """Abandon calls to any other address (a paused or dead cutter never answers,
        and Broadcast answers in order, so one stuck call would hold up its stream) and
        end the backoff of envelopes waiting to be sent again."""
        for call, target in list(self._calls.items()):
            if target != address:
                call.cancel()
        self._moved.set()
        self._moved = asyncio.Event()

    async def run(
        self,
        wait_for_cutter: Callable[[], Awaitable[object]],
        cutter_address: Callable[[], str | None],
    ) -> None:
        """Forward until cancelled. `wait_for_cutter` returns once this orderer follows
        a cutter; `cutter_address` is that cutter's address now (None: none known)."""
        self._address = cutter_address
        slots = asyncio.Semaphore(self.in_flight_max)
        async with asyncio.TaskGroup() as calls:
            while True:
                await wait_for_cutter()
                if not await self.table.wait_for_work(0.25):
                    continue
                await slots.acquire()
                entries = self.table.take(
                    count_max=FORWARD_BATCH_MAX, bytes_max=FORWARD_BATCH_BYTES_MAX
                )
                address = cutter_address()  # read now: the cutter may have changed
                if not entries or address is None:
                    for entry in entries:
                        self.table.requeue(entry)
                    slots.release()
                    continue
                calls.create_task(self._send(address, entries, slots))

    async def _send(
        self, address: str, entries: list[PendingEnvelope], slots: asyncio.Semaphore
    ) -> None:
        try:
            outcomes = await self._call(address, entries)
            retry = [
                entry
                for entry, outcome in zip(entries, outcomes, strict=True)
                if not entry.is_done and self._settle(entry, outcome)
            ]
            if retry:
                attempts = max(entry.attempts for entry in retry)
                await self._back_off(min(_RETRY_DELAY_MAX_S, _RETRY_DELAY_S * attempts))
                await self.caught_up()
                for entry in retry:
                    self.table.requeue(entry)  # unless a stored block resolved it
        finally:
            slots.release()

    async def _back_off(self, delay_s: float) -> None:
        """Wait `delay_s`, or less if the cutter changes meanwhile."""
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await moved.wait()

    async def _call(
        self, address: str, entries: list[PendingEnvelope]
    ) -> list[ForwardOutcome]:
        """One Forward call that `cutter_changed` can abandon (UNAVAILABLE for all)."""
        if address != self._address():
            return [ABANDONED] * len(entries)  # the cutter changed since the batch
        sequences = [entry.config_sequence for entry in entries]
        call = asyncio.ensure_future(
            self.client().forward(
                address,
                channel_id=self.channel_id,
                envelopes=[entry.envelope for entry in entries],
                config_sequences=[]
                if None in sequences
                else cast(list[int], sequences),
                timeout_s=self.timeout_s,
            )
        )
        self._calls[call] = address
        try:
            await asyncio.wait({call})
        finally:
            del self._calls[call]
            call.cancel()
        if call.cancelled():
            return [ABANDONED] * len(entries)
        return call.result()

    def _settle(self, entry: PendingEnvelope, outcome: ForwardOutcome) -> bool:
        """Record a forward outcome; True when the entry must be forwarded again."""
        if outcome.status is ForwardStatus.ORDERED:
            # Resolved when that block is stored here: by digest, or by number for a
            # config envelope the cutter had to make again.
            self.table.expect(entry, outcome.block_number)
            return False
        if outcome.status is ForwardStatus.REJECTED:
            self.table.fail(entry, _rejection(outcome))
            return False
        entry.attempts += 1
        if entry.attempts >= self.attempts_max:
            message = f"forwarding failed {entry.attempts} times: {outcome.message}"
            self.table.fail(entry, BackendUnavailable(message))
            return False
        return True


def _rejection(outcome: ForwardOutcome) -> BroadcastRejected:
    """The error a REJECTED outcome stands for (BAD_REQUEST when it names no status)."""
    status = outcome.reject_status or common_pb2.BAD_REQUEST
    if status == common_pb2.REQUEST_ENTITY_TOO_LARGE:
        return EnvelopeTooLarge(outcome.message)
    return BroadcastRejected(outcome.message, status=status)


async def answer_forwarded(
    table: EnvelopeTable,
    envelopes: Sequence[bytes],
    *,
    config_sequences: Sequence[int] = (),
    term_ended: asyncio.Event,
    timeout_s: float,
) -> list[ForwardOutcome]:
    """The cutter's answer: wait until each envelope is stored, or the term ends.

    `config_sequences` (one per envelope, or none: "current") are the configs the
    follower checked them against; the cutter checks older ones again.
    """
    sequences: Sequence[int | None] = config_sequences or [None] * len(envelopes)
    entries = [
        _admit_forwarded(table, envelope, sequence)
        for envelope, sequence in zip(envelopes, sequences, strict=True)
    ]
    waiting = {entry.future for entry in entries if isinstance(entry, PendingEnvelope)}
    await _wait_all(waiting, until=term_ended, timeout_s=timeout_s - _ANSWER_MARGIN_S)
    return [_answer(table, entry) for entry in entries]


def _admit_forwarded(
    table: EnvelopeTable, envelope: bytes, config_sequence: int | None
) -> PendingEnvelope | ForwardOutcome:
    digest = envelope_digest(envelope)
    known = table.block_of(digest)
    if known is not None:
        return ForwardOutcome(ForwardStatus.ORDERED, block_number=known)
    try:
        return table.admit(
            envelope, local=False, digest=digest, config_sequence=config_sequence
        )
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
    if isinstance(error, BroadcastRejected):
        return ForwardOutcome(
            ForwardStatus.REJECTED, message=str(error), reject_status=error.status
        )
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
