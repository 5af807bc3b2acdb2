"""The history database: every committed write of a key, for `GetHistoryForKey`.

One row per (namespace, key, block number, tx number) with the tx id, the
transaction's timestamp, the value written and whether it was a delete. The
committer records only valid transactions, in the same SQLite transaction as
the state updates of the block (`apply`/`write_history` join an enclosing
`transaction(conn)`). Reads come newest first and stream from a cursor, so a
long history is never loaded at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from peer.ledger.schema import transaction

__all__ = [
    "HistoryBatch",
    "KeyModification",
    "KeyWrite",
    "Timestamp",
    "apply",
    "get_history_for_key",
    "write_history",
]


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A protobuf Timestamp: seconds since the epoch and nanoseconds."""

    seconds: int
    nanos: int = 0


class KeyWrite(NamedTuple):
    """One write of a transaction; `value` None means the key was deleted.

    An immutable NamedTuple: one is built for every committed write.
    """

    ns: str
    key: str
    value: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyModification:
    """One entry of a key's history (Fabric's `queryresult.KeyModification`)."""

    tx_id: str
    value: bytes
    timestamp: Timestamp
    is_delete: bool
    block_num: int
    tx_num: int


_Row = tuple[str, str, int, int, str, int, int, bool, bytes]
_INSERT = "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT = (
    "SELECT tx_id, val, ts_seconds, ts_nanos, is_delete, block_num, tx_num FROM history "
    "WHERE ns = ? AND key = ? ORDER BY block_num DESC, tx_num DESC"
)


class HistoryBatch:
    """The history rows of one block's valid transactions, written in one go."""

    def __init__(self) -> None:
        self._rows: list[_Row] = []

    def add(
        self,
        *,
        block_num: int,
        tx_num: int,
        tx_id: str,
        timestamp: Timestamp,
        writes: Iterable[KeyWrite],
    ) -> None:
        seconds, nanos, append = timestamp.seconds, timestamp.nanos, self._rows.append
        for ns, key, value in writes:
            is_delete = value is None
            row_value = b"" if value is None else bytes(value)
            append(
                (
                    ns,
                    key,
                    block_num,
                    tx_num,
                    tx_id,
                    seconds,
                    nanos,
                    is_delete,
                    row_value,
                )
            )

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[_Row]:
        return list(self._rows)


def apply(
    conn: sqlite3.Connection,
    *,
    block_num: int,
    tx_num: int,
    tx_id: str,
    timestamp: Timestamp,
    writes: Iterable[KeyWrite],
) -> None:
    """Record one valid transaction's writes (atomically; joins an enclosing transaction)."""
    batch = HistoryBatch()
    batch.add(
        block_num=block_num,
        tx_num=tx_num,
        tx_id=tx_id,
        timestamp=timestamp,
        writes=writes,
    )
    write_history(conn, batch)


def write_history(conn: sqlite3.Connection, batch: HistoryBatch) -> None:
    """Record a block's history rows (atomically; joins an enclosing transaction)."""
    with transaction(conn):
        conn.executemany(_INSERT, sorted(batch.rows()))


def get_history_for_key(
    conn: sqlite3.Connection, ns: str, key: str
) -> Generator[KeyModification, None, None]:
    """Stream the key's committed writes, newest first (the query starts at the call)."""
    cursor = conn.execute(_SELECT, (ns, key))
    return (_modification(row) for row in cursor)


def _modification(row: tuple[str, bytes, int, int, int, int, int]) -> KeyModification:
    tx_id, value, seconds, nanos, is_delete, block_num, tx_num = row
    return KeyModification(
        tx_id=tx_id,
        value=value,
        timestamp=Timestamp(seconds, nanos),
        is_delete=bool(is_delete),
        block_num=block_num,
        tx_num=tx_num,
    )
