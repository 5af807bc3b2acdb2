"""The history database: every committed write of a key, for `GetHistoryForKey`.

One row per (namespace, key, block number, tx number) with the tx id, the
transaction's timestamp, the value written and whether it was a delete. The
committer records only valid transactions, in the same SQLite transaction as
the state updates of the block (`apply`/`write_history` join an enclosing
`transaction(conn)`). Reads come newest first and stream from a cursor, so a
long history is never loaded at once.

Layout: rows are clustered in commit order, so a block's rows append to the
end of the table, and each row points at the key's previous row
(`prev_block`, `prev_tx`). A key's newest row, its head, is kept in its state
row (`state.hist_block`, `hist_tx`, written by `statedb.write_updates` with the
rest of the row) or, for a key without a state row (deleted, or recorded
without state), in `history_heads`; the newer of the two wins. A block's
writes thus dirty no page besides the state pages they change anyway and the
end of the history table, where a key index would dirty one random page per
write. A key's rows must be recorded in commit order, as the committer does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Iterator
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


class Timestamp(NamedTuple):
    """A protobuf Timestamp: seconds since the epoch and nanoseconds.

    An immutable NamedTuple (ordered like one): one is built per committed
    transaction.
    """

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
_Head = tuple[int, int]
_RowAfter = tuple[str, str, int, int, str, int, int, bool, bytes, int, int]

_COLUMNS = (
    "ns, key, block_num, tx_num, tx_id, ts_seconds, ts_nanos, is_delete, val, "
    "prev_block, prev_tx"
)
# A key's head: the head in its state row, or else its entry in history_heads
# (the writers keep the state row's head, when set, the newer of the two).
_HEAD_SOURCES = (
    "LEFT JOIN state AS s ON s.ns = p.ns AND s.key = p.key "
    "LEFT JOIN history_heads AS hh ON s.hist_block IS NULL "
    "AND hh.ns = p.ns AND hh.key = p.key"
)
_HEAD_BLOCK = "coalesce(s.hist_block, hh.block_num)"
_HEAD_TX = "CASE WHEN s.hist_block IS NULL THEN hh.tx_num ELSE s.hist_tx END"
_INSERT_AFTER_HEAD = (
    f"INSERT OR REPLACE INTO history ({_COLUMNS}) "
    f"SELECT p.ns, p.key, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {_HEAD_BLOCK}, {_HEAD_TX} "
    f"FROM (SELECT ?1 AS ns, ?2 AS key) AS p {_HEAD_SOURCES}"
)
_INSERT_AFTER = (
    f"INSERT OR REPLACE INTO history ({_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Deletes' heads, in the committer's transaction (their state rows go next).
_SET_HEAD = (
    "INSERT INTO history_heads (ns, key, block_num, tx_num) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (ns, key) DO UPDATE SET "
    "block_num = excluded.block_num, tx_num = excluded.tx_num"
)
# Heads recorded without the state writer: in the state row if there is one.
_SET_STATE_HEAD = (
    "UPDATE state SET hist_block = ?3, hist_tx = ?4 WHERE ns = ?1 AND key = ?2"
)
_SET_HEAD_WITHOUT_STATE = (
    "INSERT INTO history_heads (ns, key, block_num, tx_num) "
    "SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS "
    "(SELECT 1 FROM state WHERE ns = ?1 AND key = ?2) "
    "ON CONFLICT (ns, key) DO UPDATE SET "
    "block_num = excluded.block_num, tx_num = excluded.tx_num"
)
# Rows newest first, following each row's link; a link must go back in time.
_SELECT = (
    "WITH RECURSIVE chain (tx_id, val, ts_seconds, ts_nanos, is_delete, block_num, "
    "tx_num, prev_block, prev_tx) AS ("
    "SELECT h.tx_id, h.val, h.ts_seconds, h.ts_nanos, h.is_delete, h.block_num, "
    "h.tx_num, h.prev_block, h.prev_tx "
    f"FROM (SELECT ?1 AS ns, ?2 AS key) AS p {_HEAD_SOURCES} "
    f"JOIN history AS h ON h.block_num = {_HEAD_BLOCK} AND h.tx_num = {_HEAD_TX} "
    "AND h.ns = p.ns AND h.key = p.key "
    "UNION ALL "
    "SELECT h.tx_id, h.val, h.ts_seconds, h.ts_nanos, h.is_delete, h.block_num, "
    "h.tx_num, h.prev_block, h.prev_tx "
    "FROM chain JOIN history AS h "
    "ON h.block_num = chain.prev_block AND h.tx_num = chain.prev_tx "
    "AND h.ns = ?1 AND h.key = ?2 "
    "AND (h.block_num, h.tx_num) < (chain.block_num, chain.tx_num)"
    ") SELECT tx_id, val, ts_seconds, ts_nanos, is_delete, block_num, tx_num FROM chain"
)


class HistoryBatch:
    """The history rows of one block's valid transactions, written in one go.

    Add transactions in commit order. A key written twice by one transaction
    keeps its last write, as a single row.
    """

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._prev: list[_Head | None] = []
        self._last: dict[tuple[str, str], int] = {}

    def add(
        self,
        *,
        block_num: int,
        tx_num: int,
        tx_id: str,
        timestamp: Timestamp,
        writes: Iterable[KeyWrite],
    ) -> None:
        seconds, nanos = timestamp.seconds, timestamp.nanos
        rows, prevs, last = self._rows, self._prev, self._last
        for ns, key, value in writes:
            is_delete = value is None
            row = (
                ns,
                key,
                block_num,
                tx_num,
                tx_id,
                seconds,
                nanos,
                is_delete,
                b"" if value is None else bytes(value),
            )
            earlier = last.get((ns, key))
            if earlier is None:
                prev: _Head | None = None
            else:
                _, _, earlier_block, earlier_tx, *_ = rows[earlier]
                if (earlier_block, earlier_tx) == (block_num, tx_num):
                    rows[earlier] = row  # the same transaction wrote it again
                    continue
                prev = (earlier_block, earlier_tx)
            last[(ns, key)] = len(rows)
            rows.append(row)
            prevs.append(prev)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[_Row]:
        return list(self._rows)

    def statements(
        self, *, heads_in_state: bool
    ) -> tuple[list[_Row], list[_RowAfter], list[tuple[str, str, int, int]]]:
        """Parameters for `write_history`: rows whose previous row is a key's
        head, rows following another row of this batch, and heads to record."""
        after_head: list[_Row] = []
        after_row: list[_RowAfter] = []
        for row, prev in zip(self._rows, self._prev, strict=True):
            if prev is None:
                after_head.append(row)
            else:
                after_row.append((*row, *prev))
        heads = [
            (ns, key, row[2], row[3])
            for (ns, key), row in self._last_rows()
            if row[7] or not heads_in_state
        ]
        return after_head, after_row, heads

    def _last_rows(self) -> Iterator[tuple[tuple[str, str], _Row]]:
        rows = self._rows
        return ((ns_key, rows[index]) for ns_key, index in self._last.items())

    def put_heads(self) -> dict[tuple[str, str], _Head]:
        """(block, tx) of the last row of each key whose last write is not a delete."""
        return {
            ns_key: (row[2], row[3]) for ns_key, row in self._last_rows() if not row[7]
        }


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


def write_history(
    conn: sqlite3.Connection, batch: HistoryBatch, *, heads_in_state: bool = False
) -> None:
    """Record a block's history rows (atomically; joins an enclosing transaction).

    Each key's newest row becomes its head: in its state row, or in
    `history_heads` when it has none. With `heads_in_state` the caller's
    `statedb.write_updates`, run next in the same transaction, writes the heads
    of keys whose last write is a put into their state rows (`put_heads`) and
    deletes the state rows of the others, whose heads go to `history_heads` here.
    """
    after_head, after_row, heads = batch.statements(heads_in_state=heads_in_state)
    with transaction(conn):
        conn.executemany(_INSERT_AFTER_HEAD, after_head)
        conn.executemany(_INSERT_AFTER, after_row)
        if heads_in_state:
            conn.executemany(_SET_HEAD, heads)
        else:
            conn.executemany(_SET_STATE_HEAD, heads)
            conn.executemany(_SET_HEAD_WITHOUT_STATE, heads)


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
