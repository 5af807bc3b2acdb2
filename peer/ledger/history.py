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

The committer goes one step further (`writing_block_history`): a key written
once in the block, by a put, gets its row from a trigger on the state row's
update (`OLD` holds the previous head), so the block's writes descend the state
B-tree once per key instead of twice. The triggers and the table of the
block's transactions they read are TEMP objects of the committer's connection,
not part of the database file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from peer.errors import LedgerError
from peer.ledger.schema import transaction

__all__ = [
    "HistoryBatch",
    "KeyModification",
    "KeyWrite",
    "Timestamp",
    "apply",
    "get_history_for_key",
    "write_history",
    "writing_block_history",
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
# The committer's TEMP objects: the block's transactions, the links of rows
# that follow another row of the block, the block's rows as they are made, and
# triggers making the last row of a key whose state row gets a head of this
# block (its last write is a put). The rows are made in key order (the state
# write's) and copied into the history in its own order at the end: inserting
# them into the history B-tree in key order would split its last pages over
# and over, where the copy appends.
_TXS_TABLE = "block_history_txs"
_LINKS_TABLE = "block_history_links"
_ROWS_TABLE = "block_history_rows"
_CREATE_TABLES = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_TXS_TABLE} ("
    "block_num INTEGER NOT NULL, tx_num INTEGER NOT NULL, tx_id TEXT NOT NULL, "
    "ts_seconds INTEGER NOT NULL, ts_nanos INTEGER NOT NULL, "
    "PRIMARY KEY (block_num, tx_num)) WITHOUT ROWID",
    f"CREATE TEMP TABLE IF NOT EXISTS {_LINKS_TABLE} ("
    "ns TEXT NOT NULL, key TEXT NOT NULL, prev_block INTEGER NOT NULL, "
    "prev_tx INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID",
    f"CREATE TEMP TABLE IF NOT EXISTS {_ROWS_TABLE} ("
    "ns TEXT, key TEXT, block_num INTEGER, tx_num INTEGER, tx_id TEXT, "
    "ts_seconds INTEGER, ts_nanos INTEGER, is_delete INTEGER, val BLOB, "
    "prev_block INTEGER, prev_tx INTEGER)",
)
_DELETED_HEAD = (
    "(SELECT {} FROM history_heads AS hh WHERE hh.ns = NEW.ns AND hh.key = NEW.key)"
)


def _trigger_insert(prev_block: str, prev_tx: str) -> str:
    return (
        f"INSERT INTO {_ROWS_TABLE} ({_COLUMNS}) "
        "SELECT NEW.ns, NEW.key, t.block_num, t.tx_num, t.tx_id, t.ts_seconds, "
        "t.ts_nanos, 0, CAST(NEW.val AS BLOB), "
        f"CASE WHEN l.prev_block IS NOT NULL THEN l.prev_block ELSE {prev_block} END, "
        f"CASE WHEN l.prev_block IS NOT NULL THEN l.prev_tx ELSE {prev_tx} END "
        f"FROM temp.{_TXS_TABLE} AS t LEFT JOIN temp.{_LINKS_TABLE} AS l "
        "ON l.ns = NEW.ns AND l.key = NEW.key "
        "WHERE t.block_num = NEW.hist_block AND t.tx_num = NEW.hist_tx"
    )


_CREATE_TRIGGERS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS block_history_on_state_update "
    "AFTER UPDATE OF hist_block ON main.state WHEN NEW.hist_block IS NOT NULL "
    "BEGIN "
    + _trigger_insert(
        "CASE WHEN OLD.hist_block IS NULL THEN "
        f"{_DELETED_HEAD.format('hh.block_num')} ELSE OLD.hist_block END",
        "CASE WHEN OLD.hist_block IS NULL THEN "
        f"{_DELETED_HEAD.format('hh.tx_num')} ELSE OLD.hist_tx END",
    )
    + "; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS block_history_on_state_insert "
    "AFTER INSERT ON main.state WHEN NEW.hist_block IS NOT NULL "
    "BEGIN "
    + _trigger_insert(
        _DELETED_HEAD.format("hh.block_num"), _DELETED_HEAD.format("hh.tx_num")
    )
    + "; END",
)
_STAGE_AFTER_HEAD = _INSERT_AFTER_HEAD.replace(
    "INSERT OR REPLACE INTO history", f"INSERT INTO {_ROWS_TABLE}"
)
_STAGE_AFTER = _INSERT_AFTER.replace(
    "INSERT OR REPLACE INTO history", f"INSERT INTO {_ROWS_TABLE}"
)
_COPY_ROWS = (
    f"INSERT INTO history ({_COLUMNS}) SELECT {_COLUMNS} FROM temp.{_ROWS_TABLE} "
    "ORDER BY block_num, tx_num, ns, key"
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
        self._txs: list[tuple[int, int, str, int, int]] = []

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
        self._txs.append((block_num, tx_num, tx_id, seconds, nanos))
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

    def block_statements(
        self,
    ) -> tuple[
        list[_Row],
        list[_RowAfter],
        list[tuple[str, str, int, int]],
        list[tuple[str, str, int, int]],
    ]:
        """`statements(heads_in_state=True)` without the rows the state triggers
        write (each key's last row, when it is a put), plus the links of those
        rows that follow another row of this batch."""
        after_head: list[_Row] = []
        after_row: list[_RowAfter] = []
        links: list[tuple[str, str, int, int]] = []
        last = self._last
        for index, (row, prev) in enumerate(zip(self._rows, self._prev, strict=True)):
            by_trigger = not row[7] and last[(row[0], row[1])] == index
            if prev is None:
                if not by_trigger:
                    after_head.append(row)
            elif by_trigger:
                links.append((row[0], row[1], *prev))
            else:
                after_row.append((*row, *prev))
        heads = [
            (ns, key, row[2], row[3]) for (ns, key), row in self._last_rows() if row[7]
        ]
        return after_head, after_row, heads, links

    def txs(self) -> list[tuple[int, int, str, int, int]]:
        """(block, tx, tx id, seconds, nanos) of each transaction added."""
        return list(self._txs)

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


def ensure_block_history_triggers(conn: sqlite3.Connection) -> None:
    """Create the committer connection's TEMP tables and triggers (idempotent)."""
    for statement in (*_CREATE_TABLES, *_CREATE_TRIGGERS):
        conn.execute(statement)


@contextmanager
def writing_block_history(
    conn: sqlite3.Connection, batch: HistoryBatch, *, block_num: int
) -> Iterator[None]:
    """Record one block's history rows around the block's state write.

    Inside an enclosing transaction: the rows the state row updates cannot
    write (all but each key's last row, and deletes) and the heads of deleted
    keys are written on entry; the caller then writes the block's state with
    `statedb.write_updates(..., history_heads=batch.put_heads())` inside the
    `with`, and the triggers write each put key's last row from its state row
    update (`OLD` holds the key's previous head).

    Raises:
        LedgerError: on exit, the history does not hold one row per batch row
            (the state write did not give every put key its head).
    """
    ensure_block_history_triggers(conn)
    after_head, after_row, heads, links = batch.block_statements()
    conn.executemany(_STAGE_AFTER_HEAD, after_head)
    conn.executemany(_STAGE_AFTER, after_row)
    conn.executemany(_SET_HEAD, heads)
    conn.executemany(
        f"INSERT OR REPLACE INTO temp.{_TXS_TABLE} VALUES (?, ?, ?, ?, ?)", batch.txs()
    )
    conn.executemany(f"INSERT INTO temp.{_LINKS_TABLE} VALUES (?, ?, ?, ?)", links)
    try:
        yield
        written = conn.execute(_COPY_ROWS).rowcount
    finally:
        for table in (_TXS_TABLE, _LINKS_TABLE, _ROWS_TABLE):
            conn.execute(f"DELETE FROM temp.{table}")
    if written != len(batch):
        raise LedgerError(
            f"block {block_num}: {written} history rows written for {len(batch)} writes"
        )


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
