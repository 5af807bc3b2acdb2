"""The cutter's side of the etcd backend: one term of cutting and writing blocks.

While this orderer holds the channel's election, `CutterTerm.run` takes envelopes from
the unrouted queue (its own clients' and those forwarded by followers), feeds them to
the block cutter, and writes each batch as block n = the height of its own store, which
it first brought up to the height in etcd. Envelopes already in a recent block are
dropped. A write that etcd refuses because the chain moved makes it catch up and try
again; one refused because its election key is gone ends the term. Transport failures
are retried with backoff while the lease is valid: a retried write is the same bytes in
the same compare-and-swap, so it lands at most once. When the term ends, envelopes it
took but did not write go back to the queue (ours) or fail back to their follower.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from common.channelconfig import ChannelConfig
from orderer.blockcutter import BlockCutter
from orderer.consensus.etcd_election import Term
from orderer.consensus.etcd_log import BlockLog, WriteOutcome
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
    envelope_digest,
)
from orderer.consensus.etcd_types import (
    EnvelopeTooLarge,
    EtcdRevisionCompacted,
    EtcdUnavailable,
)
from protos.common import common_pb2

_LOG = logging.getLogger(__name__)

VALUE_BYTES_MAX = 1536 * 1024 - 16 * 1024
"""Largest block value written: etcd's default request limit (1.5 MiB) minus room for
the key, the height update and the transaction's framing."""
BLOCK_OVERHEAD_BYTES = 32 * 1024
"""Room kept for the header, the signature metadata and per-envelope framing."""
TAKE_COUNT_MAX = 1000
_POLL_S = 0.25
_WRITE_ROUNDS_MAX = 8
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 0.5


class TermEnded(Exception):
    """Internal: the term is over (lease lost, key gone, or etcd unreachable too long)."""


class CutterSupport(Protocol):
    """The parts of ChainSupport the cutter uses."""

    def height(self) -> int: ...

    def channel_config(self) -> ChannelConfig: ...

    def new_block_cutter(self) -> BlockCutter: ...

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block: ...

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block: ...

    def is_config(self, envelope: bytes) -> bool: ...


class CutterHost(Protocol):
    """What the chain gives a term: its store's catch-up and block application."""

    async def catch_up(self) -> int: ...

    async def apply(
        self, number: int, value: bytes, block: common_pb2.Block | None = None
    ) -> None: ...


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
        self._in_cutter: dict[bytes, PendingEnvelope] = {}
        self._cut_at: float | None = None

    async def run(self) -> None:
        """Cut blocks until the term ends; then hand back what was not written."""
        try:
            await self.host.catch_up()
            self._cutter = self.support.new_block_cutter()
            while self.term.is_valid():
                await self._step()
        except (TermEnded, EtcdUnavailable, EtcdRevisionCompacted) as error:
            _LOG.info(
                "cutter term ending channel=%s: %r", self.log.keys.channel_id, error
            )
        finally:
            self._hand_back()
        _LOG.info(
            "cutter term ended channel=%s %r", self.log.keys.channel_id, self.term
        )

    async def _step(self) -> None:
        now = time.monotonic()
        if self._cut_at is not None and now >= self._cut_at:
            self._cut_at = None
            batch = self._cutter.cut()
            if batch:
                await self._write_batch(batch)
            return
        wait_s = _POLL_S if self._cut_at is None else min(_POLL_S, self._cut_at - now)
        if await self._wait_for_work(wait_s):
            taken = self.table.take(count_max=TAKE_COUNT_MAX, bytes_max=1 << 62)
            for index, entry in enumerate(taken):
                try:
                    await self._feed(entry)
                except BaseException:
                    for unfed in taken[index + 1 :]:
                        self.table.requeue(unfed)  # taken from the queue, not yet cut
                    raise

    async def _wait_for_work(self, timeout_s: float) -> bool:
        """Wait for queued envelopes, at most `timeout_s`, or until the term ends."""
        if self.table.has_work:
            return True
        work = asyncio.ensure_future(self.table.wait_for_work(timeout_s))
        ended = asyncio.ensure_future(self.term.ended.wait())
        try:
            await asyncio.wait({work, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            ended.cancel()
        return self.table.has_work

    async def _feed(self, entry: PendingEnvelope) -> None:
        known = self.table.block_of(entry.digest)
        if known is not None:
            self.table.resolve(entry, known)
            return
        if entry.digest in self._in_cutter:
            return
        self._in_cutter[entry.digest] = entry
        is_config = self.support.is_config(entry.envelope)
        if is_config:
            batches, pending = self._cutter.isolate(entry.envelope), False
        else:
            batches, pending = self._cutter.ordered(entry.envelope)
        for batch in batches:
            await self._write_batch(batch)
        if is_config:
            self._cutter = (
                self.support.new_block_cutter()
            )  # the config may have changed
        if not pending:
            self._cut_at = None
        elif self._cut_at is None:
            timeout_s = self.support.channel_config().batch_timeout
            self._cut_at = time.monotonic() + timeout_s

    async def _write_batch(self, batch: Sequence[bytes]) -> None:
        fresh = self._unseen(batch)
        budget = VALUE_BYTES_MAX - BLOCK_OVERHEAD_BYTES
        for part in split_for_value_limit(fresh, budget=budget):
            await self._write_part(part)
        for envelope in batch:
            self._in_cutter.pop(envelope_digest(envelope), None)

    async def _write_part(self, part: list[bytes]) -> None:
        for _ in range(_WRITE_ROUNDS_MAX):
            if not part:
                return
            number = self.support.height()
            block = self.support.sign_block(self.support.create_next_block(part))
            value = block.SerializeToString()
            if len(value) > VALUE_BYTES_MAX:
                await self._write_oversized(part, len(value))
                return
            outcome = await self._put(number, value)
            if outcome is WriteOutcome.WRITTEN:
                await self.host.apply(number, value, block)
                return
            if outcome is WriteOutcome.NOT_CUTTER:
                raise TermEnded
            await self.host.catch_up()
            part = self._unseen(part)
        raise TermEnded

    async def _write_oversized(self, part: list[bytes], size: int) -> None:
        if len(part) > 1:
            middle = len(part) // 2
            await self._write_part(part[:middle])
            await self._write_part(part[middle:])
            return
        entry = self._in_cutter.pop(envelope_digest(part[0]), None)
        if entry is not None:
            self.table.fail(
                entry,
                EnvelopeTooLarge(
                    f"a block holding this envelope is {size} bytes, at most {VALUE_BYTES_MAX}"
                ),
            )

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

    def _unseen(self, envelopes: Sequence[bytes]) -> list[bytes]:
        """`envelopes` minus those already in a stored block (resolving their entries)."""
        fresh: list[bytes] = []
        for envelope in envelopes:
            digest = envelope_digest(envelope)
            known = self.table.block_of(digest)
            if known is None:
                fresh.append(envelope)
                continue
            entry = self._in_cutter.pop(digest, None)
            if entry is not None:
                self.table.resolve(entry, known)
        return fresh

    def _hand_back(self) -> None:
        for entry in self._in_cutter.values():
            if entry.local:
                self.table.requeue(entry)
            else:
                self.table.fail(entry, TermEnded())
        self._in_cutter.clear()


def split_for_value_limit(
    envelopes: Sequence[bytes], *, budget: int
) -> list[list[bytes]]:
    """Consecutive runs of `envelopes` whose sizes add up to at most `budget` each.

    An envelope larger than the budget gets a run of its own (and is rejected when its
    block turns out too large).
    """
    parts: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for envelope in envelopes:
        if current and size + len(envelope) > budget:
            parts.append(current)
            current, size = [], 0
        current.append(envelope)
        size += len(envelope)
    if current:
        parts.append(current)
    return parts
