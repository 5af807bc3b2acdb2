"""Rich (Mango) queries and indexes on a collection's private data in the channel database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest

from peer.errors import MangoQueryError
from peer.ledger import pvtdata
from peer.ledger.mango import (
    create_index,
    deploy_indexes,
    drop_index,
    explain_query,
    get_query_result,
    list_indexes,
    package_index_collection,
)
from peer.ledger.pvtstate import (
    PrivateUpdateBatch,
    apply_private_updates,
    get_private_data_query_result,
)
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import UpdateBatch, Version, apply_updates

NS = "records"
COLL = "patients"
WARD_INDEX = json.dumps(
    {
        "index": {"fields": ["ward", "age"]},
        "ddoc": "indexWardDoc",
        "name": "indexWard",
        "type": "json",
    }
)


def patient(i: int) -> bytes:
    return json.dumps(
        {"docType": "patient", "ward": f"w{i % 3}", "age": 20 + i, "name": f"p{i}"}
    ).encode()


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    pvtdata.ensure(conn)
    batch = PrivateUpdateBatch()
    for i in range(12):
        batch.put(NS, COLL, f"patient{i:02d}", patient(i), Version(1, i))
        batch.put(NS, "other", f"patient{i:02d}", patient(i), Version(1, i))
        batch.put("othercc", COLL, f"patient{i:02d}", patient(i), Version(1, i))
    batch.put(NS, COLL, "blob", b"\x00not json", Version(1, 99))
    apply_private_updates(conn, batch)
    public = UpdateBatch()
    public.put(NS, "public0", patient(0), Version(1, 0))
    apply_updates(conn, public, savepoint=1)
    yield conn
    conn.close()


def keys(conn: sqlite3.Connection, query: object, coll: str = COLL) -> list[str]:
    return [
        kv.key
        for kv in get_private_data_query_result(conn, NS, coll, json.dumps(query))
    ]


def test_selects_the_collection_s_json_values_only(db: sqlite3.Connection) -> None:
    found = keys(db, {"selector": {"ward": "w1"}})

    assert found == ["patient01", "patient04", "patient07", "patient10"]


def test_results_carry_the_committed_value_and_version(
    db: sqlite3.Connection,
) -> None:
    (kv,) = get_private_data_query_result(db, NS, COLL, '{"selector": {"name": "p5"}}')

    assert (kv.key, kv.value, kv.version) == ("patient05", patient(5), Version(1, 5))


def test_sort_skip_limit_and_fields(db: sqlite3.Connection) -> None:
    query = {
        "selector": {"age": {"$gte": 22}},
        "sort": [{"age": "desc"}],
        "skip": 1,
        "limit": 3,
        "fields": ["name"],
    }

    results = list(get_private_data_query_result(db, NS, COLL, json.dumps(query)))

    assert [kv.key for kv in results] == ["patient10", "patient09", "patient08"]
    assert json.loads(results[0].value) == {"name": "p10"}


def test_sees_the_latest_write_and_not_deleted_keys(db: sqlite3.Connection) -> None:
    batch = PrivateUpdateBatch()
    batch.put(NS, COLL, "patient00", b'{"ward": "w9"}', Version(2, 0))
    batch.delete(NS, COLL, "patient03", Version(2, 1))
    apply_private_updates(db, batch)

    assert keys(db, {"selector": {"ward": "w9"}}) == ["patient00"]
    assert "patient03" not in keys(db, {"selector": {"docType": "patient"}})


def test_an_unknown_collection_has_no_matches(db: sqlite3.Connection) -> None:
    assert keys(db, {"selector": {}}, coll="nobody") == []


def test_a_bad_query_raises_at_the_call(db: sqlite3.Connection) -> None:
    with pytest.raises(MangoQueryError):
        get_private_data_query_result(db, NS, COLL, '{"selector": {"$bogus": 1}}')


def test_collection_index_is_used_and_kept_apart_from_public_indexes(
    db: sqlite3.Connection,
) -> None:
    name = create_index(db, NS, WARD_INDEX, collection=COLL)
    query = json.dumps({"selector": {"ward": "w2", "age": {"$gt": 25}}})

    detail = "\n".join(explain_query(db, NS, query, collection=COLL))

    assert f"USING INDEX {name}" in detail
    assert [i.name for i in list_indexes(db, NS, collection=COLL)] == ["indexWard"]
    assert list_indexes(db, NS) == []
    assert list_indexes(db, NS, collection="other") == []
    assert keys(db, json.loads(query)) == ["patient08", "patient11"]


def test_collection_index_covers_only_its_collection(db: sqlite3.Connection) -> None:
    name = create_index(db, NS, WARD_INDEX, collection=COLL)
    other = create_index(db, NS, WARD_INDEX, collection="other")
    public = create_index(db, NS, WARD_INDEX)
    query = json.dumps({"selector": {"ward": "w0"}})

    other_plan = "\n".join(explain_query(db, NS, query, collection="other"))

    assert len({name, other, public}) == 3
    assert f"USING INDEX {other}" in other_plan
    assert keys(db, json.loads(query), coll="other") == keys(db, json.loads(query))


def test_use_index_forces_the_collection_index(db: sqlite3.Connection) -> None:
    name = create_index(db, NS, WARD_INDEX, collection=COLL)
    query = json.dumps(
        {"selector": {"docType": "patient"}, "use_index": ["indexWardDoc"]}
    )

    detail = "\n".join(explain_query(db, NS, query, collection=COLL))

    assert name in detail


def test_drop_collection_index(db: sqlite3.Connection) -> None:
    create_index(db, NS, WARD_INDEX, collection=COLL)

    assert not drop_index(db, NS, "indexWardDoc", "indexWard")
    assert drop_index(db, NS, "indexWardDoc", "indexWard", collection=COLL)
    assert list_indexes(db, NS, collection=COLL) == []
    assert "USING INDEX" not in "\n".join(
        explain_query(db, NS, '{"selector": {"ward": "w1"}}', collection=COLL)
    )


def test_public_queries_ignore_private_data(db: sqlite3.Connection) -> None:
    found = [kv.key for kv in get_query_result(db, NS, '{"selector": {}}')]

    assert found == ["public0"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("META-INF/statedb/couchdb/indexes/byOwner.json", ""),
        ("src/META-INF/statedb/couchdb/indexes/byOwner.json", ""),
        (
            "META-INF/statedb/couchdb/collections/patients/indexes/byWard.json",
            "patients",
        ),
        ("META-INF/statedb/couchdb/collections/patients/byWard.json", None),
        ("META-INF/statedb/couchdb/indexes/readme.txt", None),
        ("META-INF/statedb/couchdb/indexes/sub/x.json", None),
        ("src/chaincode.py", None),
    ],
)
def test_package_index_collection(path: str, expected: str | None) -> None:
    assert package_index_collection(path) == expected


PACKAGE_FILES = [
    (
        "src/META-INF/statedb/couchdb/indexes/byType.json",
        b'{"index": {"fields": ["docType"]}, "name": "byType"}',
    ),
    (
        "src/META-INF/statedb/couchdb/collections/patients/indexes/byWard.json",
        WARD_INDEX.encode(),
    ),
    (
        "src/META-INF/statedb/couchdb/collections/undefined/indexes/byWard.json",
        WARD_INDEX.encode(),
    ),
    ("src/chaincode.py", b"not an index"),
]


def test_deploy_indexes_creates_public_and_collection_indexes(
    db: sqlite3.Connection,
) -> None:
    created = deploy_indexes(db, NS, PACKAGE_FILES, collections={COLL, "other"})
    again = deploy_indexes(db, NS, PACKAGE_FILES, collections={COLL, "other"})

    assert again == created
    assert len(created) == 2
    assert [i.name for i in list_indexes(db, NS)] == ["byType"]
    assert [i.name for i in list_indexes(db, NS, collection=COLL)] == ["indexWard"]
    assert list_indexes(db, NS, collection="undefined") == []


def test_deploy_indexes_without_a_collection_list_takes_every_one(
    db: sqlite3.Connection,
) -> None:
    deploy_indexes(db, NS, PACKAGE_FILES)

    assert [i.name for i in list_indexes(db, NS, collection="undefined")] == [
        "indexWard"
    ]


def test_a_bad_index_file_is_named_and_nothing_is_created(
    db: sqlite3.Connection,
) -> None:
    files = [
        *PACKAGE_FILES,
        ("META-INF/statedb/couchdb/indexes/broken.json", b'{"index": {}}'),
    ]

    with pytest.raises(MangoQueryError, match=r"broken\.json"):
        deploy_indexes(db, NS, files)
    assert list_indexes(db, NS) == []
