"""Mango rich queries: each operator, nested fields, sort, projection, limit/skip, paging."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from peer.errors import InvalidBookmark
from peer.ledger.mango import get_query_result, get_query_result_page
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import UpdateBatch, Version, apply_updates

DOCS: dict[str, Any] = {
    "p1": {
        "docType": "patient",
        "name": "Ann",
        "age": 34,
        "tags": ["cardio", "icu"],
        "address": {"city": "Oslo", "zip": "0150"},
        "active": True,
    },
    "p2": {
        "docType": "patient",
        "name": "Bob",
        "age": 51,
        "tags": ["onco"],
        "address": {"city": "Bergen"},
        "active": False,
    },
    "p3": {
        "docType": "patient",
        "name": "Cid",
        "age": "unknown",
        "tags": [],
        "address": None,
    },
    "p4": {
        "docType": "patient",
        "name": "Dee",
        "age": 51.0,
        "tags": ["icu", "cardio", "renal"],
        "visits": [{"ward": "A", "days": 3}, {"ward": "B", "days": 10}],
    },
    "r1": {"docType": "record", "patient": "p1", "visits": [{"ward": "A", "days": 1}]},
    "dot": {"a.b": 1, "a": {"b": 2}},
}
NOT_DOCUMENTS = {"bin": b"\x00\x01 not json", "arr": b"[1, 2, 3]", "num": b"42"}


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    batch = UpdateBatch()
    for tx_num, (key, doc) in enumerate(DOCS.items()):
        batch.put("cc", key, json.dumps(doc).encode(), Version(1, tx_num))
    for key, value in NOT_DOCUMENTS.items():
        batch.put("cc", key, value, Version(1, 99))
    batch.put("other", "p1", b'{"docType": "patient"}', Version(1, 100))
    apply_updates(conn, batch, savepoint=1)
    yield conn
    conn.close()


def keys(conn: sqlite3.Connection, selector: object, **options: object) -> list[str]:
    query = json.dumps({"selector": selector, **options})
    return [kv.key for kv in get_query_result(conn, "cc", query)]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"docType": "patient"}, ["p1", "p2", "p3", "p4"]),
        ({"age": 51}, ["p2", "p4"]),  # 51 equals 51.0
        ({"age": "unknown"}, ["p3"]),
        ({"active": True}, ["p1"]),
        ({"active": {"$eq": False}}, ["p2"]),
        ({"address": None}, ["p3"]),
        ({"tags": []}, ["p3"]),
        ({"tags": ["onco"]}, ["p2"]),
        ({"address": {"city": "Bergen"}}, ["p2"]),
        ({"address.city": "Oslo"}, ["p1"]),
        ({"a\\.b": 1}, ["dot"]),
        ({"a.b": 2}, ["dot"]),
    ],
)
def test_equality(
    db: sqlite3.Connection, selector: object, expected: list[str]
) -> None:
    assert keys(db, selector) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"age": {"$ne": 51}}, ["p1", "p3"]),  # a missing field never matches $ne
        ({"age": {"$gt": 40}}, ["p2", "p4"]),  # the string "unknown" is not compared
        ({"age": {"$gte": 34, "$lt": 51}}, ["p1"]),
        ({"age": {"$lte": 51}}, ["p1", "p2", "p4"]),
        ({"name": {"$gt": "B"}}, ["p2", "p3", "p4"]),
        ({"address": {"$gt": None}}, ["p1", "p2"]),  # the "all non-null" idiom
        ({"address": {"$lte": None}}, ["p3"]),
        ({"active": {"$gt": False}}, ["p1"]),
        ({"age": {"$exists": True}}, ["p1", "p2", "p3", "p4"]),
        ({"docType": "patient", "visits": {"$exists": False}}, ["p1", "p2", "p3"]),
        ({"age": {"$type": "string"}}, ["p3"]),
        ({"address": {"$type": "object"}}, ["p1", "p2"]),
        ({"active": {"$type": "boolean"}}, ["p1", "p2"]),
        ({"age": {"$mod": [17, 0]}}, ["p1", "p2"]),  # 51.0 is not an integer
    ],
)
def test_comparison_operators(
    db: sqlite3.Connection, selector: object, expected: list[str]
) -> None:
    assert keys(db, selector) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"name": {"$in": ["Ann", "Dee", "Zed"]}}, ["p1", "p4"]),
        ({"age": {"$in": [34, "unknown", None]}}, ["p1", "p3"]),
        (
            {"tags": {"$in": ["renal", "onco"]}},
            ["p2", "p4"],
        ),  # array fields: any element
        ({"docType": "patient", "tags": {"$nin": ["icu"]}}, ["p2", "p3"]),
        ({"name": {"$nin": ["Ann"]}, "docType": "patient"}, ["p2", "p3", "p4"]),
        ({"tags": {"$all": ["icu", "cardio"]}}, ["p1", "p4"]),
        ({"tags": {"$all": []}}, []),
        ({"tags": {"$size": 0}}, ["p3"]),
        ({"tags": {"$size": 2}}, ["p1"]),
        ({"tags": {"$elemMatch": {"$eq": "icu"}}}, ["p1", "p4"]),
        ({"visits": {"$elemMatch": {"ward": "B", "days": {"$gt": 5}}}}, ["p4"]),
        ({"visits": {"$elemMatch": {"ward": "A", "days": {"$gt": 5}}}}, []),
        ({"visits": {"$allMatch": {"days": {"$gt": 2}}}}, ["p4"]),
        ({"tags": {"$allMatch": {"$regex": "o"}}}, ["p2"]),  # [] never all-matches
        ({"name": {"$regex": "^[AB]"}}, ["p1", "p2"]),
        ({"name": {"$regex": "e"}}, ["p4"]),  # a search, not a full match
    ],
)
def test_array_and_text_operators(
    db: sqlite3.Connection, selector: object, expected: list[str]
) -> None:
    assert keys(db, selector) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"$and": [{"docType": "patient"}, {"age": {"$gt": 40}}]}, ["p2", "p4"]),
        ({"$or": [{"name": "Ann"}, {"patient": "p1"}]}, ["p1", "r1"]),
        ({"docType": "patient", "$nor": [{"age": 51}, {"name": "Ann"}]}, ["p3"]),
        ({"docType": "patient", "$not": {"age": 51}}, ["p1", "p3"]),
        ({"docType": "patient", "age": {"$not": {"$gt": 40}}}, ["p1", "p3"]),
        ({"age": {"$or": [{"$lt": 40}, {"$eq": "unknown"}]}}, ["p1", "p3"]),
        (
            {"$not": {"docType": "patient"}},
            ["dot", "r1"],
        ),  # a missing field satisfies $not
        ({"$and": []}, ["dot", "p1", "p2", "p3", "p4", "r1"]),
        ({"$or": []}, ["dot", "p1", "p2", "p3", "p4", "r1"]),
    ],
)
def test_combination_operators(
    db: sqlite3.Connection, selector: object, expected: list[str]
) -> None:
    assert keys(db, selector) == expected


def test_only_json_objects_take_part(db: sqlite3.Connection) -> None:
    assert keys(db, {"_id": {"$gt": None}}) == ["dot", "p1", "p2", "p3", "p4", "r1"]
    assert keys(db, {}) == ["dot", "p1", "p2", "p3", "p4", "r1"]


def test_id_is_the_state_key(db: sqlite3.Connection) -> None:
    assert keys(db, {"_id": "p2"}) == ["p2"]
    assert keys(db, {"_id": {"$in": ["p1", "r1", "bin"]}}) == ["p1", "r1"]
    assert keys(db, {"_id": {"$regex": "^r"}}) == ["r1"]
    assert keys(db, {"_id": {"$gte": "p3", "$lt": "r"}}) == ["p3", "p4"]


def test_queries_see_only_their_namespace(db: sqlite3.Connection) -> None:
    found = list(get_query_result(db, "other", '{"selector": {"docType": "patient"}}'))
    assert [(kv.key, kv.value) for kv in found] == [("p1", b'{"docType": "patient"}')]


def test_results_carry_original_bytes_and_versions(db: sqlite3.Connection) -> None:
    (record,) = get_query_result(db, "cc", '{"selector": {"name": "Bob"}}')

    assert record.value == json.dumps(DOCS["p2"]).encode()
    assert record.version == Version(1, 1)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (["age"], ["p1", "p2", "p4", "p3"]),  # numbers before strings; ties by key
        ([{"age": "desc"}], ["p3", "p4", "p2", "p1"]),
        ([{"age": "asc"}, {"name": "desc"}], ["p1", "p4", "p2", "p3"]),
        (["address.city"], ["p3", "p4", "p2", "p1"]),  # missing and null first
        ([{"_id": "desc"}], ["p4", "p3", "p2", "p1"]),
        (["docType", "name"], ["p1", "p2", "p3", "p4"]),
    ],
)
def test_sort(db: sqlite3.Connection, sort: list[object], expected: list[str]) -> None:
    assert keys(db, {"docType": "patient"}, sort=sort) == expected


def test_limit_and_skip(db: sqlite3.Connection) -> None:
    selector = {"docType": "patient"}
    assert keys(db, selector, sort=["name"], skip=1, limit=2) == ["p2", "p3"]
    assert keys(db, selector, limit=0) == []
    assert keys(db, selector, skip=10) == []


def test_fields_projection(db: sqlite3.Connection) -> None:
    query = {
        "selector": {"docType": "patient"},
        "fields": ["name", "address.city", "_id"],
    }
    values = [
        json.loads(kv.value) for kv in get_query_result(db, "cc", json.dumps(query))
    ]

    assert values == [
        {"name": "Ann", "address": {"city": "Oslo"}},
        {"name": "Bob", "address": {"city": "Bergen"}},
        {"name": "Cid"},
        {"name": "Dee"},
    ]


@pytest.mark.parametrize("page_size", [1, 2, 3, 10])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sort": [{"age": "desc"}]},
        {"sort": ["age", {"name": "desc"}]},
        {"sort": ["address.city"]},
        {"sort": ["name"], "skip": 1},
        {"sort": ["name"], "limit": 3},
        {"skip": 2, "limit": 1},
    ],
)
def test_pages_concatenate_to_the_full_result(
    db: sqlite3.Connection, page_size: int, options: dict[str, object]
) -> None:
    query = json.dumps({"selector": {"docType": "patient"}, **options})
    full = [kv.key for kv in get_query_result(db, "cc", query)]
    pages, bookmark = [], ""
    while True:
        page = get_query_result_page(
            db, "cc", query, page_size=page_size, bookmark=bookmark
        )
        pages.append([kv.key for kv in page.records])
        bookmark = page.bookmark
        if not bookmark:
            break

    assert [key for page in pages for key in page] == full
    assert all(len(page) == page_size for page in pages[:-1])
    assert len(pages[-1]) <= page_size


def test_page_bookmark_is_empty_when_the_result_is_exhausted(
    db: sqlite3.Connection,
) -> None:
    query = '{"selector": {"docType": "patient"}}'

    page = get_query_result_page(db, "cc", query, page_size=4)

    assert (page.fetched_records_count, page.bookmark) == (4, "")


def test_bookmark_survives_writes_between_pages() -> None:
    query = '{"selector": {"n": {"$gte": 0}}, "sort": ["n"]}'
    with closing(open_channel_db(":memory:")) as conn:
        batch = UpdateBatch()
        for i in range(6):
            batch.put("cc", f"k{i}", json.dumps({"n": i}).encode(), Version(1, i))
        apply_updates(conn, batch, savepoint=1)
        first = get_query_result_page(conn, "cc", query, page_size=3)
        batch = UpdateBatch()
        batch.delete("cc", "k1", Version(2, 0))
        batch.put("cc", "k9", b'{"n": -1}', Version(2, 1))
        apply_updates(conn, batch, savepoint=2)

        second = get_query_result_page(
            conn, "cc", query, page_size=3, bookmark=first.bookmark
        )

    assert [kv.key for kv in first.records] == ["k0", "k1", "k2"]
    assert [kv.key for kv in second.records] == ["k3", "k4", "k5"]


@pytest.mark.parametrize("bookmark", ["garbage", "eyJ4IjogMX0=", "!!!"])
def test_foreign_bookmarks_are_refused(db: sqlite3.Connection, bookmark: str) -> None:
    with pytest.raises(InvalidBookmark):
        get_query_result_page(
            db, "cc", '{"selector": {}}', page_size=2, bookmark=bookmark
        )


def test_bookmark_of_another_query_is_refused(db: sqlite3.Connection) -> None:
    page = get_query_result_page(
        db, "cc", '{"selector": {"docType": "patient"}}', page_size=1
    )

    with pytest.raises(InvalidBookmark, match="different query"):
        get_query_result_page(
            db,
            "cc",
            '{"selector": {"docType": "record"}}',
            page_size=1,
            bookmark=page.bookmark,
        )
    with pytest.raises(InvalidBookmark, match="different query"):
        get_query_result_page(
            db,
            "other",
            '{"selector": {"docType": "patient"}}',
            page_size=1,
            bookmark=page.bookmark,
        )
