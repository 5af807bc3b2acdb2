"""The simulator over a real channel database: snapshots, ranges, queries, private data."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.errors import LedgerError
from peer.ledger import pvtdata
from peer.ledger.hashed import HashedUpdateBatch, apply_hashed_updates
from peer.ledger.history import HistoryBatch, KeyWrite, Timestamp, write_history
from peer.ledger.pvtstate import PrivateUpdateBatch, apply_private_updates
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.statedb import UpdateBatch, Version, apply_updates
from peer.simulator import Snapshots, open_simulator
from tests.unit.peer.simfakes import decode_hashed, decode_public


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    conn = open_channel_db(path)
    pvtdata.ensure(conn)
    batch = UpdateBatch()
    for i in range(5):
        batch.put("cc", f"k{i}", json.dumps({"n": i}).encode(), Version(1, i))
    apply_updates(conn, batch, savepoint=1)
    conn.close()
    return path


@pytest.fixture
def writer(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(db_path)
    yield conn
    conn.close()


@pytest.fixture
def snapshots(db_path: Path) -> Iterator[Snapshots]:
    pool = Snapshots(db_path)
    yield pool
    pool.close()


def test_a_simulation_sees_one_snapshot(
    snapshots: Snapshots, writer: sqlite3.Connection
) -> None:
    sim = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    assert sim.get_state("cc", "k0") == b'{"n": 0}'
    later = UpdateBatch()
    later.put("cc", "k0", b"changed", Version(2, 0))
    later.put("cc", "k9", b"new", Version(2, 1))
    apply_updates(writer, later, savepoint=2)
    assert sim.get_state("cc", "k0") == b'{"n": 0}'
    assert sim.get_state("cc", "k9") is None
    sim.done()
    fresh = open_simulator(snapshots, channel_id="ch", tx_id="t2")
    assert fresh.get_state("cc", "k0") == b"changed"
    fresh.done()


def test_simulations_share_a_snapshot_until_a_commit(
    snapshots: Snapshots, writer: sqlite3.Connection
) -> None:
    """Open, open, commit, open: the first two see the old state, the third the new;
    every one keeps its own view until done."""
    first = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    second = open_simulator(snapshots, channel_id="ch", tx_id="t2")
    later = UpdateBatch()
    later.put("cc", "k0", b"changed", Version(2, 0))
    apply_updates(writer, later, savepoint=2)
    third = open_simulator(snapshots, channel_id="ch", tx_id="t3")
    first.done()

    assert second.get_state("cc", "k0") == b'{"n": 0}'
    assert third.get_state("cc", "k0") == b"changed"
    second.done()
    third.done()
    assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_done_returns_the_connection_even_with_an_open_range(
    snapshots: Snapshots, writer: sqlite3.Connection
) -> None:
    sim = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    iterator = sim.get_state_range("cc", "", "")
    assert iterator.next() is not None
    sim.done()
    later = UpdateBatch()
    later.put("cc", "k0", b"changed", Version(2, 0))
    apply_updates(writer, later, savepoint=2)
    reused = open_simulator(snapshots, channel_id="ch", tx_id="t2")
    assert reused.get_state("cc", "k0") == b"changed"
    reused.done()


def test_range_and_rich_query_over_sqlite(snapshots: Snapshots) -> None:
    sim = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    keys = []
    iterator = sim.get_state_range("cc", "k1", "k4")
    while (item := iterator.next()) is not None:
        keys.append(item.key)
    assert keys == ["k1", "k2", "k3"]
    query = sim.execute_query("cc", json.dumps({"selector": {"n": {"$gte": 3}}}))
    assert [query.next().key, query.next().key, query.next()] == ["k3", "k4", None]  # type: ignore[union-attr]
    rwset = decode_public(sim.results().public_rwset)["cc"]
    assert [r.key for r in rwset.reads] == ["k3", "k4"]
    (info,) = rwset.range_queries_info
    assert (info.end_key, info.itr_exhausted, len(info.raw_reads.kv_reads)) == (
        "k4",
        True,
        3,
    )
    sim.done()


def test_paginated_rich_query_bookmark_continues(snapshots: Snapshots) -> None:
    query = json.dumps({"selector": {"n": {"$gte": 0}}, "sort": [{"n": "desc"}]})
    sim = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    first = sim.execute_query_page("cc", query, page_size=3, bookmark="")
    keys = [first.next().key for _ in range(3)]  # type: ignore[union-attr]
    assert first.next() is None
    bookmark = first.bookmark_and_close()
    rest = sim.execute_query_page("cc", query, page_size=3, bookmark=bookmark)
    keys += [rest.next().key for _ in range(2)]  # type: ignore[union-attr]
    assert rest.bookmark_and_close() == ""
    assert keys == ["k4", "k3", "k2", "k1", "k0"]
    sim.done()


def test_history_and_private_data_over_sqlite(
    snapshots: Snapshots, writer: sqlite3.Connection
) -> None:
    history = HistoryBatch()
    history.add(
        block_num=1,
        tx_num=0,
        tx_id="tx-a",
        timestamp=Timestamp(1_700_000_000),
        writes=[KeyWrite("cc", "k0", b"v")],
    )
    hashed = HashedUpdateBatch()
    key_hash = hashlib.sha256(b"patient").digest()
    hashed.put(
        "cc",
        "coll",
        key_hash,
        value_hash=hashlib.sha256(b"flu").digest(),
        version=Version(3, 1),
        metadata={"VALIDATION_PARAMETER": b"p"},
    )
    private = PrivateUpdateBatch()
    private.put("cc", "coll", "patient", b"flu", Version(3, 1))
    with transaction(writer):
        write_history(writer, history)
        apply_hashed_updates(writer, hashed)
        apply_private_updates(writer, private)
    sim = open_simulator(snapshots, channel_id="ch", tx_id="t1")
    modification = sim.get_history_for_key("cc", "k0").next()
    assert modification is not None
    assert modification.tx_id == "tx-a"
    assert sim.get_private_data("cc", "coll", "patient") == b"flu"
    assert (
        sim.get_private_data_hash("cc", "coll", "patient")
        == hashlib.sha256(b"flu").digest()
    )
    assert sim.get_private_data_metadata("cc", "coll", "patient") == {
        "VALIDATION_PARAMETER": b"p"
    }
    hashed_set, _ = decode_hashed(sim.results().public_rwset)[("cc", "coll")]
    (read,) = hashed_set.hashed_reads
    assert (read.key_hash, read.version.block_num, read.version.tx_num) == (
        key_hash,
        3,
        1,
    )
    sim.done()


def test_closed_snapshots_refuse_new_simulations(snapshots: Snapshots) -> None:
    snapshots.close()
    with pytest.raises(LedgerError, match="closed"):
        snapshots.open()
