"""ChannelLedger: commit order, reads, replay after a failure, rejected blocks."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from common.errors import BlockRejected
from common.protoutil import block_header_hash
from network.bench_ledger import endorser_envelope, validated_block
from peer.errors import LedgerError
from peer.ledger.history import get_history_for_key
from peer.ledger.ledger import BLOCKS_DIR, ChannelLedger, CommitObserver, CommitStep
from peer.ledger.schema import (
    HISTORY_MIGRATIONS,
    STATE_MIGRATIONS,
    migrate,
    open_channel_db,
    schema_version,
)
from peer.ledger.statedb import Version
from protos.common import common_pb2

NS = "cc"
VALID, MVCC_READ_CONFLICT = 0, 11


class Chain:
    """Builds the next block of a chain from (envelope, code) pairs."""

    def __init__(self) -> None:
        self.number = 0
        self.previous_hash = b""
        self.tx_counter = 0

    def tx(self, *writes: tuple[str, bytes | None], **options: object) -> bytes:
        self.tx_counter += 1
        return endorser_envelope(
            tx_id=f"tx{self.tx_counter}",
            writes=writes,
            namespace=NS,
            timestamp_s=1_700_000_000 + self.tx_counter,
            **options,  # type: ignore[arg-type]
        )

    def block(self, *txs: tuple[bytes, int]) -> common_pb2.Block:
        block = validated_block(
            self.number,
            previous_hash=self.previous_hash,
            envelopes=[envelope for envelope, _ in txs],
            codes=[code for _, code in txs],
        )
        self.number += 1
        self.previous_hash = block_header_hash(block.header)
        return block


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ChannelLedger]:
    with ChannelLedger.open(tmp_path / "ledger", channel_id="ch") as opened:
        yield opened


class Failure(Exception):
    """Raised by an observer to stop a commit at a chosen step."""


def fail_at(step: CommitStep, block_num: int) -> CommitObserver:
    def observe(reported: CommitStep, number: int) -> None:
        if reported is step and number == block_num:
            raise Failure(f"{step.value} {number}")

    return observe


def test_committed_blocks_are_readable_and_invalid_transactions_are_not(
    ledger: ChannelLedger, chain: Chain
) -> None:
    """Two blocks; state, metadata, ranges, pages, history and chain info agree."""
    first = chain.block(
        (chain.tx(("a", b"1"), ("b", b"2")), VALID),
        (chain.tx(("c", b"lost")), MVCC_READ_CONFLICT),
    )
    second = chain.block(
        (chain.tx(("a", b"3"), metadata_writes=[("b", {"P": b"x"})]), VALID),
        (chain.tx(("b", None)), VALID),
    )
    ledger.commit_block(first)
    ledger.commit_block(second)

    assert ledger.height == 2
    assert ledger.savepoint() == 1
    value = ledger.get_state(NS, "a")
    assert value is not None
    assert (value.value, value.version) == (b"3", Version(1, 0))
    assert ledger.get_state(NS, "b") is None
    assert ledger.get_state(NS, "c") is None
    assert ledger.get_state_metadata(NS, "b") is None
    assert [kv.key for kv in ledger.get_state_range(NS, "", "")] == ["a"]
    assert ledger.get_state_range_page(NS, "", "", page_size=5).bookmark == ""
    history = list(ledger.get_history_for_key(NS, "b"))
    assert [(m.tx_id, m.is_delete, m.value) for m in history] == [
        ("tx4", True, b""),
        ("tx1", False, b"2"),
    ]
    info = ledger.blockchain_info()
    assert info.height == 2
    assert info.currentBlockHash == chain.previous_hash
    assert ledger.block_store.tx_validation_code("tx2") == MVCC_READ_CONFLICT


def test_the_block_is_durable_before_the_database_transaction_commits(
    tmp_path: Path, chain: Chain
) -> None:
    """At APPENDED the block is stored but readers still see n-1; then it commits."""
    seen: list[tuple[CommitStep, int | None]] = []
    heights: dict[CommitStep, int] = {}
    holder: list[ChannelLedger] = []

    def observe(step: CommitStep, number: int) -> None:
        opened = holder[0]
        seen.append((step, opened.savepoint()))
        heights[step] = opened.height

    with ChannelLedger.open(tmp_path, channel_id="ch", observer=observe) as ledger:
        holder.append(ledger)
        ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))

    assert seen == [
        (CommitStep.HISTORY_WRITTEN, None),
        (CommitStep.STATE_WRITTEN, None),
        (CommitStep.APPENDED, None),
        (CommitStep.COMMITTED, 0),
    ]
    assert heights[CommitStep.APPENDED] == heights[CommitStep.COMMITTED] == 1


def test_a_rejected_append_rolls_the_database_back(
    ledger: ChannelLedger, chain: Chain
) -> None:
    """The block store refuses the block while the transaction is open: nothing stays."""
    ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    forked = validated_block(
        1, previous_hash=b"\x00" * 32, envelopes=[chain.tx(("b", b"x"))], codes=[VALID]
    )

    with pytest.raises(BlockRejected):
        ledger.commit_block(forked)

    assert ledger.get_state(NS, "b") is None
    assert list(ledger.get_history_for_key(NS, "b")) == []
    assert (ledger.height, ledger.savepoint()) == (1, 0)
    ledger.commit_block(chain.block((chain.tx(("b", b"y")), VALID)))


@pytest.mark.parametrize(
    "step", [CommitStep.APPENDED, CommitStep.STATE_WRITTEN, CommitStep.HISTORY_WRITTEN]
)
def test_a_block_appended_but_not_applied_is_replayed_on_open(
    tmp_path: Path, chain: Chain, step: CommitStep
) -> None:
    """A failure after the append leaves the database behind; reopening catches up."""
    ledger = ChannelLedger.open(tmp_path, channel_id="ch", observer=fail_at(step, 1))
    ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    with pytest.raises(Failure):
        ledger.commit_block(chain.block((chain.tx(("a", b"2"), ("b", b"3")), VALID)))

    assert (ledger.height, ledger.savepoint()) == (2, 0)
    with pytest.raises(LedgerError, match="must be reopened"):
        ledger.commit_block(chain.block((chain.tx(("c", b"4")), VALID)))
    ledger.close()

    replayed: list[tuple[CommitStep, int]] = []
    with ChannelLedger.open(
        tmp_path, channel_id="ch", observer=lambda s, n: replayed.append((s, n))
    ) as reopened:
        assert (CommitStep.REPLAYED, 1) in replayed
        assert reopened.savepoint() == 1
        assert [kv.value for kv in reopened.get_state_range(NS, "", "")] == [b"2", b"3"]
        assert len(list(reopened.get_history_for_key(NS, "a"))) == 2


def test_reopening_a_consistent_ledger_replays_nothing(
    tmp_path: Path, chain: Chain
) -> None:
    with ChannelLedger.open(tmp_path, channel_id="ch") as ledger:
        ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    steps: list[CommitStep] = []

    with ChannelLedger.open(
        tmp_path, channel_id="ch", observer=lambda s, n: steps.append(s)
    ) as reopened:
        assert steps == []
        assert reopened.height == 1


def test_a_block_that_does_not_extend_the_chain_changes_nothing(
    ledger: ChannelLedger, chain: Chain
) -> None:
    """Wrong number, then wrong previous hash: rejected, and the ledger goes on."""
    ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    good = chain.block((chain.tx(("a", b"2")), VALID))
    skipped = validated_block(
        5, previous_hash=chain.previous_hash, envelopes=[chain.tx()], codes=[VALID]
    )
    forked = validated_block(
        1, previous_hash=b"\x00" * 32, envelopes=[chain.tx(("a", b"x"))], codes=[VALID]
    )

    for bad in (skipped, forked):
        with pytest.raises(BlockRejected):
            ledger.commit_block(bad)
    assert ledger.get_state(NS, "a") is not None
    assert ledger.get_state(NS, "a").value == b"1"  # type: ignore[union-attr]
    ledger.commit_block(good)
    assert ledger.savepoint() == 1


def test_an_unvalidated_block_is_refused_before_it_is_stored(
    ledger: ChannelLedger, chain: Chain
) -> None:
    block = chain.block((chain.tx(("a", b"1")), VALID))
    block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = b""

    with pytest.raises(LedgerError, match="no transaction filter"):
        ledger.commit_block(block)
    assert ledger.height == 0


def test_a_database_ahead_of_its_block_store_is_refused(
    tmp_path: Path, chain: Chain
) -> None:
    """Losing the block files must not go unnoticed."""
    with ChannelLedger.open(tmp_path, channel_id="ch") as ledger:
        ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    shutil.rmtree(tmp_path / BLOCKS_DIR)

    with pytest.raises(LedgerError, match="database holds block 0"):
        ChannelLedger.open(tmp_path, channel_id="ch")


def test_reads_from_other_threads_use_their_own_connections(
    ledger: ChannelLedger, chain: Chain
) -> None:
    """Readers on two threads see the committed state; a closed ledger refuses reads."""
    ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
    connections: set[int] = set()
    lock = threading.Lock()

    def read(_: int) -> bytes | None:
        with lock:
            connections.add(id(ledger.reader()))
        value = ledger.get_state(NS, "a")
        return None if value is None else value.value

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(read, range(8))) == [b"1"] * 8
    assert 1 <= len(connections) <= 2
    assert id(ledger.reader()) not in connections

    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.get_state(NS, "a")
    with pytest.raises(LedgerError, match="closed"):
        ledger.commit_block(chain.block())


def test_history_written_in_the_first_layout_survives_the_upgrade(
    tmp_path: Path,
) -> None:
    """Schema v1 clustered history by key; v2 by commit order. Rows move across."""
    path = tmp_path / "channel.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn, "state", STATE_MIGRATIONS)
        migrate(conn, "history", HISTORY_MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO history VALUES ('cc', 'a', 3, 1, 'tx', 5, 6, 0, x'01')"
        )

    with closing(open_channel_db(path)) as upgraded:
        assert schema_version(upgraded, "history") == len(HISTORY_MIGRATIONS)
        (entry,) = get_history_for_key(upgraded, "cc", "a")
        assert (entry.tx_id, entry.value, entry.block_num, entry.tx_num) == (
            "tx",
            b"\x01",
            3,
            1,
        )
