"""Private data purge (PurgePrivateData), block-to-live expiry, and atomic commits."""

from __future__ import annotations

import sqlite3

import pytest

from peer.ledger.pvtdata import (
    HashedUpdateBatch,
    MissingPrivateData,
    PrivateUpdateBatch,
    PurgeRecord,
    apply_hashed_updates,
    apply_private_updates,
    expire,
    expiring_block,
    get_block_private_data,
    get_collection_private_data,
    get_hashed_version,
    get_private_data,
    get_private_data_hash,
    key_hash,
    list_missing,
    list_purges,
    purge_private_key,
    resolve_missing,
    schedule_expiry,
    store_block_private_data,
    value_hash,
)
from peer.ledger.schema import transaction
from peer.ledger.statedb import (
    UpdateBatch,
    Version,
    apply_updates,
    get_state,
    savepoint,
)
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.unit.peer import pvtdata_fixtures
from tests.unit.peer.pvtdata_fixtures import kv_rwset

NS = "records"
COLL = "patients"


db = pvtdata_fixtures.db


def written(rwset: bytes | None) -> list[tuple[str, bytes | None]]:
    assert rwset is not None
    message = kv_rwset_pb2.KVRWSet.FromString(rwset)
    return [(w.key, None if w.is_delete else w.value) for w in message.writes]


def tx_pvt(rwset: bytes, coll: str = COLL) -> bytes:
    message = rwset_pb2.TxPvtReadWriteSet()
    message.ns_pvt_rwset.add(namespace=NS).collection_pvt_rwset.add(
        collection_name=coll, rwset=rwset
    )
    return message.SerializeToString()


def commit_tx(
    conn: sqlite3.Connection,
    version: Version,
    *writes: tuple[str, bytes | None],
    block_to_live: int = 0,
) -> None:
    """What the committer does for one valid tx writing the collection (a member peer)."""
    hashed, private = HashedUpdateBatch(), PrivateUpdateBatch()
    for key, value in writes:
        if value is None:
            hashed.delete(NS, COLL, key_hash(key), version)
            private.delete(NS, COLL, key, version)
        else:
            hashed.put(
                NS, COLL, key_hash(key), value_hash=value_hash(value), version=version
            )
            private.put(NS, COLL, key, value, version)
    with transaction(conn):
        store_block_private_data(
            conn, version.block_num, {version.tx_num: tx_pvt(kv_rwset(*writes))}
        )
        apply_private_updates(conn, private)
        apply_hashed_updates(conn, hashed)
        schedule_expiry(
            conn,
            block_num=version.block_num,
            ns=NS,
            coll=COLL,
            block_to_live=block_to_live,
            key_hashes=[key_hash(k) for k, v in writes if v is not None],
        )


def purge_tx(
    conn: sqlite3.Connection, version: Version, key: str
) -> tuple[PurgeRecord, ...]:
    """A valid tx calling PurgePrivateData(key): hashed is_purge, private is_delete."""
    hashed, private = HashedUpdateBatch(), PrivateUpdateBatch()
    hashed.purge(NS, COLL, key_hash(key), version)
    private.delete(NS, COLL, key, version)
    with transaction(conn):
        store_block_private_data(
            conn, version.block_num, {version.tx_num: tx_pvt(kv_rwset((key, None)))}
        )
        apply_private_updates(conn, private)
        return apply_hashed_updates(conn, hashed)


# ---------------------------------------------------------------- purge


def test_purge_removes_plaintext_hash_and_every_earlier_version(
    db: sqlite3.Connection,
) -> None:
    """After a purge no stored write set holds the key; other keys stay byte for byte."""
    commit_tx(db, Version(1, 0), ("alice", b"v1"), ("bob", b"b1"))
    commit_tx(db, Version(2, 3), ("alice", b"v2"))
    commit_tx(db, Version(2, 4), ("bob", b"b2"))
    untouched = get_collection_private_data(db, 2, 4, NS, COLL)

    records = purge_tx(db, Version(3, 1), "alice")

    assert get_private_data(db, NS, COLL, "alice") is None
    assert get_private_data_hash(db, NS, COLL, "alice") is None
    assert written(get_collection_private_data(db, 1, 0, NS, COLL)) == [("bob", b"b1")]
    assert written(get_collection_private_data(db, 2, 3, NS, COLL)) == []
    assert get_collection_private_data(db, 2, 4, NS, COLL) == untouched
    assert written(get_collection_private_data(db, 3, 1, NS, COLL)) == [("alice", None)]
    assert get_private_data(db, NS, COLL, "bob") is not None
    assert records == (
        PurgeRecord(
            ns=NS,
            coll=COLL,
            key_hash=key_hash("alice"),
            block_num=3,
            tx_num=1,
            private_state_removed=False,  # the tx's own delete removed it first
            hashed_state_removed=False,
            store_entries_purged=2,
        ),
    )


def test_purges_are_recorded_for_audit_without_the_plaintext_key(
    db: sqlite3.Connection,
) -> None:
    """Each completed purge is listed by block, tx and key hash, oldest first."""
    commit_tx(db, Version(1, 0), ("alice", b"v1"), ("bob", b"b1"))
    purge_tx(db, Version(5, 2), "bob")
    purge_tx(db, Version(3, 0), "alice")
    purge_tx(db, Version(6, 0), "alice")
    audit = [(r.block_num, r.tx_num, r.key_hash) for r in list_purges(db, NS, COLL)]
    assert audit == [
        (3, 0, key_hash("alice")),
        (5, 2, key_hash("bob")),
        (6, 0, key_hash("alice")),
    ]
    assert [r.version for r in list_purges(db, NS, COLL, key_hash=key_hash("bob"))] == [
        Version(5, 2)
    ]
    assert list_purges(db, NS, "other") == []
    stored = db.execute("SELECT * FROM pvt_purge").fetchall()
    assert all(b"alice" not in repr(row).encode() for row in stored)


def test_purge_on_a_peer_without_the_private_write_set(db: sqlite3.Connection) -> None:
    """A peer that left the collection gets only the hashed purge and still purges."""
    commit_tx(db, Version(1, 0), ("alice", b"v1"))
    record = purge_private_key(db, NS, COLL, key_hash("alice"), up_to_block=4, tx_num=0)
    assert record.private_state_removed
    assert record.hashed_state_removed
    assert record.store_entries_purged == 1
    assert get_private_data(db, NS, COLL, "alice") is None
    assert written(get_collection_private_data(db, 1, 0, NS, COLL)) == []


def test_writes_after_the_purge_in_the_same_block_survive(
    db: sqlite3.Connection,
) -> None:
    """A put by a later tx of the purging block is neither deleted nor stripped."""
    commit_tx(db, Version(1, 0), ("alice", b"v1"))
    hashed, private = HashedUpdateBatch(), PrivateUpdateBatch()
    hashed.purge(NS, COLL, key_hash("alice"), Version(2, 0))
    private.delete(NS, COLL, "alice", Version(2, 0))
    hashed.put(
        NS, COLL, key_hash("alice"), value_hash=value_hash(b"v2"), version=Version(2, 1)
    )
    private.put(NS, COLL, "alice", b"v2", Version(2, 1))
    data = {0: tx_pvt(kv_rwset(("alice", None))), 1: tx_pvt(kv_rwset(("alice", b"v2")))}
    with transaction(db):
        apply_hashed_updates(db, hashed)  # purge before the block's data is stored
        apply_private_updates(db, private)
        store_block_private_data(db, 2, data)
    assert get_private_data(db, NS, COLL, "alice") is not None
    assert get_hashed_version(db, NS, COLL, key_hash("alice")) == Version(2, 1)
    assert written(get_collection_private_data(db, 2, 1, NS, COLL)) == [
        ("alice", b"v2")
    ]
    assert written(get_collection_private_data(db, 1, 0, NS, COLL)) == []


def test_data_stored_after_the_purge_for_earlier_txs_is_stripped(
    db: sqlite3.Connection,
) -> None:
    """Write sets of txs older than a purge (same block, or reconciled later) lose the key."""
    purge_private_key(db, NS, COLL, key_hash("alice"), up_to_block=5, tx_num=3)
    store_block_private_data(
        db,
        5,
        {
            2: tx_pvt(kv_rwset(("alice", b"secret"), ("bob", b"b"))),
            4: tx_pvt(kv_rwset(("alice", b"after"))),
        },
        [MissingPrivateData(5, 0, NS, COLL)],
    )
    assert written(get_collection_private_data(db, 5, 2, NS, COLL)) == [("bob", b"b")]
    assert written(get_collection_private_data(db, 5, 4, NS, COLL)) == [
        ("alice", b"after")
    ]
    assert resolve_missing(db, 5, 0, NS, COLL, kv_rwset(("alice", b"older")))
    assert written(get_collection_private_data(db, 5, 0, NS, COLL)) == []
    assert get_private_data(db, NS, COLL, "alice") is None


# ---------------------------------------------------------------- expiry


def test_expiring_block_is_b_plus_btl_plus_one_and_zero_never_expires() -> None:
    assert expiring_block(10, 3) == 14
    assert expiring_block(10, 0) is None
    with pytest.raises(ValueError, match="negative"):
        expiring_block(10, -1)


def test_data_expires_exactly_when_block_b_plus_btl_plus_one_commits(
    db: sqlite3.Connection,
) -> None:
    """BTL 2 at block 5: everything is still there at block 7 and gone at block 8."""
    commit_tx(db, Version(5, 0), ("alice", b"v"), block_to_live=2)
    store_block_private_data(db, 5, {}, [MissingPrivateData(5, 1, NS, COLL)])
    assert expire(db, 7) == 0
    assert get_private_data(db, NS, COLL, "alice") is not None
    assert get_block_private_data(db, 5) != {}

    assert (
        expire(db, 8) == 4
    )  # hashed key, private key, stored write set, missing record

    assert get_private_data(db, NS, COLL, "alice") is None
    assert get_private_data_hash(db, NS, COLL, "alice") is None
    assert get_block_private_data(db, 5) == {}
    assert list_missing(db, 10) == []
    assert expire(db, 9) == 0


def test_a_key_written_again_expires_after_its_last_write(
    db: sqlite3.Connection,
) -> None:
    """The expiry of an overwritten version leaves the newer value alone."""
    commit_tx(db, Version(5, 0), ("alice", b"v1"), ("bob", b"b"), block_to_live=2)
    commit_tx(db, Version(6, 0), ("alice", b"v2"), block_to_live=2)
    assert expire(db, 8) == 3  # bob's hashed and private key, block 5's write set
    assert get_private_data(db, NS, COLL, "alice") is not None
    assert get_private_data(db, NS, COLL, "bob") is None
    assert written(get_collection_private_data(db, 6, 0, NS, COLL)) == [
        ("alice", b"v2")
    ]
    assert expire(db, 9) == 3
    assert get_private_data(db, NS, COLL, "alice") is None


def test_zero_block_to_live_keeps_data_forever(db: sqlite3.Connection) -> None:
    commit_tx(db, Version(1, 0), ("alice", b"v"), block_to_live=0)
    assert expire(db, 1_000_000) == 0
    assert get_private_data(db, NS, COLL, "alice") is not None


# ---------------------------------------------------------------- atomicity


def test_a_failed_block_commit_rolls_back_public_and_private_data_together(
    db: sqlite3.Connection,
) -> None:
    """State, hashed and private state, store, expiry and purge share one transaction."""
    commit_tx(db, Version(1, 0), ("alice", b"v1"), block_to_live=1)
    public = UpdateBatch()
    public.put("records", "counter", b"2", Version(2, 0))

    def commit_block_that_fails() -> None:
        with transaction(db):
            apply_updates(db, public, savepoint=2)
            commit_tx(db, Version(2, 0), ("bob", b"b1"))
            purge_tx(db, Version(2, 1), "alice")
            expire(db, 3)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk"):
        commit_block_that_fails()
    assert get_state(db, "records", "counter") is None
    assert savepoint(db) is None
    assert get_private_data(db, NS, COLL, "alice") is not None
    assert get_private_data(db, NS, COLL, "bob") is None
    assert written(get_collection_private_data(db, 1, 0, NS, COLL)) == [
        ("alice", b"v1")
    ]
    assert list_purges(db, NS, COLL) == []
    assert expire(db, 3) == 3
