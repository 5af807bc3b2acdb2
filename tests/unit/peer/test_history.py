"""History database: GetHistoryForKey newest first, delete markers, atomic with state."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network.bench_ledger import endorser_envelope, validated_block
from peer.errors import LedgerError
from peer.ledger import history
from peer.ledger.history import (
    HistoryBatch,
    KeyModification,
    KeyWrite,
    Timestamp,
    get_history_for_key,
    write_history,
    writing_block_history,
)
from peer.ledger.ledger import ChannelLedger
from peer.ledger.schema import (
    HISTORY_MIGRATIONS,
    STATE_MIGRATIONS,
    migrate,
    open_channel_db,
    schema_version,
    transaction,
)
from peer.ledger.statedb import (
    UpdateBatch,
    Version,
    apply_updates,
    get_state,
    savepoint,
    write_updates,
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
def test_rows_recorded_in_commit_order_read_back_newest_first(
    entries: list[tuple[int, int, bool]],
) -> None:
    conn = open_channel_db(":memory:")
    try:
        for block_num, tx_num, is_delete in sorted(entries):
            value = None if is_delete else f"{block_num}/{tx_num}".encode()
            record(conn, block_num, tx_num, KeyWrite("cc", "k", value))

        got = [
            (m.block_num, m.tx_num, m.is_delete)
            for m in get_history_for_key(conn, "cc", "k")
        ]
    finally:
        conn.close()

    assert got == sorted(entries, reverse=True)


# ---------------------------------------------------------------- layout (schema v3)


def _ledger_tx(
    number: int, *writes: tuple[str, bytes | None], **options: object
) -> bytes:
    return endorser_envelope(
        tx_id=f"tx{number}",
        writes=writes,
        namespace="cc",
        timestamp_s=1_700_000_000 + number,
        **options,  # type: ignore[arg-type]
    )


def _committed(ledger: ChannelLedger, *envelopes: bytes) -> None:
    previous = ledger.blockchain_info().currentBlockHash
    ledger.commit_block(
        validated_block(
            ledger.height,
            previous_hash=previous,
            envelopes=envelopes,
            codes=[0] * len(envelopes),
        )
    )


def test_committed_history_follows_puts_deletes_and_recreation(tmp_path: Path) -> None:
    """Through the committer: repeats in a block and a tx, metadata-only writes,
    a delete and a re-creation; every key's chain stays whole after reopening."""
    with ChannelLedger.open(tmp_path, channel_id="ch") as ledger:
        _committed(ledger, _ledger_tx(1, ("a", b"1"), ("b", b"x")))
        _committed(
            ledger,
            _ledger_tx(2, ("a", b"2"), ("a", b"2bis")),
            _ledger_tx(3, metadata_writes=[("a", {"P": b"p"})]),
            _ledger_tx(4, ("a", b"3")),
        )
        _committed(ledger, _ledger_tx(5, ("a", None)), _ledger_tx(6, ("b", b"y")))
        _committed(ledger, _ledger_tx(7, ("c", b"c")))
        _committed(ledger, _ledger_tx(8, ("a", b"4")), _ledger_tx(9, ("c", None)))

    with ChannelLedger.open(tmp_path, channel_id="ch") as reopened:
        history = {
            key: [(m.tx_id, m.value) for m in reopened.get_history_for_key("cc", key)]
            for key in "abc"
        }

    assert history == {
        "a": [
            ("tx8", b"4"),
            ("tx5", b""),
            ("tx4", b"3"),
            ("tx2", b"2bis"),
            ("tx1", b"1"),
        ],
        "b": [("tx6", b"y"), ("tx1", b"x")],
        "c": [("tx9", b""), ("tx7", b"c")],
    }


def test_a_block_dirties_no_key_index(db: sqlite3.Connection) -> None:
    """History rows are found through links and heads, not an index by key."""
    indexes = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history'"
    ).fetchall()

    assert indexes == []


def test_a_direct_delete_keeps_the_history_reachable(db: sqlite3.Connection) -> None:
    """State deleted without the committer (no history for the delete) keeps its head."""
    record(db, 1, 0, KeyWrite("cc", "a", b"v1"))
    puts = UpdateBatch()
    puts.put("cc", "a", b"v1", Version(1, 0))
    apply_updates(db, puts, savepoint=1)
    record(db, 2, 0, KeyWrite("cc", "a", b"v2"))
    deletes = UpdateBatch()
    deletes.delete("cc", "a", Version(3, 0))
    apply_updates(db, deletes, savepoint=3)

    assert [m.tx_id for m in get_history_for_key(db, "cc", "a")] == ["tx2.0", "tx1.0"]


def test_history_of_schema_v2_is_linked_on_upgrade(tmp_path: Path) -> None:
    """Rows written with the key index get their links and heads when upgraded."""
    path = tmp_path / "channel.sqlite"
    rows = [
        ("cc", "a", 1, 0, False),
        ("cc", "b", 1, 1, False),
        ("cc", "a", 2, 0, True),
        ("cc", "a", 3, 4, False),
        ("cc", "b", 3, 5, True),
    ]
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn, "state", STATE_MIGRATIONS)
        migrate(conn, "history", HISTORY_MIGRATIONS[:2])
        conn.executemany(
            "INSERT INTO history VALUES (?, ?, ?, ?, 'tx' || ?3 || '.' || ?4, 0, 0, ?5, x'')",
            rows,
        )
        conn.execute(
            "INSERT INTO state (ns, key, block_num, tx_num, val) "
            "VALUES ('cc', 'a', 3, 4, x'01')"
        )

    with closing(open_channel_db(path)) as upgraded:
        assert schema_version(upgraded, "history") == len(HISTORY_MIGRATIONS)
        found = {
            key: [m.tx_id for m in get_history_for_key(upgraded, "cc", key)]
            for key in "ab"
        }
        record(upgraded, 4, 0, KeyWrite("cc", "b", b"again"))
        again = [m.tx_id for m in get_history_for_key(upgraded, "cc", "b")]

    assert found == {"a": ["tx3.4", "tx2.0", "tx1.0"], "b": ["tx3.5", "tx1.1"]}
    assert again == ["tx4.0", "tx3.5", "tx1.1"]


# ---------------------------------------------------------------- the committer's path

_VALUES = (b"plain", b'{"json": 1}', b"\xff\xfe not utf-8", b' {"a": [1, 2]} ')
_TX_WRITES = st.lists(
    st.tuples(st.sampled_from("abcd"), st.sampled_from((None, *_VALUES))),
    max_size=3,
)
_BLOCKS = st.lists(st.lists(_TX_WRITES, min_size=1, max_size=4), min_size=1, max_size=6)


def _commit_block_history(
    conn: sqlite3.Connection, block_num: int, txs: list[list[KeyWrite]]
) -> None:
    """Write one block as the committer does: history around the state write."""
    state, batch = UpdateBatch(), HistoryBatch()
    for tx_num, writes in enumerate(txs):
        for ns, key, value in writes:
            if value is None:
                state.delete(ns, key, Version(block_num, tx_num))
            else:
                state.put(ns, key, value, Version(block_num, tx_num))
        batch.add(
            block_num=block_num,
            tx_num=tx_num,
            tx_id=f"tx{block_num}.{tx_num}",
            timestamp=Timestamp(1_700_000_000 + block_num, tx_num),
            writes=writes,
        )
    _write_block(conn, block_num, state, batch)


def _write_block(
    conn: sqlite3.Connection, block_num: int, state: UpdateBatch, batch: HistoryBatch
) -> None:
    with transaction(conn), writing_block_history(conn, batch, block_num=block_num):
        write_updates(conn, state, history_heads=batch.put_heads())


@settings(max_examples=60, deadline=None)
@given(blocks=_BLOCKS)
def test_the_committers_history_holds_every_write_newest_first(
    blocks: list[list[list[tuple[str, bytes | None]]]],
) -> None:
    """Puts, deletes, re-creations and keys written twice in a block or a tx;
    JSON values (stored as TEXT in the state) come back as the exact bytes."""
    expected: dict[str, list[tuple[str, bytes, bool]]] = {key: [] for key in "abcd"}
    conn = open_channel_db(":memory:")
    try:
        for block_num, block in enumerate(blocks, start=1):
            txs: list[list[KeyWrite]] = []
            for tx_num, writes in enumerate(block):
                last = dict(writes)  # a tx's last write of a key wins
                txs.append([KeyWrite("cc", key, value) for key, value in writes])
                for key, value in last.items():
                    entry = (f"tx{block_num}.{tx_num}", value or b"", value is None)
                    expected[key].insert(0, entry)
            _commit_block_history(conn, block_num, txs)
        got = {
            key: [
                (m.tx_id, m.value, m.is_delete)
                for m in get_history_for_key(conn, "cc", key)
            ]
            for key in "abcd"
        }
        leftovers = conn.execute(
            "SELECT count(*) FROM temp.block_history_rows"
        ).fetchone()
    finally:
        conn.close()

    assert got == expected
    assert leftovers == (0,)


def test_the_committer_links_to_a_head_recorded_without_state(
    db: sqlite3.Connection,
) -> None:
    """A state row without a head (written without history) links its next row
    to the head kept in history_heads."""
    record(db, 1, 0, KeyWrite("cc", "a", b"v1"))
    puts = UpdateBatch()
    puts.put("cc", "a", b"v1", Version(1, 0))
    apply_updates(db, puts, savepoint=1)

    _commit_block_history(db, 2, [[KeyWrite("cc", "a", b"v2")]])

    assert [m.tx_id for m in get_history_for_key(db, "cc", "a")] == ["tx2.0", "tx1.0"]


def test_a_state_write_missing_a_put_fails_the_block(db: sqlite3.Connection) -> None:
    """Every put's row comes from its state row; a state write without it is an error."""
    batch = HistoryBatch()
    batch.add(
        block_num=1,
        tx_num=0,
        tx_id="tx1.0",
        timestamp=Timestamp(1),
        writes=[KeyWrite("cc", "a", b"v")],
    )

    with pytest.raises(LedgerError, match="0 history rows written for 1 writes"):
        _write_block(db, 1, UpdateBatch(), batch)
    assert list(get_history_for_key(db, "cc", "a")) == []
