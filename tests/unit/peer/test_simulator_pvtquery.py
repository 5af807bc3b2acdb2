"""The simulator's rich queries on private data, over a real channel database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.errors import CollectionError, MangoQueryError, UnsupportedTransaction
from peer.ledger import pvtdata
from peer.ledger.hashed import HashedUpdateBatch, apply_hashed_updates
from peer.ledger.mango import create_index
from peer.ledger.pvtrwset import key_hash, value_hash
from peer.ledger.pvtstate import PrivateUpdateBatch, apply_private_updates
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import KV, Version
from peer.simulator import Snapshots, TxSimulator, open_simulator
from peer.simulator.iterators import ResultsIterator
from tests.unit.peer.simfakes import decode_hashed, decode_public

NS = "records"
COLL = "patients"


def record(i: int) -> bytes:
    return json.dumps({"ward": f"w{i % 2}", "age": 30 + i}).encode()


def commit_private(
    conn: sqlite3.Connection, writes: dict[str, bytes], version: Version
) -> None:
    """Plaintext and hashed state of `writes`, as a member peer commits them."""
    plain = PrivateUpdateBatch()
    hashed = HashedUpdateBatch()
    for key, value in writes.items():
        plain.put(NS, COLL, key, value, version)
        hashed.put(
            NS, COLL, key_hash(key), value_hash=value_hash(value), version=version
        )
    apply_private_updates(conn, plain)
    apply_hashed_updates(conn, hashed)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    conn = open_channel_db(path)
    pvtdata.ensure(conn)
    commit_private(conn, {f"p{i}": record(i) for i in range(6)}, Version(1, 0))
    conn.close()
    return path


@pytest.fixture
def snapshots(db_path: Path) -> Iterator[Snapshots]:
    pool = Snapshots(db_path)
    yield pool
    pool.close()


def simulate(snapshots: Snapshots, **kwargs: object) -> TxSimulator:
    return open_simulator(snapshots, channel_id="ch", tx_id="tx1", **kwargs)  # type: ignore[arg-type]


def drain(iterator: ResultsIterator[KV]) -> list[KV]:
    found = []
    while (item := iterator.next()) is not None:
        found.append(item)
    return found


def test_returns_committed_plaintext_and_records_nothing(
    snapshots: Snapshots,
) -> None:
    sim = simulate(snapshots)

    found = drain(
        sim.execute_query_on_private_data(NS, COLL, '{"selector": {"ward": "w1"}}')
    )
    results = sim.results()
    sim.done()

    assert [(kv.key, kv.value) for kv in found] == [
        ("p1", record(1)),
        ("p3", record(3)),
        ("p5", record(5)),
    ]
    assert decode_public(results.public_rwset) == {}
    assert decode_hashed(results.public_rwset) == {}
    assert results.private_rwset == b""
    assert results.private_reads == frozenset()


def test_sort_limit_skip_fields_and_use_index(
    snapshots: Snapshots, db_path: Path
) -> None:
    conn = open_channel_db(db_path)
    create_index(
        conn,
        NS,
        '{"index": {"fields": ["age"]}, "ddoc": "byAge", "name": "age"}',
        collection=COLL,
    )
    conn.close()
    query = {
        "selector": {"age": {"$gt": 30}},
        "sort": [{"age": "desc"}],
        "skip": 1,
        "limit": 2,
        "fields": ["age"],
        "use_index": ["byAge", "age"],
    }
    sim = simulate(snapshots)

    found = drain(sim.execute_query_on_private_data(NS, COLL, json.dumps(query)))
    sim.done()

    assert [(kv.key, json.loads(kv.value)) for kv in found] == [
        ("p4", {"age": 34}),
        ("p3", {"age": 33}),
    ]


def test_sees_its_snapshot_not_later_commits(
    snapshots: Snapshots, db_path: Path
) -> None:
    sim = simulate(snapshots)  # its snapshot is taken here
    conn = open_channel_db(db_path)
    commit_private(conn, {"p9": record(9)}, Version(2, 0))
    conn.close()

    found = drain(sim.execute_query_on_private_data(NS, COLL, '{"selector": {}}'))
    sim.done()

    assert [kv.key for kv in found] == [f"p{i}" for i in range(6)]


def test_a_non_member_peer_gets_a_clear_error(snapshots: Snapshots) -> None:
    asked: list[tuple[str, str]] = []

    def member_of(ns: str, coll: str) -> bool:
        asked.append((ns, coll))
        return False

    sim = simulate(snapshots, membership=member_of)

    with pytest.raises(CollectionError, match="not a member of collection patients"):
        sim.execute_query_on_private_data(NS, COLL, '{"selector": {}}')
    sim.done()
    assert asked == [(NS, COLL)]


def test_a_member_peer_queries(snapshots: Snapshots) -> None:
    sim = simulate(snapshots, membership=lambda ns, coll: True)

    found = drain(sim.execute_query_on_private_data(NS, COLL, '{"selector": {}}'))
    sim.done()

    assert len(found) == 6


def test_writes_and_private_queries_do_not_mix(snapshots: Snapshots) -> None:
    queried = simulate(snapshots)
    queried.execute_query_on_private_data(NS, COLL, '{"selector": {}}')
    with pytest.raises(UnsupportedTransaction):
        queried.set_private_data(NS, COLL, "p0", b"{}")
    queried.done()

    written = simulate(snapshots)
    written.set_state(NS, "k", b"v")
    with pytest.raises(UnsupportedTransaction, match="read-only"):
        written.execute_query_on_private_data(NS, COLL, '{"selector": {}}')
    written.done()


def test_a_bad_query_fails_at_the_call(snapshots: Snapshots) -> None:
    sim = simulate(snapshots)

    with pytest.raises(MangoQueryError):
        sim.execute_query_on_private_data(NS, COLL, "not json")
    sim.done()


def test_an_undefined_collection_is_refused_first(snapshots: Snapshots) -> None:
    class OnlyPatients:
        def validate_collection(self, namespace: str, collection: str) -> None:
            if collection != COLL:
                raise CollectionError(f"collection {collection} is not defined")

    sim = simulate(snapshots, collections=OnlyPatients())

    with pytest.raises(CollectionError, match="nurses is not defined"):
        sim.execute_query_on_private_data(NS, "nurses", '{"selector": {}}')
    sim.done()


def test_done_closes_an_open_query(snapshots: Snapshots) -> None:
    sim = simulate(snapshots)
    iterator = sim.execute_query_on_private_data(NS, COLL, '{"selector": {}}')
    assert iterator.next() is not None

    sim.done()

    assert iterator.closed
    assert iterator.next() is None
