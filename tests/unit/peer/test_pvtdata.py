"""Private data: hash rules, hashed and private state, the store by block, missing data."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from common.errors import WireError
from peer.ledger.pvtdata import (
    HashedUpdateBatch,
    HashedValue,
    MissingPrivateData,
    PrivateUpdateBatch,
    apply_hashed_updates,
    apply_private_updates,
    get_block_private_data,
    get_collection_private_data,
    get_hashed_value,
    get_hashed_version,
    get_hashed_versions,
    get_private_data,
    get_private_data_hash,
    get_private_data_metadata,
    get_private_data_range,
    key_hash,
    list_missing,
    mark_eligible,
    pvt_rwset_hash,
    resolve_missing,
    store_block_private_data,
    value_hash,
)
from peer.ledger.statedb import KV, Version, VersionedValue
from protos.ledger.rwset import rwset_pb2
from tests.unit.peer import pvtdata_fixtures
from tests.unit.peer.pvtdata_fixtures import kv_rwset

NS = "records"
COLL = "patients"
POLICY = {"VALIDATION_PARAMETER": b"\x0a\x03org"}


db = pvtdata_fixtures.db


def tx_pvt(*collections: tuple[str, str, bytes]) -> bytes:
    message = rwset_pb2.TxPvtReadWriteSet()
    for ns, coll, rwset in collections:
        ns_rwset = message.ns_pvt_rwset.add(namespace=ns)
        ns_rwset.collection_pvt_rwset.add(collection_name=coll, rwset=rwset)
    return message.SerializeToString()


def collections_of(
    message: rwset_pb2.TxPvtReadWriteSet,
) -> list[tuple[str, str, bytes]]:
    return [
        (ns.namespace, coll.collection_name, coll.rwset)
        for ns in message.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    ]


def commit_hashed(
    conn: sqlite3.Connection, version: Version, *writes: tuple[str, bytes | None]
) -> None:
    batch = HashedUpdateBatch()
    for key, value in writes:
        if value is None:
            batch.delete(NS, COLL, key_hash(key), version)
        else:
            batch.put(
                NS, COLL, key_hash(key), value_hash=value_hash(value), version=version
            )
    apply_hashed_updates(conn, batch)


def commit_private(
    conn: sqlite3.Connection, version: Version, *writes: tuple[str, bytes | None]
) -> None:
    batch = PrivateUpdateBatch()
    for key, value in writes:
        if value is None:
            batch.delete(NS, COLL, key, version)
        else:
            batch.put(NS, COLL, key, value, version)
    apply_private_updates(conn, batch)


# ---------------------------------------------------------------- hash rules


def test_hash_rules_are_sha256_of_key_utf8_value_and_marshaled_rwset() -> None:
    """Key, value and write-set hashes equal hashlib's SHA-256 of the documented bytes."""
    rwset = kv_rwset(("patient-é", b"\x00\xff"))
    assert key_hash("patient-é") == hashlib.sha256("patient-é".encode()).digest()
    assert value_hash(b"\x00\xff") == hashlib.sha256(b"\x00\xff").digest()
    assert pvt_rwset_hash(rwset) == hashlib.sha256(rwset).digest()
    assert len(key_hash("")) == 32


# ---------------------------------------------------------------- hashed state


def test_private_data_hash_is_readable_without_any_plaintext(
    db: sqlite3.Connection,
) -> None:
    """A non-member peer has only hashed state; GetPrivateDataHash still answers."""
    commit_hashed(db, Version(4, 2), ("alice", b"blood type O"))
    assert get_private_data_hash(db, NS, COLL, "alice") == value_hash(b"blood type O")
    assert get_hashed_version(db, NS, COLL, key_hash("alice")) == Version(4, 2)
    assert get_private_data(db, NS, COLL, "alice") is None
    assert get_private_data_hash(db, NS, COLL, "bob") is None
    assert get_private_data_hash(db, NS, "other", "alice") is None


def test_hashed_delete_removes_entry_and_later_write_in_batch_wins(
    db: sqlite3.Connection,
) -> None:
    """Batch writes to one key hash combine in transaction order, as public state does."""
    commit_hashed(db, Version(1, 0), ("alice", b"v1"), ("bob", b"b1"))
    batch = HashedUpdateBatch()
    batch.delete(NS, COLL, key_hash("alice"), Version(2, 0))
    batch.put(NS, COLL, key_hash("alice"), value_hash=b"h" * 32, version=Version(2, 1))
    batch.delete(NS, COLL, key_hash("bob"), Version(2, 2))
    assert len(batch) == 2
    apply_hashed_updates(db, batch)
    assert get_hashed_value(db, NS, COLL, key_hash("alice")) == HashedValue(
        b"h" * 32, Version(2, 1)
    )
    assert get_hashed_version(db, NS, COLL, key_hash("bob")) is None


def test_hashed_metadata_is_kept_by_value_writes_and_moved_by_metadata_writes(
    db: sqlite3.Connection,
) -> None:
    """Key-level endorsement metadata on a key hash survives value-only puts."""
    batch = HashedUpdateBatch()
    batch.put(
        NS, COLL, key_hash("k"), value_hash=b"1", version=Version(1, 0), metadata=POLICY
    )
    apply_hashed_updates(db, batch)
    batch = HashedUpdateBatch()
    batch.put(NS, COLL, key_hash("k"), value_hash=b"2", version=Version(2, 0))
    apply_hashed_updates(db, batch)
    assert get_hashed_value(db, NS, COLL, key_hash("k")) == HashedValue(
        b"2", Version(2, 0), POLICY
    )
    batch = HashedUpdateBatch()
    batch.put_metadata(NS, COLL, key_hash("k"), {}, Version(3, 1))
    batch.put_metadata(NS, COLL, key_hash("absent"), POLICY, Version(3, 2))
    apply_hashed_updates(db, batch)
    assert get_hashed_value(db, NS, COLL, key_hash("k")) == HashedValue(
        b"2", Version(3, 1)
    )
    assert get_hashed_value(db, NS, COLL, key_hash("absent")) is None


def test_hashed_versions_in_bulk_leave_out_absent_keys(db: sqlite3.Connection) -> None:
    """The MVCC helper returns one version per present key hash."""
    commit_hashed(db, Version(1, 0), ("a", b"1"), ("b", b"2"))
    keys = [
        (NS, COLL, key_hash("a")),
        (NS, COLL, key_hash("zz")),
        (NS, COLL, key_hash("a")),
    ]
    assert get_hashed_versions(db, keys) == {(NS, COLL, key_hash("a")): Version(1, 0)}


# ---------------------------------------------------------------- private state


def test_private_state_point_reads_metadata_and_deletes(db: sqlite3.Connection) -> None:
    """Plaintext values come back byte for byte with version and metadata."""
    json_value = b'{"name": "alice", "age": 42}'
    batch = PrivateUpdateBatch()
    batch.put(NS, COLL, "alice", json_value, Version(1, 0), metadata=POLICY)
    batch.put(NS, COLL, "bob", b"\x00raw", Version(1, 1))
    apply_private_updates(db, batch)
    assert get_private_data(db, NS, COLL, "alice") == VersionedValue(
        json_value, Version(1, 0), POLICY
    )
    assert get_private_data_metadata(db, NS, COLL, "bob") == {}
    assert get_private_data_metadata(db, NS, COLL, "nobody") is None
    assert get_private_data(db, NS, "other", "alice") is None

    batch = PrivateUpdateBatch()
    batch.put(NS, COLL, "alice", b"new", Version(2, 0))
    batch.delete(NS, COLL, "bob", Version(2, 1))
    apply_private_updates(db, batch)
    assert get_private_data(db, NS, COLL, "alice") == VersionedValue(
        b"new", Version(2, 0), POLICY
    )
    assert get_private_data(db, NS, COLL, "bob") is None


def test_private_range_is_start_inclusive_end_exclusive_within_the_collection(
    db: sqlite3.Connection,
) -> None:
    """Ranges follow the public state's rules and never cross into another collection."""
    commit_private(db, Version(1, 0), ("a", b"1"), ("b", b"2"), ("c", b"3"))
    batch = PrivateUpdateBatch()
    batch.put(NS, "other", "b2", b"x", Version(1, 1))
    apply_private_updates(db, batch)
    keys = [kv.key for kv in get_private_data_range(db, NS, COLL, "b", "")]
    assert keys == ["b", "c"]
    assert list(get_private_data_range(db, NS, COLL, "", "b")) == [
        KV("a", b"1", Version(1, 0))
    ]
    assert list(get_private_data_range(db, NS, COLL, "c", "c")) == []


# ---------------------------------------------------------------- store by block


def test_block_private_data_round_trips_exact_bytes_and_filters(
    db: sqlite3.Connection,
) -> None:
    """Stored write sets come back unchanged, per tx, keeping only accepted collections."""
    patients = kv_rwset(("alice", b"O+"))
    billing = kv_rwset(("alice", b"100"), ("bob", None))
    store_block_private_data(
        db,
        7,
        {
            0: tx_pvt((NS, COLL, patients), (NS, "billing", billing)),
            3: tx_pvt((NS, "billing", billing)),
        },
    )
    data = get_block_private_data(db, 7)
    assert sorted(data) == [0, 3]
    assert collections_of(data[0]) == [(NS, "billing", billing), (NS, COLL, patients)]
    only_patients = get_block_private_data(db, 7, lambda ns, coll: coll == COLL)
    assert {tx: collections_of(m) for tx, m in only_patients.items()} == {
        0: [(NS, COLL, patients)]
    }
    assert get_collection_private_data(db, 7, 3, NS, "billing") == billing
    assert get_collection_private_data(db, 7, 1, NS, "billing") is None
    assert get_block_private_data(db, 8) == {}


def test_undecodable_private_data_is_rejected_and_nothing_is_stored(
    db: sqlite3.Connection,
) -> None:
    """A bad write set in one tx fails the whole call with a WireError naming the tx."""
    good = tx_pvt((NS, COLL, kv_rwset(("a", b"1"))))
    bad_collection = tx_pvt((NS, COLL, b"\xff\xff"))
    with pytest.raises(WireError, match="block 2 tx 1"):
        store_block_private_data(db, 2, {0: good, 1: bad_collection})
    with pytest.raises(WireError):
        store_block_private_data(db, 2, {0: b"\x0a"})
    assert get_block_private_data(db, 2) == {}


# ---------------------------------------------------------------- missing data


def test_missing_data_is_listed_newest_first_by_eligibility(
    db: sqlite3.Connection,
) -> None:
    """Reconciliation sees eligible records newest first; ineligible ones wait for membership."""
    store_block_private_data(db, 1, {}, [MissingPrivateData(1, 0, NS, COLL)])
    store_block_private_data(
        db,
        2,
        {},
        [
            MissingPrivateData(2, 0, NS, COLL),
            MissingPrivateData(2, 5, NS, "billing", False),
        ],
    )
    assert list_missing(db, 10) == [
        MissingPrivateData(2, 0, NS, COLL),
        MissingPrivateData(1, 0, NS, COLL),
    ]
    assert list_missing(db, 1) == [MissingPrivateData(2, 0, NS, COLL)]
    assert list_missing(db, 10, eligible=False) == [
        MissingPrivateData(2, 5, NS, "billing", False)
    ]
    assert mark_eligible(db, NS, "billing") == 1
    assert MissingPrivateData(2, 5, NS, "billing", True) in list_missing(db, 10)
    with pytest.raises(ValueError, match="block 3"):
        store_block_private_data(db, 2, {}, [MissingPrivateData(3, 0, NS, COLL)])


def test_resolved_missing_data_is_stored_and_brings_private_state_up_to_date(
    db: sqlite3.Connection,
) -> None:
    """Reconciled writes land in the store; state takes those whose hash version still matches."""
    commit_private(db, Version(1, 0), ("bob", b"old"), ("carol", b"old"))
    commit_hashed(db, Version(3, 0), ("alice", b"new"), ("bob", b"B"), ("carol", None))
    commit_hashed(db, Version(4, 0), ("bob", b"later"))
    store_block_private_data(db, 3, {}, [MissingPrivateData(3, 0, NS, COLL)])
    rwset = kv_rwset(("alice", b"new"), ("bob", b"B"), ("carol", None))

    assert resolve_missing(db, 3, 0, NS, COLL, rwset) is True

    assert get_collection_private_data(db, 3, 0, NS, COLL) == rwset
    assert list_missing(db, 10) == []
    assert get_private_data(db, NS, COLL, "alice") == VersionedValue(
        b"new", Version(3, 0)
    )
    assert get_private_data(db, NS, COLL, "bob") == VersionedValue(
        b"old", Version(1, 0)
    )
    assert get_private_data(db, NS, COLL, "carol") is None


def test_resolving_data_that_is_not_missing_changes_nothing(
    db: sqlite3.Connection,
) -> None:
    """Data for a record that does not exist (or expired) is not stored."""
    assert resolve_missing(db, 3, 0, NS, COLL, kv_rwset(("a", b"1"))) is False
    assert get_block_private_data(db, 3) == {}
    store_block_private_data(db, 3, {}, [MissingPrivateData(3, 0, NS, COLL)])
    with pytest.raises(WireError):
        resolve_missing(db, 3, 0, NS, COLL, b"\xff")
    assert list_missing(db, 10) == [MissingPrivateData(3, 0, NS, COLL)]
