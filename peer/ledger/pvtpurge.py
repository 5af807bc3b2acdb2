"""Purging a private key with all its history (Fabric 2.5 `PurgePrivateData`).

When a valid transaction at (block P, tx T) carries a hashed write with
`is_purge`, every peer of the channel removes, in the block's SQLite
transaction: the key's plaintext from the private state (found by key hash, so
a peer that has since left the collection purges too), the hashed state entry,
and the key's reads and writes from every private write set stored for an
earlier transaction (< (P, T)); the hashes in the blocks stay. Writes made after
the purge, even later in the same block, are kept.

Each purge leaves a record (namespace, collection, key hash, block, tx and what
was removed) that stays forever: it makes the purge auditable, and it is the
purge marker that keeps purged keys out of private data stored later for older
transactions (reconciliation, or a block whose data is stored after the purge
ran). The plaintext key is never recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from common.errors import WireError
from peer.errors import LedgerError
from peer.ledger.pvtrwset import without_keys
from peer.ledger.schema import transaction
from peer.ledger.statedb import Version

__all__ = [
    "PurgeRecord",
    "has_purges",
    "list_channel_purges",
    "list_purges",
    "purge_private_key",
    "purged_after",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeRecord:
    """The audit record of one completed purge, named by the purging transaction."""

    ns: str
    coll: str
    key_hash: bytes
    block_num: int
    tx_num: int
    private_state_removed: bool
    hashed_state_removed: bool
    store_entries_purged: int

    @property
    def version(self) -> Version:
        return Version(self.block_num, self.tx_num)


_BEFORE = "AND (block_num, tx_num) < (?, ?)"
# Without statistics SQLite would walk the whole collection by primary key.
_DELETE_PRIVATE = (
    "DELETE FROM pvt_state INDEXED BY pvt_state_by_hash "
    f"WHERE ns = ? AND coll = ? AND key_hash = ? {_BEFORE}"
)
_DELETE_HASHED = (
    f"DELETE FROM pvt_hashed WHERE ns = ? AND coll = ? AND key_hash = ? {_BEFORE}"
)
_INDEXED = (
    f"SELECT block_num, tx_num FROM pvt_store_key "
    f"WHERE ns = ? AND coll = ? AND key_hash = ? {_BEFORE} ORDER BY block_num, tx_num"
)
_DELETE_INDEXED = (
    f"DELETE FROM pvt_store_key WHERE ns = ? AND coll = ? AND key_hash = ? {_BEFORE}"
)
_STORED = (
    "SELECT rwset FROM pvt_store "
    "WHERE block_num = ? AND tx_num = ? AND ns = ? AND coll = ?"
)
_REWRITE = (
    "UPDATE pvt_store SET rwset = ? "
    "WHERE block_num = ? AND tx_num = ? AND ns = ? AND coll = ?"
)
_RECORD = "INSERT OR IGNORE INTO pvt_purge VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_RECORD_COLUMNS = (
    "ns, coll, key_hash, block_num, tx_num, "
    "private_state_removed, hashed_state_removed, store_entries_purged"
)


def purge_private_key(
    conn: sqlite3.Connection,
    ns: str,
    coll: str,
    key_hash: bytes,
    *,
    up_to_block: int,
    tx_num: int,
) -> PurgeRecord:
    """Purge the key hash's plaintext, hashed entry and stored history before (up_to_block, tx_num).

    (up_to_block, tx_num) is the purging transaction. Atomic; joins an
    enclosing transaction. Purging the same key again by the same transaction
    keeps the first record.

    Raises:
        LedgerError: a stored write set no longer decodes.
    """
    key_hash = bytes(key_hash)
    where = (ns, coll, key_hash, up_to_block, tx_num)
    with transaction(conn):
        private_removed = conn.execute(_DELETE_PRIVATE, where).rowcount > 0
        hashed_removed = conn.execute(_DELETE_HASHED, where).rowcount > 0
        store_entries = _purge_store(conn, where)
        record = PurgeRecord(
            ns=ns,
            coll=coll,
            key_hash=key_hash,
            block_num=up_to_block,
            tx_num=tx_num,
            private_state_removed=private_removed,
            hashed_state_removed=hashed_removed,
            store_entries_purged=store_entries,
        )
        conn.execute(_RECORD, _record_row(record))
    return record


def _purge_store(
    conn: sqlite3.Connection, where: tuple[str, str, bytes, int, int]
) -> int:
    """Remove the key from every stored write set it occurs in; returns how many."""
    ns, coll, key_hash, _, _ = where
    locations = conn.execute(_INDEXED, where).fetchall()
    rewritten = 0
    for block_num, tx_num in locations:
        row = conn.execute(_STORED, (block_num, tx_num, ns, coll)).fetchone()
        if row is None:
            continue
        try:
            trimmed = without_keys(
                row[0], {key_hash}, what=f"stored private write set {ns}/{coll}"
            )
        except WireError as error:
            raise LedgerError(
                f"private data store: write set of block {block_num} tx {tx_num} "
                f"collection {ns}/{coll} is corrupt: {error}"
            ) from error
        conn.execute(_REWRITE, (trimmed, block_num, tx_num, ns, coll))
        rewritten += 1
    conn.execute(_DELETE_INDEXED, where)
    return rewritten


def _record_row(record: PurgeRecord) -> tuple[str, str, bytes, int, int, int, int, int]:
    return (
        record.ns,
        record.coll,
        record.key_hash,
        record.block_num,
        record.tx_num,
        int(record.private_state_removed),
        int(record.hashed_state_removed),
        record.store_entries_purged,
    )


def list_purges(
    conn: sqlite3.Connection, ns: str, coll: str, *, key_hash: bytes | None = None
) -> list[PurgeRecord]:
    """The completed purges of a collection (optionally of one key hash), oldest first."""
    sql = f"SELECT {_RECORD_COLUMNS} FROM pvt_purge WHERE ns = ? AND coll = ?"
    params: tuple[str | bytes, ...] = (ns, coll)
    if key_hash is not None:
        sql += " AND key_hash = ?"
        params += (bytes(key_hash),)
    rows = conn.execute(f"{sql} ORDER BY block_num, tx_num, key_hash", params)
    return [_record(row) for row in rows]


def list_channel_purges(
    conn: sqlite3.Connection, *, ns: str | None = None, coll: str | None = None
) -> list[PurgeRecord]:
    """The channel's completed purges (optionally of one namespace and/or collection),
    oldest first: what `medledger peer purges` shows an auditor."""
    where = [(column, value) for column, value in (("ns", ns), ("coll", coll)) if value]
    sql = f"SELECT {_RECORD_COLUMNS} FROM pvt_purge"
    if where:
        sql += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in where)
    sql += " ORDER BY block_num, tx_num, ns, coll, key_hash"
    return [_record(row) for row in conn.execute(sql, [value for _, value in where])]


def _record(row: tuple[str, str, bytes, int, int, int, int, int]) -> PurgeRecord:
    ns, coll, key_hash, block_num, tx_num, private_removed, hashed_removed, store = row
    return PurgeRecord(
        ns=ns,
        coll=coll,
        key_hash=key_hash,
        block_num=block_num,
        tx_num=tx_num,
        private_state_removed=bool(private_removed),
        hashed_state_removed=bool(hashed_removed),
        store_entries_purged=store,
    )


def has_purges(conn: sqlite3.Connection, ns: str, coll: str) -> bool:
    """Whether any key of the collection was ever purged (one index probe)."""
    row = conn.execute(
        "SELECT 1 FROM pvt_purge WHERE ns = ? AND coll = ? LIMIT 1", (ns, coll)
    ).fetchone()
    return row is not None


def purged_after(
    conn: sqlite3.Connection,
    ns: str,
    coll: str,
    version: Version,
    key_hashes: Iterable[bytes],
) -> set[bytes]:
    """The key hashes purged by a transaction later than `version`.

    Their plaintext written at `version` must not be stored any more.
    """
    if not has_purges(conn, ns, coll):
        return set()
    sql = (
        "SELECT 1 FROM pvt_purge WHERE ns = ? AND coll = ? AND key_hash = ? "
        "AND (block_num, tx_num) > (?, ?) LIMIT 1"
    )
    return {
        hashed
        for hashed in set(key_hashes)
        if conn.execute(
            sql, (ns, coll, hashed, version.block_num, version.tx_num)
        ).fetchone()
        is not None
    }
