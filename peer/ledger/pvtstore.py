"""The private data store: the private write sets this peer committed, by block and tx.

One row per (block, tx, namespace, collection) holds the collection's private
write set (a marshaled `KVRWSet`, kept byte for byte so its hash still matches
the block) and an index row per key hash, which lets a purge find every stored
version of a key. It serves `DeliverWithPrivateData` and other peers'
reconciliation requests.

Private data that an eligible (or ineligible) peer did not get at commit time
is recorded as missing per (block, tx, namespace, collection); reconciliation
lists the records newest first and fills them with `resolve_missing` once the
caller has checked the data against the block's hashes.

Write sets are stored in the block's SQLite transaction; keys that a later
transaction has already purged are left out of what is stored (see
`peer.ledger.pvtpurge`). `get_block_private_data` rebuilds each transaction's
`TxPvtReadWriteSet` with namespaces and collections in name order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from peer.ledger.hashed import get_hashed_value
from peer.ledger.pvtpurge import has_purges, purged_after
from peer.ledger.pvtrwset import (
    CollectionFilter,
    CollectionRwSet,
    build_tx_pvt_rwset,
    decode_kv_rwset,
    key_hash,
    rwset_keys,
    split_tx_pvt_rwset,
    without_keys,
)
from peer.ledger.pvtstate import (
    PrivateUpdateBatch,
    apply_private_updates,
    get_private_data,
)
from peer.ledger.schema import transaction
from peer.ledger.statedb import Version
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = [
    "MissingPrivateData",
    "get_block_private_data",
    "get_collection_private_data",
    "list_missing",
    "mark_eligible",
    "resolve_missing",
    "store_block_private_data",
]


@dataclass(frozen=True, slots=True)
class MissingPrivateData:
    """A collection's private write set of a valid transaction that this peer lacks.

    `eligible` is False when this peer's org is not a member of the collection:
    the record is kept so the data can be fetched if the org joins later.
    """

    block_num: int
    tx_num: int
    ns: str
    coll: str
    eligible: bool = True


_INSERT = "INSERT OR REPLACE INTO pvt_store VALUES (?, ?, ?, ?, ?)"
_INDEX = "INSERT OR IGNORE INTO pvt_store_key VALUES (?, ?, ?, ?, ?)"
_INSERT_MISSING = "INSERT OR REPLACE INTO pvt_missing VALUES (?, ?, ?, ?, ?)"
_MISSING_WHERE = "WHERE block_num = ? AND tx_num = ? AND ns = ? AND coll = ?"


def store_block_private_data(
    conn: sqlite3.Connection,
    block_num: int,
    data: Mapping[int, bytes],
    missing: Iterable[MissingPrivateData] = (),
) -> None:
    """Store a block's private write sets and its missing-data records.

    `data` maps tx number → marshaled `TxPvtReadWriteSet` of that transaction.

    Atomic; joins the block's transaction. Storing a block again replaces its rows.

    Raises:
        WireError: a write set does not decode.
        ValueError: a missing-data record names another block.
    """
    missing = tuple(missing)
    for record in missing:
        if record.block_num != block_num:
            raise ValueError(
                f"missing private data of block {record.block_num} "
                f"stored with block {block_num}"
            )
    collections = [
        (Version(block_num, tx_num), collection)
        for tx_num, tx_data in sorted(data.items())
        for collection in split_tx_pvt_rwset(
            tx_data, what=f"private data of block {block_num} tx {tx_num}"
        )
    ]
    with transaction(conn):
        purging = {
            pair
            for pair in {(c.ns, c.coll) for _, c in collections}
            if has_purges(conn, *pair)
        }
        _write(
            conn,
            [
                _prepare(conn, version, c, check_purges=(c.ns, c.coll) in purging)
                for version, c in collections
            ],
        )
        conn.executemany(_INSERT_MISSING, [_missing_row(m) for m in missing])


@dataclass(frozen=True, slots=True)
class _Stored:
    """A collection write set as it is stored: trimmed of purged keys, decoded, key hashes."""

    version: Version
    collection: CollectionRwSet
    kv_rwset: kv_rwset_pb2.KVRWSet
    key_hashes: frozenset[bytes]


def _prepare(
    conn: sqlite3.Connection,
    version: Version,
    collection: CollectionRwSet,
    *,
    check_purges: bool = True,
) -> _Stored:
    """Decode a collection write set and drop the keys a later transaction purged."""
    ns, coll = collection.ns, collection.coll
    what = f"private write set {ns}/{coll} of block {version.block_num} tx {version.tx_num}"
    kv_rwset = decode_kv_rwset(collection.rwset, what=what)
    hashes = frozenset(key_hash(key) for key in rwset_keys(kv_rwset))
    purged = purged_after(conn, ns, coll, version, hashes) if check_purges else set()
    if not purged:
        return _Stored(version, collection, kv_rwset, hashes)
    trimmed = without_keys(collection.rwset, purged, what=what)
    return _Stored(
        version,
        CollectionRwSet(ns, coll, trimmed),
        decode_kv_rwset(trimmed, what=what),
        hashes - purged,
    )


def _write(conn: sqlite3.Connection, stored: Sequence[_Stored]) -> None:
    """Insert the write sets and their key index rows, each in key order."""
    rows = sorted(
        (
            s.version.block_num,
            s.version.tx_num,
            s.collection.ns,
            s.collection.coll,
            s.collection.rwset,
        )
        for s in stored
    )
    conn.executemany(_INSERT, rows)
    index = sorted(
        (
            s.collection.ns,
            s.collection.coll,
            hashed,
            s.version.block_num,
            s.version.tx_num,
        )
        for s in stored
        for hashed in s.key_hashes
    )
    conn.executemany(_INDEX, index)


def _missing_row(record: MissingPrivateData) -> tuple[int, int, str, str, int]:
    return (
        record.block_num,
        record.tx_num,
        record.ns,
        record.coll,
        int(record.eligible),
    )


def get_block_private_data(
    conn: sqlite3.Connection,
    block_num: int,
    filter: CollectionFilter | None = None,
) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
    """The stored private write sets of a block by tx number, only collections `filter` accepts.

    Transactions with no (accepted) stored collection are left out.
    """
    rows = conn.execute(
        "SELECT tx_num, ns, coll, rwset FROM pvt_store WHERE block_num = ? "
        "ORDER BY tx_num, ns, coll",
        (block_num,),
    )
    wanted = (
        (tx_num, CollectionRwSet(ns, coll, rwset))
        for tx_num, ns, coll, rwset in rows
        if filter is None or filter(ns, coll)
    )
    return {
        tx_num: build_tx_pvt_rwset(collection for _, collection in group)
        for tx_num, group in groupby(wanted, key=lambda item: item[0])
    }


def get_collection_private_data(
    conn: sqlite3.Connection, block_num: int, tx_num: int, ns: str, coll: str
) -> bytes | None:
    """One stored collection write set (marshaled KVRWSet), or None when not stored."""
    row = conn.execute(
        "SELECT rwset FROM pvt_store "
        "WHERE block_num = ? AND tx_num = ? AND ns = ? AND coll = ?",
        (block_num, tx_num, ns, coll),
    ).fetchone()
    return None if row is None else bytes(row[0])


# ---------------------------------------------------------------- missing data


def list_missing(
    conn: sqlite3.Connection, limit: int, *, eligible: bool = True
) -> list[MissingPrivateData]:
    """Up to `limit` missing-data records, newest block first (eligible ones by default)."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    rows = conn.execute(
        "SELECT block_num, tx_num, ns, coll, eligible FROM pvt_missing "
        "WHERE eligible = ? "
        "ORDER BY block_num DESC, tx_num DESC, ns DESC, coll DESC LIMIT ?",
        (int(eligible), limit),
    )
    return [MissingPrivateData(b, t, ns, coll, bool(e)) for b, t, ns, coll, e in rows]


def mark_eligible(conn: sqlite3.Connection, ns: str, coll: str) -> int:
    """Make a collection's ineligible records eligible (this org joined it); returns how many."""
    with transaction(conn):
        cursor = conn.execute(
            "UPDATE pvt_missing SET eligible = 1 "
            "WHERE ns = ? AND coll = ? AND eligible = 0",
            (ns, coll),
        )
    return cursor.rowcount


def resolve_missing(
    conn: sqlite3.Connection,
    block_num: int,
    tx_num: int,
    ns: str,
    coll: str,
    rwset: bytes,
) -> bool:
    """Store reconciled private data for a missing record; False if nothing was missing.

    The caller has verified `rwset` against the block's hashes. Keys purged since
    are dropped; the private state takes the data where the hashed state still
    holds this version (a put) or the plaintext is older (a delete). Atomic;
    joins an enclosing transaction.

    Raises:
        WireError: `rwset` does not decode.
    """
    version = Version(block_num, tx_num)
    collection = CollectionRwSet(ns, coll, bytes(rwset))
    decode_kv_rwset(collection.rwset, what=f"reconciled private write set {ns}/{coll}")
    where = (block_num, tx_num, ns, coll)
    with transaction(conn):
        if (
            conn.execute(
                f"SELECT 1 FROM pvt_missing {_MISSING_WHERE}", where
            ).fetchone()
            is None
        ):
            return False
        stored = _prepare(conn, version, collection)
        _write(conn, [stored])
        conn.execute(f"DELETE FROM pvt_missing {_MISSING_WHERE}", where)
        apply_private_updates(conn, _catch_up(conn, ns, coll, version, stored.kv_rwset))
    return True


def _catch_up(
    conn: sqlite3.Connection,
    ns: str,
    coll: str,
    version: Version,
    kv_rwset: kv_rwset_pb2.KVRWSet,
) -> PrivateUpdateBatch:
    """The private state updates that reconciled writes at `version` still make."""
    batch = PrivateUpdateBatch()
    for write in kv_rwset.writes:
        if write.is_delete:
            current = get_private_data(conn, ns, coll, write.key)
            if current is not None and current.version < version:
                batch.delete(ns, coll, write.key, version)
            continue
        hashed = get_hashed_value(conn, ns, coll, key_hash(write.key))
        if hashed is not None and hashed.version == version:
            batch.put(
                ns, coll, write.key, write.value, version, metadata=hashed.metadata
            )
    return batch
