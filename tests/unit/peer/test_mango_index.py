"""Chaincode CouchDB indexes become SQLite expression indexes the planner uses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest

from peer.ledger.mango import (
    create_index,
    drop_index,
    explain_query,
    get_query_result,
    list_indexes,
)
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import UpdateBatch, Version, apply_updates

OWNER_INDEX = json.dumps(
    {
        "index": {"fields": ["docType", "owner"]},
        "ddoc": "indexOwnerDoc",
        "name": "indexOwner",
        "type": "json",
    }
)
SIZE_INDEX = (
    '{"index": {"fields": ["size"]}, "ddoc": "indexSizeDoc", "name": "indexSize"}'
)


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    create_index(conn, "cc", OWNER_INDEX)
    create_index(conn, "cc", SIZE_INDEX)
    batch = UpdateBatch()
    for i in range(300):
        document = {"docType": "asset", "owner": f"o{i % 7}", "size": i % 50}
        batch.put("cc", f"asset{i:03d}", json.dumps(document).encode(), Version(1, i))
        batch.put(
            "other", f"asset{i:03d}", json.dumps(document).encode(), Version(1, i)
        )
    batch.put("cc", "blob", b"\x00not json", Version(1, 999))
    apply_updates(conn, batch, savepoint=1)
    yield conn
    conn.close()


def plan(conn: sqlite3.Connection, query: object, ns: str = "cc") -> str:
    return "\n".join(explain_query(conn, ns, json.dumps(query)))


def test_equality_on_indexed_fields_uses_the_index(db: sqlite3.Connection) -> None:
    query = {"selector": {"docType": "asset", "owner": "o3"}}

    detail = plan(db, query)

    assert "USING INDEX mango_" in detail
    assert "<expr>=? AND <expr>=? AND <expr>=? AND <expr>=?" in detail
    assert len(list(get_query_result(db, "cc", json.dumps(query)))) == 43


def test_range_with_sort_on_an_indexed_field_uses_the_index(
    db: sqlite3.Connection,
) -> None:
    query = {"selector": {"size": {"$gt": 45}}, "sort": ["size"]}

    detail = plan(db, query)

    assert "USING INDEX mango_" in detail
    assert "<expr>>?" in detail
    assert "TEMP B-TREE" not in detail  # the index also gives the order
    sizes = [
        json.loads(kv.value)["size"]
        for kv in get_query_result(db, "cc", json.dumps(query))
    ]
    assert sizes == sorted(sizes)
    assert set(sizes) == {46, 47, 48, 49}


def test_range_on_an_indexed_field_uses_the_index_by_itself(
    db: sqlite3.Connection,
) -> None:
    assert "USING INDEX mango_" in plan(db, {"selector": {"size": {"$lt": 3}}})


def test_in_on_an_indexed_field_uses_the_index(db: sqlite3.Connection) -> None:
    detail = plan(db, {"selector": {"size": {"$in": [1, 2]}}})

    assert "MULTI-INDEX OR" in detail
    assert "USING INDEX mango_" in detail


def test_use_index_forces_the_named_index(db: sqlite3.Connection) -> None:
    query = {
        "selector": {"owner": "o1"},
        "use_index": ["_design/indexSizeDoc", "indexSize"],
    }
    by_ddoc = {"selector": {"owner": "o1"}, "use_index": "indexSizeDoc"}

    assert "USING INDEX mango_" in plan(db, query)
    assert "USING INDEX mango_" in plan(db, by_ddoc)
    assert len(list(get_query_result(db, "cc", json.dumps(query)))) == 43


def test_unknown_use_index_is_ignored(db: sqlite3.Connection) -> None:
    query = json.dumps({"selector": {"owner": "o1"}, "use_index": "noSuchDoc"})

    assert len(list(get_query_result(db, "cc", query))) == 43


def test_indexes_belong_to_one_namespace(db: sqlite3.Connection) -> None:
    detail = plan(db, {"selector": {"docType": "asset", "owner": "o3"}}, ns="other")

    assert "mango_" not in detail


def test_descending_index_serves_descending_sort(db: sqlite3.Connection) -> None:
    create_index(
        db, "cc", '{"index": {"fields": [{"size": "desc"}]}, "name": "sizeDesc"}'
    )
    query = {"selector": {"size": {"$gte": 48}}, "sort": [{"size": "desc"}]}

    detail = plan(db, query)

    assert "USING INDEX mango_" in detail
    assert "TEMP B-TREE" not in detail


def test_list_recreate_and_drop(db: sqlite3.Connection) -> None:
    names = [(d.ddoc, d.name) for d in list_indexes(db, "cc")]
    assert names == [("indexOwnerDoc", "indexOwner"), ("indexSizeDoc", "indexSize")]

    first = create_index(db, "cc", SIZE_INDEX)
    again = create_index(db, "cc", SIZE_INDEX)
    changed = create_index(
        db,
        "cc",
        '{"index": {"fields": ["owner"]}, "ddoc": "indexSizeDoc", "name": "indexSize"}',
    )
    assert first == again == changed
    (redefined,) = [d for d in list_indexes(db, "cc") if d.name == "indexSize"]
    assert [f.path for f in redefined.fields] == [("owner",)]

    assert drop_index(db, "cc", "indexSizeDoc", "indexSize") is True
    assert drop_index(db, "cc", "indexSizeDoc", "indexSize") is False
    assert [d.name for d in list_indexes(db, "cc")] == ["indexOwner"]
    assert first not in {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def test_writes_of_any_value_still_work_with_indexes(db: sqlite3.Connection) -> None:
    batch = UpdateBatch()
    batch.put("cc", "asset001", b"\xff binary", Version(2, 0))
    batch.put(
        "cc",
        "new",
        b'{"docType": "asset", "owner": "o3", "size": "big"}',
        Version(2, 1),
    )
    batch.delete("cc", "asset002", Version(2, 2))
    apply_updates(db, batch, savepoint=2)

    query = '{"selector": {"docType": "asset", "owner": "o3"}}'
    found = [kv.key for kv in get_query_result(db, "cc", query)]

    assert "new" in found
    assert len(found) == 44


def test_index_on_id_uses_the_key(db: sqlite3.Connection) -> None:
    name = create_index(db, "cc", '{"index": {"fields": ["_id"]}, "name": "byId"}')

    columns = [row[2] for row in db.execute(f'PRAGMA index_info("{name}")')]

    assert columns[0] == "key"


def test_listing_keeps_nested_and_dotted_field_names(db: sqlite3.Connection) -> None:
    definition = {"index": {"fields": ["address.city", {"a\\.b": "desc"}]}, "name": "n"}
    create_index(db, "cc", json.dumps(definition))

    (listed,) = [d for d in list_indexes(db, "cc") if d.name == "n"]

    assert [(f.path, f.descending) for f in listed.fields] == [
        (("address", "city"), False),
        (("a.b",), True),
    ]
