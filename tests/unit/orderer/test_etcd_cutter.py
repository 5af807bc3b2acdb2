"""One cutter term of the etcd backend, driven against an in-memory block log.

`MemoryLog` applies the real log's compare-and-swap rule, so a test can make the chain
move under the cutter (a deposed cutter's late block), take the election away, or hold
back the store, and check what the term writes, acknowledges and hands back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

from common.channelconfig import BatchSize
from common.protoutil import block_header_hash, new_block, parse_block
from orderer.blockcutter import BlockCutter
from orderer.consensus.etcd_cutter import (
    VALUE_BYTES_MAX,
    CutterTerm,
)
from orderer.consensus.etcd_election import Term
from orderer.consensus.etcd_log import (
    ChannelKeys,
    WriteOutcome,
    WriteResult,
)
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
)
from orderer.consensus.etcd_types import EnvelopeTooLarge
from orderer.errors import BroadcastRejected
from protos.common import common_pb2


def table() -> EnvelopeTable:
    return EnvelopeTable(capacity=100, window_s=60.0, envelopes_max=1000)


# --- one cutter term against an in-memory log -------------------------------------


@dataclass
class MemoryLog:
    """Blocks by number with the real log's compare-and-swap; scripted interference."""

    keys: ChannelKeys
    blocks: list[bytes] = field(default_factory=list)
    cutter_revision: int = 1
    before_write: list[bytes] = field(default_factory=list)
    """A block value slipped in before the next write (a deposed cutter's late write)."""
    grown: asyncio.Event = field(default_factory=asyncio.Event)

    async def write_block(
        self, number: int, value: bytes, *, cutter_revision: int
    ) -> WriteResult:
        if self.before_write:
            self.blocks.append(self.before_write.pop())
        height = len(self.blocks)
        if cutter_revision != self.cutter_revision:
            return WriteResult(
                outcome=WriteOutcome.NOT_CUTTER, revision=0, height=height
            )
        if number != height:
            return WriteResult(
                outcome=WriteOutcome.CHAIN_MOVED, revision=0, height=height
            )
        self.blocks.append(value)
        self.grown.set()
        return WriteResult(outcome=WriteOutcome.WRITTEN, revision=0, height=height + 1)


class Orderer:
    """Store, support and catch-up for one cutter (the CutterHost and CutterSupport)."""

    def __init__(
        self, log: MemoryLog, pending: EnvelopeTable, *, max_count: int
    ) -> None:
        self.log = log
        self.table = pending
        self.gate: asyncio.Event | None = None
        """When a test sets this, storing a block waits for it."""
        self.stored: list[common_pb2.Block] = []
        self.batch_size = BatchSize(
            max_message_count=max_count,
            absolute_max_bytes=10 * 1024 * 1024,
            preferred_max_bytes=4 * 1024 * 1024,
        )

    def height(self) -> int:
        return len(self.stored)

    def last_block_header_hash(self) -> bytes:
        return block_header_hash(self.stored[-1].header) if self.stored else b""

    def channel_config(self) -> object:
        return SimpleNamespace(batch_timeout=0.02)

    def new_block_cutter(self) -> BlockCutter:
        return BlockCutter(self.batch_size)

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block:
        return new_block(
            self.height(),
            previous_hash=self.last_block_header_hash(),
            envelopes=envelopes,
        )

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block:
        return block

    def is_config(self, envelope: bytes) -> bool:
        return False

    async def catch_up(self) -> int:
        for number in range(self.height(), len(self.log.blocks)):
            await self.apply(number, self.log.blocks[number])
        return 0

    def store_later(
        self,
        number: int,
        block: common_pb2.Block,
        digests: list[bytes],
        tx_ids: list[str] | None = None,
        value: bytes | None = None,
    ) -> asyncio.Task[None]:
        return asyncio.ensure_future(self.apply(number, b"", block))

    async def apply(
        self, number: int, value: bytes, block: common_pb2.Block | None = None
    ) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if number == self.height():
            stored = parse_block(value) if block is None else block
            self.stored.append(stored)
            self.table.block_stored(number, stored.data.data)


async def run_term(orderer: Orderer, awaited: Sequence[PendingEnvelope]) -> Term:
    """Run a term until the `awaited` entries are done (5 s at most), then end it."""
    term = Term(lease_id=1, revision=1)
    cutter = CutterTerm(
        term=term,
        host=orderer,
        support=orderer,  # type: ignore[arg-type]
        log=orderer.log,  # type: ignore[arg-type]
        table=orderer.table,
    )
    running = asyncio.create_task(cutter.run())
    if awaited:
        await asyncio.wait([entry.future for entry in awaited], timeout=5)
    else:
        await asyncio.wait([running], timeout=5)
    term.end()
    await running
    return term


def genesis() -> bytes:
    return new_block(0, previous_hash=b"", envelopes=[b"genesis"]).SerializeToString()


async def test_a_late_block_from_a_deposed_cutter_is_not_written_again() -> None:
    """Slot 1 fills under the cutter with one of its envelopes: it writes the rest at 2."""
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()])
    orderer = Orderer(log, pending, max_count=2)
    mine = pending.admit(b"E1", local=True)
    forwarded = pending.admit(b"E2", local=False)
    log.before_write.append(
        new_block(1, previous_hash=b"", envelopes=[b"E1"]).SerializeToString()
    )

    await run_term(orderer, [mine, forwarded])

    assert [list(b.data.data) for b in orderer.stored] == [
        [b"genesis"],
        [b"E1"],
        [b"E2"],
    ]
    assert (mine.future.result(), forwarded.future.result()) == (1, 2)


async def test_losing_the_election_hands_envelopes_back() -> None:
    """Refused as NOT_CUTTER: own envelopes are queued again, forwarded ones fail."""
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()], cutter_revision=2)
    orderer = Orderer(log, pending, max_count=2)
    mine = pending.admit(b"E1", local=True)
    forwarded = pending.admit(b"E2", local=False)

    await run_term(orderer, [forwarded])

    assert not mine.is_done
    assert [e.envelope for e in pending.take(count_max=10, bytes_max=100)] == [b"E1"]
    assert forwarded.future.exception() is not None
    assert len(log.blocks) == 1


async def test_a_partial_batch_is_cut_after_the_batch_timeout() -> None:
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()])
    orderer = Orderer(log, pending, max_count=10)
    entries = [pending.admit(f"E{i}".encode(), local=True) for i in range(3)]

    await run_term(orderer, entries)

    assert [e.future.result() for e in entries] == [1, 1, 1]


async def test_an_envelope_no_block_can_hold_is_rejected() -> None:
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()])
    orderer = Orderer(log, pending, max_count=10)
    small = pending.admit(b"small", local=True)
    huge = pending.admit(bytes(VALUE_BYTES_MAX), local=True)

    await run_term(orderer, [small, huge])

    assert small.future.result() == 1
    assert isinstance(huge.future.exception(), EnvelopeTooLarge)
    assert len(log.blocks) == 2


async def test_envelopes_taken_but_not_yet_cut_go_back_when_the_term_ends() -> None:
    """The term ends on its first write; the envelopes it had taken behind it are queued."""
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()], cutter_revision=2)
    orderer = Orderer(log, pending, max_count=1)
    entries = [pending.admit(f"E{i}".encode(), local=True) for i in range(3)]

    await run_term(orderer, [])

    assert not any(entry.is_done for entry in entries)
    queued = pending.take(count_max=10, bytes_max=100)
    assert sorted(e.envelope for e in queued) == [b"E0", b"E1", b"E2"]


async def test_blocks_are_built_on_written_ones_while_the_store_lags() -> None:
    """With storing held back the term keeps writing; acks wait for the store."""
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()])
    orderer = Orderer(log, pending, max_count=1)
    orderer.stored.append(parse_block(log.blocks[0]))
    gate = asyncio.Event()
    orderer.gate = gate
    entries = [pending.admit(f"E{i}".encode(), local=True) for i in range(4)]

    term = Term(lease_id=1, revision=1)
    cutter = CutterTerm(
        term=term,
        host=orderer,
        support=orderer,  # type: ignore[arg-type]
        log=log,  # type: ignore[arg-type]
        table=pending,
    )
    running = asyncio.create_task(cutter.run())
    async with asyncio.timeout(5):
        while len(log.blocks) < 5:
            log.grown.clear()
            await log.grown.wait()
    acked_before_storing = [entry.is_done for entry in entries]
    gate.set()
    await asyncio.wait([entry.future for entry in entries], timeout=5)
    term.end()
    await running

    assert acked_before_storing == [False] * 4
    assert [entry.future.result() for entry in entries] == [1, 2, 3, 4]
    chain = [parse_block(value) for value in log.blocks]
    for previous, block in itertools.pairwise(chain):
        assert block.header.previous_hash == block_header_hash(previous.header)


class RevalidatingOrderer(Orderer):
    """At config sequence 1, where envelopes starting with b"bad" no longer pass."""

    def config_sequence(self) -> int:
        return 1

    def process_normal(self, envelope: bytes) -> None:
        if envelope.startswith(b"bad"):
            raise BroadcastRejected("creator removed", status=common_pb2.FORBIDDEN)


async def test_envelopes_checked_under_an_older_config_are_checked_again() -> None:
    """Sequence 0 < 1: checked again (one refused); 1 or unknown: cut as they are."""
    pending = table()
    log = MemoryLog(ChannelKeys("ch"), blocks=[genesis()])
    orderer = RevalidatingOrderer(log, pending, max_count=3)
    stale_bad = pending.admit(b"bad-0", local=True, config_sequence=0)
    stale_good = pending.admit(b"good-0", local=True, config_sequence=0)
    current_bad = pending.admit(b"bad-1", local=True, config_sequence=1)
    unknown_bad = pending.admit(b"bad-?", local=False)

    await run_term(orderer, [stale_bad, stale_good, current_bad, unknown_bad])

    refused = stale_bad.future.exception()
    assert isinstance(refused, BroadcastRejected)
    assert refused.status == common_pb2.FORBIDDEN
    assert [list(b.data.data) for b in orderer.stored[1:]] == [
        [b"good-0", b"bad-1", b"bad-?"]
    ]
