"""Transient store: private write sets by tx id from endorsement until commit or expiry."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from common.errors import WireError
from peer.ledger import transient
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.transient import (
    get_by_tx_id,
    persist,
    purge_below_height,
    purge_by_tx_ids,
    tx_ids,
)
from protos.peer import collection_pb2
from protos.transientstore import transientstore_pb2


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    transient.ensure(conn)
    yield conn
    conn.close()


def with_config(
    endorsed_at: int, *collections: tuple[str, str, bytes]
) -> transientstore_pb2.TxPvtReadWriteSetWithConfigInfo:
    message = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
        endorsed_at=endorsed_at
    )
    for ns, coll, rwset in collections:
        ns_rwset = message.pvt_rwset.ns_pvt_rwset.add(namespace=ns)
        ns_rwset.collection_pvt_rwset.add(collection_name=coll, rwset=rwset)
        config = message.collection_configs[ns].config.add()
        config.static_collection_config.CopyFrom(
            collection_pb2.StaticCollectionConfig(name=coll, block_to_live=3)
        )
    return message


def store(conn: sqlite3.Connection, tx_id: str, height: int, *colls: str) -> bytes:
    data = with_config(
        height, *[("cc", c, c.encode()) for c in colls]
    ).SerializeToString()
    persist(conn, tx_id, height, data)
    return data


def test_entries_come_back_per_tx_id_in_arrival_order(db: sqlite3.Connection) -> None:
    """Several endorsements of one tx are all kept; identical ones once."""
    first = store(db, "tx1", 10, "patients")
    second = store(db, "tx1", 11, "billing")
    store(db, "tx1", 10, "patients")
    store(db, "tx2", 12, "patients")
    entries = get_by_tx_id(db, "tx1")
    assert [(e.height, e.pvt_rwset.SerializeToString()) for e in entries] == [
        (10, first),
        (11, second),
    ]
    height, message = entries[0]
    assert (height, message.endorsed_at) == (10, 10)
    assert get_by_tx_id(db, "unknown") == []
    assert tx_ids(db) == ["tx1", "tx2"]


def test_filter_keeps_only_accepted_collections_and_their_configs(
    db: sqlite3.Connection,
) -> None:
    """A pull request from another peer gets only the collections it is eligible for."""
    store(db, "tx1", 5, "patients", "billing")
    [entry] = get_by_tx_id(db, "tx1", lambda ns, coll: coll == "billing")
    [ns_rwset] = entry.pvt_rwset.pvt_rwset.ns_pvt_rwset
    assert [c.collection_name for c in ns_rwset.collection_pvt_rwset] == ["billing"]
    configs = entry.pvt_rwset.collection_configs["cc"].config
    assert [c.static_collection_config.name for c in configs] == ["billing"]
    [nothing] = get_by_tx_id(db, "tx1", lambda ns, coll: False)
    assert nothing.height == 5
    assert nothing.pvt_rwset.endorsed_at == 5
    assert list(nothing.pvt_rwset.pvt_rwset.ns_pvt_rwset) == []
    assert dict(nothing.pvt_rwset.collection_configs) == {}


def test_committed_tx_ids_are_purged_in_the_block_transaction(
    db: sqlite3.Connection,
) -> None:
    """Purging by tx id removes every entry of those ids, and rolls back with the block."""
    store(db, "tx1", 1, "a")
    store(db, "tx1", 2, "b")
    store(db, "tx2", 1, "a")

    def commit_block_that_fails() -> None:
        with transaction(db):
            assert purge_by_tx_ids(db, ["tx1"]) == 2
            raise RuntimeError("commit failed")

    with pytest.raises(RuntimeError, match="commit failed"):
        commit_block_that_fails()
    assert tx_ids(db) == ["tx1", "tx2"]
    assert purge_by_tx_ids(db, ["tx1", "tx1", "tx9"]) == 2
    assert tx_ids(db) == ["tx2"]
    assert purge_by_tx_ids(db, [f"tx{i}" for i in range(600)]) == 1


def test_entries_endorsed_below_a_height_expire(db: sqlite3.Connection) -> None:
    """Retention: everything endorsed strictly below the height is dropped."""
    store(db, "old", 9, "a")
    store(db, "edge", 10, "a")
    store(db, "new", 11, "a")
    assert purge_below_height(db, 10) == 1
    assert tx_ids(db) == ["edge", "new"]
    assert purge_below_height(db, 10) == 0


def test_bad_input_is_rejected(db: sqlite3.Connection) -> None:
    with pytest.raises(WireError, match="tx1"):
        persist(db, "tx1", 1, b"\xff\xff")
    with pytest.raises(ValueError, match="tx id"):
        persist(db, "", 1, b"")
    with pytest.raises(ValueError, match="negative"):
        persist(db, "tx1", -1, b"")
    assert tx_ids(db) == []
