"""The etcd backend's pure parts, without etcd: the envelope table, limits, keys, MACs,
and one cutter term driven against an in-memory block log.

The cutter tests replace etcd by `MemoryLog`, which applies the same compare-and-swap
rule as the real log, so a test can make the chain move under the cutter (a deposed
cutter's late block) or take the election away, and check what the term does.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from common.channelconfig import BatchSize, Consenter
from common.protoutil import block_header_hash, new_block, parse_block
from orderer.blockcutter import BlockCutter
from orderer.consensus.etcd_cutter import (
    VALUE_BYTES_MAX,
    CutterTerm,
    split_for_value_limit,
)
from orderer.consensus.etcd_election import CutterInfo, Term
from orderer.consensus.etcd_forward import forward_mac
from orderer.consensus.etcd_log import (
    ChannelKeys,
    WriteOutcome,
    WriteResult,
    heights_floor,
)
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    PendingEnvelope,
    envelope_digest,
)
from orderer.consensus.etcd_settings import is_consenter
from orderer.consensus.etcd_types import EnvelopeTooLarge, EtcdError, prefix_end
from orderer.errors import BackendUnavailable
from protos.common import common_pb2


def table(
    *,
    capacity: int = 100,
    window_s: float = 60.0,
    envelopes_max: int = 1000,
    clock: object = time.monotonic,
) -> EnvelopeTable:
    return EnvelopeTable(
        capacity=capacity,
        window_s=window_s,
        envelopes_max=envelopes_max,
        clock=clock,  # type: ignore[arg-type]
    )


# --- the envelope table -----------------------------------------------------------


async def test_the_same_envelope_is_one_entry_and_queued_once() -> None:
    pending = table()

    first = pending.admit(b"envelope", local=False)
    again = pending.admit(b"envelope", local=True)

    assert first is again
    assert first.local
    assert [e.envelope for e in pending.take(count_max=10, bytes_max=100)] == [
        b"envelope"
    ]
    assert pending.take(count_max=10, bytes_max=100) == []


async def test_admission_stops_at_capacity() -> None:
    pending = table(capacity=2)
    pending.admit(b"a", local=True)
    pending.admit(b"b", local=True)

    with pytest.raises(BackendUnavailable):
        pending.admit(b"c", local=True)


async def test_take_respects_count_and_bytes_but_always_takes_one() -> None:
    pending = table()
    for envelope in (b"x" * 50, b"y" * 50, b"z" * 50):
        pending.admit(envelope, local=True)

    first = pending.take(count_max=10, bytes_max=120)
    second = pending.take(count_max=1, bytes_max=10)

    assert [len(e.envelope) for e in first] == [50, 50]
    assert [e.envelope for e in second] == [b"z" * 50]


async def test_a_stored_block_resolves_its_envelopes_and_is_remembered() -> None:
    pending = table()
    entry = pending.admit(b"tx", local=True)

    pending.block_stored(7, [b"tx", b"other"])

    assert entry.future.result() == 7
    assert len(pending) == 0
    assert pending.block_of(envelope_digest(b"other")) == 7
    pending.requeue(entry)
    assert pending.take(count_max=10, bytes_max=100) == []


async def test_recent_blocks_are_forgotten_after_the_window() -> None:
    now = [0.0]
    pending = table(window_s=10, clock=lambda: now[0])
    pending.block_stored(1, [b"old"])
    now[0] = 11.0
    pending.block_stored(2, [b"new"])

    assert pending.block_of(envelope_digest(b"old")) is None
    assert pending.block_of(envelope_digest(b"new")) == 2


async def test_recent_blocks_are_capped_but_the_last_block_is_kept() -> None:
    pending = table(envelopes_max=2)
    pending.block_stored(1, [b"a", b"b"])
    pending.block_stored(2, [b"c", b"d", b"e"])

    assert pending.block_of(envelope_digest(b"a")) is None
    assert pending.block_of(envelope_digest(b"e")) == 2


async def test_failing_an_entry_reaches_its_waiter_and_discard_spares_local_ones() -> (
    None
):
    pending = table()
    local = pending.admit(b"local", local=True)
    remote = pending.admit(b"remote", local=False)

    pending.fail(local, BackendUnavailable("gone"))
    pending.discard(remote)
    pending.discard(pending.admit(b"mine", local=True))

    with pytest.raises(BackendUnavailable):
        await local.future
    assert remote.future.cancelled()
    assert len(pending) == 1


# --- limits, keys, records --------------------------------------------------------


def test_envelopes_are_split_into_runs_under_the_budget() -> None:
    runs = split_for_value_limit(
        [b"a" * 4, b"b" * 4, b"c" * 9, b"d" * 1], budget=8, size=len
    )

    assert [[len(e) for e in run] for run in runs] == [[4, 4], [9], [1]]
    assert split_for_value_limit([], budget=8, size=len) == []


def test_the_prune_floor_is_the_lowest_height_minus_the_retention() -> None:
    assert heights_floor({"a": 100, "b": 40, "c": 90}, retention_blocks=10) == 30
    assert heights_floor({"a": 5}, retention_blocks=10) == 0
    assert heights_floor({}, retention_blocks=10) == 0


def test_block_keys_sort_in_number_order_and_parse_back() -> None:
    keys = ChannelKeys.under("/svc/", "records")
    numbers = [0, 9, 10, 99, 100, 2**63]

    encoded = [keys.block(n) for n in numbers]

    assert encoded == sorted(encoded)
    assert [keys.block_number(key) for key in encoded] == numbers
    assert keys.height == b"/svc/records/height"
    with pytest.raises(ValueError, match="not a block key"):
        ChannelKeys("other").block_number(encoded[0])
    with pytest.raises(ValueError, match="malformed"):
        keys.block_number(keys.blocks_prefix + b"12x")


def test_prefix_end_is_the_first_key_after_the_prefix() -> None:
    assert prefix_end(b"/a/b/") == b"/a/b0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"


def test_cutter_records_round_trip_and_garbage_is_refused() -> None:
    record = CutterInfo(orderer_name="orderer1", forward_address="10.0.0.2:7050")

    assert CutterInfo.decode(record.encode()) == record
    with pytest.raises(EtcdError):
        CutterInfo.decode(b"\xff\xff\xff")
    with pytest.raises(EtcdError, match="names no orderer"):
        CutterInfo.decode(b"")


def test_the_forward_mac_covers_channel_and_every_envelope_boundary() -> None:
    key = bytes(32)
    base = forward_mac(key, "ch", [b"ab", b"c"])

    assert forward_mac(key, "ch", [b"ab", b"c"]) == base
    assert forward_mac(key, "ch", [b"a", b"bc"]) != base
    assert forward_mac(key, "ch2", [b"ab", b"c"]) != base
    assert forward_mac(bytes([1]) * 32, "ch", [b"ab", b"c"]) != base


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
        self, number: int, block: common_pb2.Block, digests: list[bytes]
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


def pem(body: str) -> bytes:
    lines = "\n".join(body[i : i + 8] for i in range(0, len(body), 8))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n".encode()


def test_consenters_are_recognised_by_their_tls_certificate() -> None:
    consenters = [
        Consenter(
            host="o1",
            port=7050,
            client_tls_cert=pem("CLIENTAA"),
            server_tls_cert=pem("ONEONEONE"),
        ),
        Consenter(
            host="o2", port=7050, client_tls_cert=b"", server_tls_cert=pem("TWOTWO")
        ),
    ]
    chained = pem("TWOTWO") + pem("INTERMEDIATE")
    rewrapped = (
        b"-----BEGIN CERTIFICATE-----\r\nONEONE\r\nONE\r\n-----END CERTIFICATE-----"
    )

    assert is_consenter(consenters, chained)
    assert is_consenter(consenters, rewrapped)
    assert not is_consenter(consenters, pem("STRANGER"))
    assert is_consenter([], pem("STRANGER"))
    assert is_consenter(consenters, None)
