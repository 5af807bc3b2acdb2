"""History database: GetHistoryForKey newest first, delete markers, atomic with state."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.ledger import history
from peer.ledger.history import (
    HistoryBatch,
    KeyModification,
    KeyWrite,
    Timestamp,
    get_history_for_key,
    write_history,
)
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.statedb import (
    UpdateBatch,
    Version,
    apply_updates,
    get_state,
    savepoint,
)


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    yield conn
    conn.close()


def record(
    conn: sqlite3.Connection, block_num: int, tx_num: int, *writes: KeyWrite
) -> None:
    history.apply(
        conn,
        block_num=block_num,
        tx_num=tx_num,
        tx_id=f"tx{block_num}.{tx_num}",
        timestamp=Timestamp(1_700_000_000 + block_num, tx_num),
        writes=writes,
    )


def test_history_is_newest_first_with_delete_markers(db: sqlite3.Connection) -> None:
    record(db, 1, 0, KeyWrite("cc", "a", b"v1"))
    record(db, 1, 3, KeyWrite("cc", "a", b"v2"), KeyWrite("cc", "b", b"other"))
    record(db, 2, 0, KeyWrite("cc", "a", None))
    record(db, 4, 1, KeyWrite("cc", "a", b"v3"))

    got = list(get_history_for_key(db, "cc", "a"))

    assert [(m.tx_id, m.value, m.is_delete) for m in got] == [
        ("tx4.1", b"v3", False),
        ("tx2.0", b"", True),
        ("tx1.3", b"v2", False),
        ("tx1.0", b"v1", False),
    ]
    assert got[0] == KeyModification(
        tx_id="tx4.1",
        value=b"v3",
        timestamp=Timestamp(1_700_000_004, 1),
        is_delete=False,
        block_num=4,
        tx_num=1,
    )


def test_history_is_per_namespace_and_key(db: sqlite3.Connection) -> None:
    record(db, 1, 0, KeyWrite("cc", "a", b"x"), KeyWrite("other", "a", b"y"))

    assert [m.value for m in get_history_for_key(db, "other", "a")] == [b"y"]
    assert list(get_history_for_key(db, "cc", "missing")) == []


def test_history_streams_from_a_cursor(db: sqlite3.Connection) -> None:
    batch = HistoryBatch()
    for block_num in range(1, 201):
        batch.add(
            block_num=block_num,
            tx_num=0,
            tx_id=f"t{block_num}",
            timestamp=Timestamp(block_num),
            writes=[KeyWrite("cc", "hot", str(block_num).encode())],
        )
    write_history(db, batch)

    stream = get_history_for_key(db, "cc", "hot")

    assert next(stream).tx_id == "t200"
    assert next(stream).tx_id == "t199"
    stream.close()


def test_history_rolls_back_with_the_block(db: sqlite3.Connection) -> None:
    updates = UpdateBatch()
    updates.put("cc", "a", b"v", Version(1, 0))

    def commit_block_that_fails() -> None:
        with transaction(db):
            apply_updates(db, updates, savepoint=1)
            record(db, 1, 0, KeyWrite("cc", "a", b"v"))
            raise OSError("block file write failed")

    with pytest.raises(OSError, match="block file"):
        commit_block_that_fails()

    assert list(get_history_for_key(db, "cc", "a")) == []
    assert get_state(db, "cc", "a") is None
    assert savepoint(db) is None


ENTRIES = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 5), st.booleans()),
    unique_by=lambda e: e[:2],
)


@settings(max_examples=40, deadline=None)
@given(entries=ENTRIES)
def test_any_insertion_order_reads_back_newest_first(
    entries: list[tuple[int, int, bool]],
) -> None:
    conn = open_channel_db(":memory:")
    try:
        for block_num, tx_num, is_delete in entries:
            value = None if is_delete else f"{block_num}/{tx_num}".encode()
            record(conn, block_num, tx_num, KeyWrite("cc", "k", value))

        got = [
            (m.block_num, m.tx_num, m.is_delete)
            for m in get_history_for_key(conn, "cc", "k")
        ]
    finally:
        conn.close()

    assert got == sorted(entries, reverse=True)
