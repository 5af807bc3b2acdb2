"""State database: point reads, metadata, update batches, savepoint, ranges, pages."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.errors import LedgerError
from peer.ledger import schema
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.statedb import (
    KV,
    UpdateBatch,
    Version,
    VersionedValue,
    WriteKind,
    apply_updates,
    get_metadata_of,
    get_state,
    get_state_metadata,
    get_state_range,
    get_state_range_page,
    get_versions,
    savepoint,
    savepoint_height,
)
from peer.ledger.values import stored_value

V1 = Version(1, 0)
V2 = Version(2, 0)
V3 = Version(3, 0)
POLICY = {"VALIDATION_PARAMETER": b"\x0a\x01policy"}


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    yield conn
    conn.close()


def commit(conn: sqlite3.Connection, block_num: int, *ops: tuple[str, ...]) -> None:
    """Apply puts ("put", key, value), deletes ("del", key) in namespace "cc"."""
    batch = UpdateBatch()
    for tx_num, (kind, key, *rest) in enumerate(ops):
        version = Version(block_num, tx_num)
        if kind == "put":
            batch.put("cc", key, rest[0].encode(), version)
        else:
            batch.delete("cc", key, version)
    apply_updates(conn, batch, savepoint=block_num)


# ---------------------------------------------------------------- point reads


def test_get_state_returns_value_and_version(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "one"), ("put", "b", "two"))

    assert get_state(db, "cc", "b") == VersionedValue(b"two", Version(1, 1), {})
    assert get_state(db, "cc", "missing") is None
    assert get_state(db, "other", "a") is None


def test_put_overwrites_and_moves_version(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "one"))
    commit(db, 2, ("put", "a", "two"))

    assert get_state(db, "cc", "a") == VersionedValue(b"two", Version(2, 0), {})


def test_delete_removes_key(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "one"))
    commit(db, 2, ("del", "a"))

    assert get_state(db, "cc", "a") is None


@pytest.mark.parametrize(
    "value",
    [
        b'{"a": 1}',
        b'  {"x": [1, 2]}',
        b"[1, 2]",
        b"\xff\xfe{",
        b"{not json",
        b"",
        b"\x00",
    ],
)
def test_values_round_trip_byte_for_byte(db: sqlite3.Connection, value: bytes) -> None:
    batch = UpdateBatch()
    batch.put("cc", "k", value, V1)
    apply_updates(db, batch, savepoint=1)

    assert get_state(db, "cc", "k") == VersionedValue(value, V1, {})


def test_only_json_objects_are_stored_as_text() -> None:
    assert stored_value(b'{"a": 1}') == '{"a": 1}'
    assert stored_value(b'\n {"a": 1}') == '\n {"a": 1}'
    for not_an_object in (
        b"[1]",
        b'"s"',
        b"1",
        b'{"a": NaN}',
        b"{",
        b"\xc3{}",
        b"plain",
    ):
        assert stored_value(not_an_object) == not_an_object


def test_get_metadata_of_many_keys_leaves_out_keys_without_metadata(
    db: sqlite3.Connection,
) -> None:
    batch = UpdateBatch()
    batch.put("cc", "plain", b"1", V1)
    batch.put("cc", "guarded", b"2", V1, metadata=POLICY)
    batch.put("other", "guarded", b"3", V1, metadata={"M": b"m"})
    apply_updates(db, batch, savepoint=1)
    keys = [("cc", "plain"), ("cc", "guarded"), ("cc", "missing"), ("other", "guarded")]

    assert get_metadata_of(db, keys * 2) == {
        ("cc", "guarded"): POLICY,
        ("other", "guarded"): {"M": b"m"},
    }


def test_get_versions_for_mvcc(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "1"), ("put", "b", "2"))
    keys = [("cc", "a"), ("cc", "b"), ("cc", "zz"), ("other", "a"), ("cc", "a")]

    assert get_versions(db, keys) == {
        ("cc", "a"): Version(1, 0),
        ("cc", "b"): Version(1, 1),
    }


def test_get_versions_handles_more_keys_than_one_statement(
    db: sqlite3.Connection,
) -> None:
    batch = UpdateBatch()
    for i in range(600):
        batch.put("cc", f"k{i:04d}", b"v", Version(1, i))
    apply_updates(db, batch, savepoint=1)

    versions = get_versions(db, [("cc", f"k{i:04d}") for i in range(700)])

    assert len(versions) == 600
    assert versions[("cc", "k0599")] == Version(1, 599)


def test_versions_order_by_block_then_tx() -> None:
    assert Version(1, 9) < Version(2, 0) < Version(2, 1)


# ---------------------------------------------------------------- metadata


def test_metadata_is_stored_with_the_value(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", V1, metadata=POLICY)
    apply_updates(db, batch, savepoint=1)

    assert get_state(db, "cc", "a") == VersionedValue(b"v", V1, POLICY)
    assert get_state_metadata(db, "cc", "a") == POLICY
    assert get_state_metadata(db, "cc", "missing") is None


def test_value_only_write_keeps_committed_metadata(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v1", V1, metadata=POLICY)
    apply_updates(db, batch, savepoint=1)
    batch = UpdateBatch()
    batch.put("cc", "a", b"v2", V2)
    apply_updates(db, batch, savepoint=2)

    assert get_state(db, "cc", "a") == VersionedValue(b"v2", V2, POLICY)


def test_metadata_only_write_keeps_value_and_moves_version(
    db: sqlite3.Connection,
) -> None:
    commit(db, 1, ("put", "a", "v1"))
    batch = UpdateBatch()
    batch.put_metadata("cc", "a", POLICY, V2)
    batch.put_metadata("cc", "absent", POLICY, V2)
    apply_updates(db, batch, savepoint=2)

    assert get_state(db, "cc", "a") == VersionedValue(b"v1", V2, POLICY)
    assert get_state(db, "cc", "absent") is None


def test_empty_metadata_clears_it(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", V1, metadata=POLICY)
    apply_updates(db, batch, savepoint=1)
    batch = UpdateBatch()
    batch.put_metadata("cc", "a", {}, V2)
    apply_updates(db, batch, savepoint=2)

    assert get_state_metadata(db, "cc", "a") == {}


def test_deleting_a_key_deletes_its_metadata(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", V1, metadata=POLICY)
    apply_updates(db, batch, savepoint=1)
    commit(db, 2, ("del", "a"))
    commit(db, 3, ("put", "a", "again"))

    assert get_state(db, "cc", "a") == VersionedValue(b"again", Version(3, 0), {})


def test_batch_merges_writes_to_one_key_in_block_order() -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v1", Version(5, 0))
    batch.put_metadata("cc", "a", POLICY, Version(5, 1))
    batch.put("cc", "a", b"v2", Version(5, 2))

    write = batch.get("cc", "a")
    assert write is not None
    assert (write.kind, write.value, write.metadata, write.version) == (
        WriteKind.PUT,
        b"v2",
        POLICY,
        Version(5, 2),
    )


def test_batch_drops_metadata_write_after_delete_in_same_block(
    db: sqlite3.Connection,
) -> None:
    commit(db, 1, ("put", "a", "v1"))
    batch = UpdateBatch()
    batch.delete("cc", "a", Version(2, 0))
    batch.put_metadata("cc", "a", POLICY, Version(2, 1))
    apply_updates(db, batch, savepoint=2)

    assert get_state(db, "cc", "a") is None


def test_put_after_delete_in_same_block_starts_without_metadata(
    db: sqlite3.Connection,
) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", V1, metadata=POLICY)
    apply_updates(db, batch, savepoint=1)
    batch = UpdateBatch()
    batch.delete("cc", "a", Version(2, 0))
    batch.put("cc", "a", b"new", Version(2, 1))
    apply_updates(db, batch, savepoint=2)

    assert get_state(db, "cc", "a") == VersionedValue(b"new", Version(2, 1), {})


def test_corrupt_metadata_is_a_ledger_error(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "v"))
    db.execute("UPDATE state SET metadata = x'00000009' WHERE key = 'a'")

    with pytest.raises(LedgerError, match="corrupt key metadata"):
        get_state(db, "cc", "a")


# ---------------------------------------------------------------- savepoint


def test_savepoint_is_written_with_the_updates(db: sqlite3.Connection) -> None:
    assert savepoint(db) is None
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", Version(7, 3))
    apply_updates(db, batch, savepoint=Version(7, 4))

    assert savepoint(db) == 7
    assert savepoint_height(db) == Version(7, 4)


def test_savepoint_never_moves_backwards(db: sqlite3.Connection) -> None:
    commit(db, 5)

    with pytest.raises(LedgerError, match="backwards"):
        commit(db, 4, ("put", "a", "v"))
    assert savepoint(db) == 5
    assert get_state(db, "cc", "a") is None


def test_failure_mid_apply_leaves_nothing_visible(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "old"), ("put", "b", "old"))
    db.execute(
        "CREATE TRIGGER fail_savepoint BEFORE INSERT ON savepoint "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    batch = UpdateBatch()
    batch.put("cc", "a", b"new", Version(2, 0))
    batch.delete("cc", "b", Version(2, 1))
    batch.put("cc", "c", b"new", Version(2, 2))

    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        apply_updates(db, batch, savepoint=2)

    assert not db.in_transaction
    assert get_state(db, "cc", "a") == VersionedValue(b"old", Version(1, 0), {})
    assert get_state(db, "cc", "b") is not None
    assert get_state(db, "cc", "c") is None
    assert savepoint(db) == 1


def test_nested_apply_joins_the_enclosing_transaction(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "a", b"v", V1)

    def commit_block_whose_history_fails() -> None:
        with transaction(db):
            apply_updates(db, batch, savepoint=1)
            raise RuntimeError("the block's other writes failed")

    with pytest.raises(RuntimeError):
        commit_block_whose_history_fails()

    assert get_state(db, "cc", "a") is None
    assert savepoint(db) is None


def test_commit_is_visible_to_another_connection(tmp_path: Path) -> None:
    writer = open_channel_db(tmp_path / "ch.db")
    reader = open_channel_db(tmp_path / "ch.db")
    try:
        commit(writer, 1, ("put", "a", "v"))
        assert get_state(reader, "cc", "a") == VersionedValue(b"v", Version(1, 0), {})
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        writer.close()
        reader.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = open_channel_db(tmp_path / "ch.db")
    conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'state'")
    conn.close()

    with pytest.raises(LedgerError, match="newer than this software"):
        open_channel_db(tmp_path / "ch.db")


def test_migrate_adds_a_component_once(db: sqlite3.Connection) -> None:
    migrations = (
        ("CREATE TABLE extra (x INTEGER)",),
        ("ALTER TABLE extra ADD y TEXT",),
    )
    schema.migrate(db, "extra", migrations)
    schema.migrate(db, "extra", migrations)

    assert schema.schema_version(db, "extra") == 2
    assert [row[1] for row in db.execute("PRAGMA table_info(extra)")] == ["x", "y"]


# ---------------------------------------------------------------- ranges


def test_range_is_start_inclusive_end_exclusive(db: sqlite3.Connection) -> None:
    commit(db, 1, *[("put", k, k) for k in ("a", "b", "c", "d")])

    assert [kv.key for kv in get_state_range(db, "cc", "b", "d")] == ["b", "c"]
    assert [kv.key for kv in get_state_range(db, "cc", "", "")] == ["a", "b", "c", "d"]
    assert [kv.key for kv in get_state_range(db, "cc", "c", "")] == ["c", "d"]
    assert [kv.key for kv in get_state_range(db, "cc", "d", "b")] == []


def test_range_orders_by_code_point_like_go(db: sqlite3.Connection) -> None:
    keys = ["\U0010fffe", "z", "\uffff", "é", "a\x00b", "a", "B"]
    commit(db, 1, *[("put", k, "v") for k in keys])

    got = [kv.key for kv in get_state_range(db, "cc", "", "")]

    assert got == sorted(keys, key=lambda k: k.encode("utf-8"))


def test_range_results_carry_versions(db: sqlite3.Connection) -> None:
    commit(db, 1, ("put", "a", "x"), ("put", "b", "y"))

    assert list(get_state_range(db, "cc", "a", "")) == [
        KV("a", b"x", Version(1, 0)),
        KV("b", b"y", Version(1, 1)),
    ]


def test_range_pages_follow_fabric_bookmarks(db: sqlite3.Connection) -> None:
    commit(db, 1, *[("put", k, k) for k in ("a", "b", "c", "d", "e")])

    first = get_state_range_page(db, "cc", "a", "e", page_size=2)
    second = get_state_range_page(
        db, "cc", "a", "e", page_size=2, bookmark=first.bookmark
    )

    assert ([kv.key for kv in first.records], first.bookmark) == (["a", "b"], "c")
    assert ([kv.key for kv in second.records], second.bookmark) == (["c", "d"], "")
    assert second.fetched_records_count == 2


def test_range_page_size_must_be_positive(db: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="page_size"):
        get_state_range_page(db, "cc", "", "", page_size=0)
