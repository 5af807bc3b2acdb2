"""Block-to-live: private data of a collection with `block_to_live` n is kept n blocks.

Data written at block b expires when block b + n + 1 commits (0 = never). At
write time the committer schedules, per (namespace, collection) the block
wrote, the collection's entries in the private data store and its missing-data
records, and per non-deleted key hash the key's hashed and plaintext state. When
block E commits, `expire(E)` removes everything scheduled for E or earlier:
the block's stored write sets and missing records, and each key whose state
still has the version block b (a key written again since has its own, later
expiry). Both schedule and expiry join the block's SQLite transaction, so the
order relative to the block's own writes does not matter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from peer.ledger.schema import transaction

__all__ = ["expire", "expiring_block", "schedule_expiry"]


def expiring_block(block_num: int, block_to_live: int) -> int | None:
    """The block whose commit expires data written at `block_num`; None when it never expires."""
    if block_to_live < 0:
        raise ValueError(f"block_to_live must not be negative, got {block_to_live}")
    return None if block_to_live == 0 else block_num + block_to_live + 1


def schedule_expiry(
    conn: sqlite3.Connection,
    *,
    block_num: int,
    ns: str,
    coll: str,
    block_to_live: int,
    key_hashes: Iterable[bytes] = (),
) -> None:
    """Schedule the expiry of what block `block_num` wrote to a collection.

    Call it once per collection that the block's valid transactions wrote to
    (hashed write sets), whether or not this peer has the plaintext, with the
    hashes of the keys they wrote a value or metadata to (not deleted ones).
    Atomic; joins an enclosing transaction; scheduling twice is harmless.
    """
    expiring = expiring_block(block_num, block_to_live)
    if expiring is None:
        return
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO pvt_expiry_block VALUES (?, ?, ?, ?)",
            (expiring, ns, coll, block_num),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO pvt_expiry_key VALUES (?, ?, ?, ?, ?)",
            [
                (expiring, ns, coll, bytes(h), block_num)
                for h in dict.fromkeys(key_hashes)
            ],
        )


_DUE_KEYS = (
    "SELECT ns, coll, key_hash, committing_block FROM pvt_expiry_key "
    "WHERE expiring_block <= ?"
)
_DUE_BLOCKS = (
    "SELECT committing_block, ns, coll FROM pvt_expiry_block WHERE expiring_block <= ?"
)
# Without statistics SQLite would walk the whole collection by primary key.
_BY_HASH = "INDEXED BY pvt_state_by_hash"
_KEY_WHERE = "WHERE ns = ? AND coll = ? AND key_hash = ? AND block_num = ?"
_BLOCK_WHERE = "WHERE block_num = ? AND ns = ? AND coll = ?"


def expire(conn: sqlite3.Connection, committing_block_num: int) -> int:
    """Remove the private data due to expire when `committing_block_num` commits.

    Returns how many entries were removed: hashed and plaintext state keys,
    stored collection write sets and missing-data records. Atomic; joins an
    enclosing transaction.
    """
    due = (committing_block_num,)
    with transaction(conn):
        keys = conn.execute(_DUE_KEYS, due).fetchall()
        blocks = conn.execute(_DUE_BLOCKS, due).fetchall()
        removed = sum(
            conn.executemany(sql, rows).rowcount
            for sql, rows in (
                (f"DELETE FROM pvt_hashed {_KEY_WHERE}", keys),
                (f"DELETE FROM pvt_state {_BY_HASH} {_KEY_WHERE}", keys),
                (f"DELETE FROM pvt_store {_BLOCK_WHERE}", blocks),
                (f"DELETE FROM pvt_missing {_BLOCK_WHERE}", blocks),
            )
        )
        conn.executemany(f"DELETE FROM pvt_store_key {_BLOCK_WHERE}", blocks)
        conn.execute("DELETE FROM pvt_expiry_key WHERE expiring_block <= ?", due)
        conn.execute("DELETE FROM pvt_expiry_block WHERE expiring_block <= ?", due)
    return removed
