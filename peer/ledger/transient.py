"""The transient store: private write sets between endorsement and commit.

An endorser keeps the private write set it simulated, and a member peer the
ones pushed to it, as `TxPvtReadWriteSetWithConfigInfo` by tx id with the
ledger height at endorsement, until the transaction's block commits. A tx id
may have several entries (one per endorsement or dissemination source);
identical entries are stored once. The committer removes a block's tx ids in the
block's SQLite transaction (`purge_by_tx_ids`), and entries older than the
configured retention are dropped with `purge_below_height` (Fabric's
`transientstoreMaxBlockRetention`). The table belongs to the schema component
"transient"; call `ensure` once after opening the channel database.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from common.errors import WireError
from peer.errors import LedgerError
from peer.ledger.pvtrwset import CollectionFilter, decode, filter_with_config
from peer.ledger.schema import migrate, transaction
from protos.transientstore import transientstore_pb2

__all__ = [
    "TRANSIENT_MIGRATIONS",
    "TransientEntry",
    "ensure",
    "get_by_tx_id",
    "persist",
    "purge_below_height",
    "purge_by_tx_ids",
    "tx_ids",
]

TRANSIENT_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE transient (
            seq       INTEGER PRIMARY KEY,
            tx_id     TEXT    NOT NULL,
            height    INTEGER NOT NULL,
            digest    BLOB    NOT NULL,
            data      BLOB    NOT NULL,
            UNIQUE (tx_id, height, digest)
        )""",
        "CREATE INDEX transient_by_height ON transient (height)",
    ),
)

_WithConfig = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo
_CHUNK = 250


class TransientEntry(NamedTuple):
    """One stored private write set with the ledger height at which it was endorsed."""

    height: int
    pvt_rwset: transientstore_pb2.TxPvtReadWriteSetWithConfigInfo


def ensure(conn: sqlite3.Connection) -> None:
    """Create or upgrade the transient store's table (schema component "transient")."""
    migrate(conn, "transient", TRANSIENT_MIGRATIONS)


def persist(
    conn: sqlite3.Connection, tx_id: str, endorsed_at_height: int, data: bytes
) -> None:
    """Keep a marshaled `TxPvtReadWriteSetWithConfigInfo` for `tx_id` until its block commits.

    Raises:
        WireError: `data` does not decode.
        ValueError: empty tx id or negative height.
    """
    if not tx_id:
        raise ValueError("transient private data needs a tx id")
    if endorsed_at_height < 0:
        raise ValueError(f"height must not be negative, got {endorsed_at_height}")
    data = bytes(data)
    decode(_WithConfig, data, what=f"transient private data of tx {tx_id}")
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO transient (tx_id, height, digest, data) "
            "VALUES (?, ?, ?, ?)",
            (tx_id, endorsed_at_height, hashlib.sha256(data).digest(), data),
        )


def get_by_tx_id(
    conn: sqlite3.Connection,
    tx_id: str,
    filter: CollectionFilter | None = None,
) -> list[TransientEntry]:
    """The entries of a tx id in the order they arrived, keeping only collections `filter` accepts.

    Raises:
        LedgerError: a stored entry no longer decodes.
    """
    rows = conn.execute(
        "SELECT height, data FROM transient WHERE tx_id = ? ORDER BY seq", (tx_id,)
    ).fetchall()
    entries: list[TransientEntry] = []
    for height, data in rows:
        message = _decode_stored(tx_id, data)
        if filter is not None:
            message = filter_with_config(message, filter)
        entries.append(TransientEntry(height, message))
    return entries


def _decode_stored(tx_id: str, data: bytes) -> _WithConfig:
    try:
        return decode(_WithConfig, data, what=f"stored transient data of tx {tx_id}")
    except WireError as error:
        raise LedgerError(f"transient store is corrupt: {error}") from error


def purge_by_tx_ids(conn: sqlite3.Connection, tx_ids: Iterable[str]) -> int:
    """Drop every entry of the tx ids (their block committed); returns how many entries.

    Atomic; joins an enclosing transaction (the block's commit).
    """
    unique = list(dict.fromkeys(tx_ids))
    removed = 0
    with transaction(conn):
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            cursor = conn.execute(
                f"DELETE FROM transient WHERE tx_id IN ({marks})", chunk
            )
            removed += cursor.rowcount
    return removed


def purge_below_height(conn: sqlite3.Connection, height: int) -> int:
    """Drop the entries endorsed below `height` (retention expired); returns how many."""
    with transaction(conn):
        cursor = conn.execute("DELETE FROM transient WHERE height < ?", (height,))
    return cursor.rowcount


def tx_ids(conn: sqlite3.Connection) -> list[str]:
    """The tx ids with at least one entry, sorted."""
    rows = conn.execute("SELECT DISTINCT tx_id FROM transient ORDER BY tx_id")
    return [tx_id for (tx_id,) in rows]
