"""The cutter's side of the etcd backend: one term of cutting and writing blocks.

While this orderer holds the channel's election, `CutterTerm.run` takes envelopes from
the unrouted queue (its own clients' and those forwarded by followers), feeds them to
the block cutter, and writes each batch as the next block after its store's tip, which
it first brought up to the height in etcd. Once etcd has block n, the term builds
block n + 1 on it while n is stored here in the background (in order; envelopes are
acknowledged only once stored). A config envelope goes alone into a block built once
the store has caught up (signing records the last config block), after the support
re-checked it against the config of that moment (`process_config`, which may make it
again or refuse it); any other envelope checked against an older config than the one
in force when it is fed is checked again (`Revalidator.process_normal`) and fails with
its refusal if it no longer passes. Envelopes already in a recent block are dropped.
A write that etcd refuses because the chain moved makes it catch up and try again; one
refused because its election key is gone ends the term. Transport failures are retried
with backoff while the term lasts: a retried write is the same bytes in the same
compare-and-swap, so it lands at most once. When the term ends, envelopes it took but
did not write go back to the queue (ours) or fail back to their follower.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, cast, runtime_checkable

from common.channelconfig import ChannelConfig
from common.protoutil import block_header_hash, new_block
from orderer.blockcutter import BlockCutter
from orderer.consensus.base import Revalidator
from orderer.consensus.etcd_election import Term
from orderer.consensus.etcd_log import BlockLog, WriteOutcome
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
)
from orderer.consensus.etcd_types import (
    EnvelopeTooLarge,
    EtcdRevisionCompacted,
    EtcdUnavailable,
)
from orderer.errors import BroadcastRejected
from protos.common import common_pb2

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

VALUE_BYTES_MAX = 1536 * 1024 - 16 * 1024
"""Largest block value written: etcd's default request limit (1.5 MiB) minus room for
the key, the height update and the transaction's framing."""
BLOCK_OVERHEAD_BYTES = 32 * 1024
"""Room kept for the header, the signature metadata and per-envelope framing."""
TAKE_COUNT_MAX = 1000
_WRITE_ROUNDS_MAX = 8
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 0.5


class TermEnded(Exception):
    """Internal: the term is over (lease lost, key gone, or etcd unreachable too long)."""


class CutterSupport(Protocol):
    """The parts of ChainSupport the cutter uses."""

    def height(self) -> int: ...

    def last_block_header_hash(self) -> bytes: ...

    def channel_config(self) -> ChannelConfig: ...

    def new_block_cutter(self) -> BlockCutter: ...

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block: ...

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block: ...

    def is_config(self, envelope: bytes) -> bool: ...


@runtime_checkable
class ConfigProcessor(Protocol):
    """A support that re-checks a config envelope at cut time (the registrar's)."""

    def process_config(self, envelope: bytes) -> bytes:
        """The envelope to cut now; raises BroadcastRejected if it no longer applies."""
        ...


class CutterHost(Protocol):
    """What the chain gives a term: its store's catch-up and block application."""

    async def catch_up(self) -> int: ...

    def store_later(
        self,
        number: int,
        block: common_pb2.Block,
        digests: list[bytes],
        tx_ids: list[str] | None = None,
        value: bytes | None = None,
    ) -> asyncio.Task[None]: ...


class CutterTerm:
    """Cuts and writes blocks for the duration of one election term."""

    def __init__(
        self,
        *,
        term: Term,
        host: CutterHost,
        support: CutterSupport,
        log: BlockLog,
        table: EnvelopeTable,
    ) -> None:
        self.term = term
        self.host = host
        self.support = support
        self.log = log
        self.table = table
        self._cutter = support.new_block_cutter()
        self._fed: deque[PendingEnvelope] = deque()
        """Entries in the block cutter, in the order fed (and so the order cut)."""
        self._in_cutter: dict[bytes, PendingEnvelope] = {}
        """Entries fed and not yet written, by digest."""
        self._cut_at: float | None = None
        self._next = (0, b"")
        """Number and previous hash of the next block (ahead of the store while
        written blocks wait to be stored)."""
        self._storing: dict[asyncio.Task[None], set[bytes]] = {}
        """Written blocks on their way into the store, with their envelopes' digests."""
        self._revalidator = support if isinstance(support, Revalidator) else None
        term.on_end(table.wake)

    async def run(self) -> None:
        """Cut blocks until the term ends; then hand back what was not written."""
        try:
            await self._resync()
            self._cutter = self.support.new_block_cutter()
            while self.term.is_valid():
                self._check_storing()
                await self._step()
        except (TermEnded, EtcdUnavailable, EtcdRevisionCompacted) as error:
            _LOG.info("cutter term ending channel=%s: %r", self._channel, error)
        finally:
            try:
                await self._drain()
            finally:
                self._hand_back()
        _LOG.info("cutter term ended channel=%s %r", self._channel, self.term)

    @property
    def _channel(self) -> str:
        return self.log.keys.channel_id

    async def _step(self) -> None:
        now = time.monotonic()
        if self._cut_at is not None and now >= self._cut_at:
            self._cut_at = None
            await self._write_batch(self._cut(self._cutter.cut()))
            return
        # Without a batch pending, only new work or the end of the term (which wakes
        # the table) can change anything.
        wait_s = None if self._cut_at is None else self._cut_at - now
        if await self.table.wait_for_work(wait_s):
            taken = self.table.take(count_max=TAKE_COUNT_MAX, bytes_max=1 << 62)
            for index, entry in enumerate(taken):
                try:
                    await self._feed(entry)
                except BaseException:
                    for unfed in taken[index + 1 :]:
                        self.table.requeue(unfed)  # taken from the queue, not yet cut
                    raise

    async def _feed(self, entry: PendingEnvelope) -> None:
        known = self.table.block_of(entry.digest)
        if known is not None:
            self.table.resolve(entry, known)
            return
        if entry.digest in self._in_cutter or self._being_stored(entry.digest):
            return  # already on its way into a block, which will resolve the entry
        is_config = entry.is_config
        if is_config is None:
            is_config = self.support.is_config(entry.envelope)
        if not is_config and not self._passes_current_config(entry):
            return
        self._in_cutter[entry.digest] = entry
        self._fed.append(entry)
        if is_config:
            batches, pending = self._cutter.isolate(entry.envelope), False
        else:
            batches, pending = self._cutter.ordered(entry.envelope)
        for batch in batches:
            entries = self._cut(batch)
            if is_config and entries == [entry]:
                await self._write_config(entry)
            else:
                await self._write_batch(entries)
        if is_config:
            self._cutter = (
                self.support.new_block_cutter()
            )  # the config may have changed
        if not pending:
            self._cut_at = None
        elif self._cut_at is None:
            timeout_s = self.support.channel_config().batch_timeout
            self._cut_at = time.monotonic() + timeout_s

    def _passes_current_config(self, entry: PendingEnvelope) -> bool:
        """Whether an envelope checked under an older config still passes; if not, it
        fails with the refusal (its Broadcast, or its follower, gets the status)."""
        revalidator = self._revalidator
        sequence = entry.config_sequence
        if (
            sequence is None
            or revalidator is None
            or sequence >= revalidator.config_sequence()
        ):
            return True
        try:
            revalidator.process_normal(entry.envelope)
        except BroadcastRejected as refused:
            _LOG.info(
                "envelope refused under the new config channel=%s: %s",
                self._channel,
                refused,
            )
            self.table.fail(entry, refused)
            return False
        return True

    def _cut(self, batch: Sequence[bytes]) -> list[PendingEnvelope]:
        """The entries of a batch the block cutter emitted (it keeps the feeding order)."""
        entries = [self._fed.popleft() for _ in batch]
        assert all(e.envelope is b for e, b in zip(entries, batch, strict=True))
        return entries

    async def _write_batch(self, entries: list[PendingEnvelope]) -> None:
        """Write a batch of envelopes as one block, or more when etcd needs it."""
        budget = VALUE_BYTES_MAX - BLOCK_OVERHEAD_BYTES
        for part in split_for_value_limit(
            self._unseen(entries), budget=budget, size=_size
        ):
            await self._write_part(part)
        for entry in entries:
            self._in_cutter.pop(entry.digest, None)

    async def _write_config(self, entry: PendingEnvelope) -> None:
        """Write a config envelope alone, built on a store that holds every earlier
        block (signing records the last config block, which the store tracks, and the
        support re-checks the update against the config of that moment), then store
        it before anything else is built on it."""
        for _ in range(_WRITE_ROUNDS_MAX):
            await self._drain()
            if not self._unseen([entry]):
                return
            try:
                envelope = self._process_config(entry.envelope)
            except BroadcastRejected as refused:
                self._in_cutter.pop(entry.digest, None)
                self.table.fail(entry, refused)
                return
            number, previous_hash = self._next
            block = self.support.sign_block(
                self._build(number, previous_hash, [envelope])
            )
            value = block.SerializeToString()
            if len(value) > VALUE_BYTES_MAX:
                await self._write_oversized([entry], len(value))
                return
            outcome = await self._put(number, value)
            if outcome is WriteOutcome.WRITTEN:
                self._written(number, block, [entry], value)
                await self._drain()
                self._in_cutter.pop(entry.digest, None)
                return
            if outcome is WriteOutcome.NOT_CUTTER:
                raise TermEnded
            await self._resync()
        raise TermEnded

    def _process_config(self, envelope: bytes) -> bytes:
        if isinstance(self.support, ConfigProcessor):
            return self.support.process_config(envelope)
        return envelope

    async def _write_part(self, part: list[PendingEnvelope]) -> None:
        for _ in range(_WRITE_ROUNDS_MAX):
            if not part:
                return
            number, previous_hash = self._next
            envelopes = [entry.envelope for entry in part]
            block = self.support.sign_block(
                self._build(number, previous_hash, envelopes)
            )
            value = block.SerializeToString()
            if len(value) > VALUE_BYTES_MAX:
                await self._write_oversized(part, len(value))
                return
            outcome = await self._put(number, value)
            if outcome is WriteOutcome.WRITTEN:
                self._written(number, block, part, value)
                return
            if outcome is WriteOutcome.NOT_CUTTER:
                raise TermEnded
            await self._resync()
            part = self._unseen(part)
        raise TermEnded

    def _build(
        self, number: int, previous_hash: bytes, envelopes: list[bytes]
    ) -> common_pb2.Block:
        """The unsigned block; the support builds it when the store is not behind."""
        if self.support.height() == number:
            return self.support.create_next_block(envelopes)
        return new_block(number, previous_hash=previous_hash, envelopes=envelopes)

    def _written(
        self,
        number: int,
        block: common_pb2.Block,
        part: list[PendingEnvelope],
        value: bytes,
    ) -> None:
        """Block `number` is in etcd: build on it at once, store it in the background."""
        self._next = (number + 1, block_header_hash(block.header))
        digests = [entry.digest for entry in part]
        tx_ids = [entry.tx_id for entry in part]
        known = None if None in tx_ids else cast(list[str], tx_ids)
        storing = self.host.store_later(number, block, digests, known, value)
        storing.add_done_callback(self._wake_on_failure)
        self._storing[storing] = set(digests)

    def _wake_on_failure(self, storing: asyncio.Task[None]) -> None:
        """A failed append must stop the term now, not at the next envelope."""
        if not storing.cancelled() and storing.exception() is not None:
            self.table.wake()

    async def _resync(self) -> None:
        """Store what was written, catch up with etcd, build on the store's tip."""
        await self._drain()
        await self.host.catch_up()
        self._next = (self.support.height(), self.support.last_block_header_hash())

    async def _drain(self) -> None:
        """Wait until every written block is stored (raising if storing failed)."""
        while self._storing:
            await asyncio.wait(list(self._storing))
            self._check_storing()

    def _check_storing(self) -> None:
        for task in [task for task in self._storing if task.done()]:
            del self._storing[task]
            task.result()  # a failed append (a fork!) must stop the chain

    def _being_stored(self, digest: bytes) -> bool:
        return any(digest in digests for digests in self._storing.values())

    async def _write_oversized(self, part: list[PendingEnvelope], size: int) -> None:
        if len(part) > 1:
            middle = len(part) // 2
            await self._write_part(part[:middle])
            await self._write_part(part[middle:])
            return
        entry = self._in_cutter.pop(part[0].digest, None)
        if entry is not None:
            message = f"a block holding this envelope is {size} bytes, at most {VALUE_BYTES_MAX}"
            self.table.fail(entry, EnvelopeTooLarge(message))

    async def _put(self, number: int, value: bytes) -> WriteOutcome:
        """Write block `number`, retrying transport failures while the term is valid."""
        backoff_s = _BACKOFF_FIRST_S
        while self.term.is_valid():
            try:
                result = await self.log.write_block(
                    number, value, cutter_revision=self.term.revision
                )
            except EtcdUnavailable as error:
                _LOG.warning("block %d write failed, retrying: %s", number, error)
                await asyncio.sleep(backoff_s)
                backoff_s = min(2 * backoff_s, _BACKOFF_MAX_S)
                continue
            return result.outcome
        raise TermEnded

    def _unseen(self, entries: list[PendingEnvelope]) -> list[PendingEnvelope]:
        """`entries` minus those already in a block (stored, or written and on its way
        into the store: that block resolves them)."""
        fresh: list[PendingEnvelope] = []
        for entry in entries:
            known = self.table.block_of(entry.digest)
            if known is None and not self._being_stored(entry.digest):
                fresh.append(entry)
                continue
            self._in_cutter.pop(entry.digest, None)
            if known is not None:
                self.table.resolve(entry, known)
        return fresh

    def _hand_back(self) -> None:
        for entry in self._in_cutter.values():
            if entry.local:
                self.table.requeue(entry)
            else:
                self.table.fail(entry, TermEnded())
        self._in_cutter.clear()
        self._fed.clear()


def split_for_value_limit(
    items: Sequence[_T], *, budget: int, size: Callable[[_T], int]
) -> list[list[_T]]:
    """Consecutive runs of `items` whose sizes add up to at most `budget` each.

    An item larger than the budget gets a run of its own (and an envelope is rejected
    when its block turns out too large).
    """
    parts: list[list[_T]] = []
    current: list[_T] = []
    total = 0
    for item in items:
        item_size = size(item)
        if current and total + item_size > budget:
            parts.append(current)
            current, total = [], 0
        current.append(item)
        total += item_size
    if current:
        parts.append(current)
    return parts


def _size(entry: PendingEnvelope) -> int:
    return len(entry.envelope)
