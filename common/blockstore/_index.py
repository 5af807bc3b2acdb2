"""The block store's SQLite index: where each block lies, and where each transaction is.

The index is a cache of what the block files say; it can always be rebuilt from
them. It runs in WAL mode with synchronous=NORMAL: a power cut may lose its last
few commits, which the store notices on open (the index is behind the files) and
replays.

Appended blocks get their block row at once, but their tx rows wait in memory
(`TX_FLUSH_BLOCKS` blocks' worth) and go in together, sorted by tx id: tx ids
are random, so each block's rows would otherwise dirty as many random pages of
the tx table, each written to the WAL again per block. Look-ups consult the
waiting rows too. The `meta` row `txs_through` says up to which block the tx
table is complete, in the same SQLite transaction as the rows; on open the
store re-reads the blocks above it from the files (`txs_through` is then
brought up to date before anything is served).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.blockstore._blocks import BlockFacts
from common.errors import BlockStoreError

SCHEMA_VERSION = 1
TX_FLUSH_BLOCKS = 64
"""Appended blocks whose tx rows wait in memory before they are written together."""
_IN_CHUNK = 500
_CHECKPOINT_PAGES = 16384
"""WAL pages between checkpoints (64 MiB of 4 KiB pages; SQLite's default is 1000).

Tx ids are random, so each block's rows land on as many random pages of the tx
table; a checkpoint copies each page once however often it was written since
the last one, and fsyncs the file once."""
_WAL_BYTES_KEPT = 64 << 20
"""Tx ids per `IN (...)` look-up (SQLite allows 32,766 parameters; keep it modest)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    file INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    hash BLOB NOT NULL,
    previous_hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_by_hash ON blocks (hash);
CREATE TABLE IF NOT EXISTS txs (
    tx_id TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    position INTEGER NOT NULL,
    validation_code INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta
    SELECT 'txs_through', COALESCE(MAX(number), -1) FROM blocks;
"""


@dataclass(frozen=True, slots=True)
class BlockLocation:
    """Where a block's record starts (the record header) and how long its payload is."""

    file_number: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedBlock:
    """One row of the block index."""

    number: int
    location: BlockLocation
    header_hash: bytes
    previous_hash: bytes


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where the first transaction with a given id was committed, and its outcome."""

    block_number: int
    position: int
    validation_code: int


class BlockIndex:
    """One SQLite connection behind a lock: one writer, any number of readers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._waiting: dict[str, TxLocation] = {}
        self._waiting_blocks = 0
        self._waiting_through = -1
        self._written_through: int | None = None
        try:
            _prepare(self._db)
            # Never above the last block row (an index that lost rows catches up).
            self.txs_through: int = self._db.execute(
                "SELECT MIN(value, (SELECT COALESCE(MAX(number), -1) FROM blocks))"
                " FROM meta WHERE name = 'txs_through'"
            ).fetchone()[0]
            """The tx table holds the rows of every block up to this one."""
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Write the waiting tx rows and close; later calls raise BlockStoreError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._waiting_blocks:
                    self._in_transaction(self._write_waiting)
            finally:
                self._db.close()

    def add_blocks(
        self,
        blocks: Iterable[tuple[BlockFacts, BlockLocation]],
        *,
        wait: bool = False,
    ) -> None:
        """Index blocks and their transactions in one SQLite transaction.

        With `wait` the tx rows wait in memory (up to `TX_FLUSH_BLOCKS` blocks)
        and are found there meanwhile. A tx id already indexed keeps its first
        occurrence, as Fabric does. Blocks must follow the ones indexed.
        """
        with self._lock:
            self._check_open()
            self._in_transaction(lambda: self._add(blocks, wait=wait))

    def add_txs(self, blocks: Iterable[BlockFacts]) -> None:
        """Index the transactions of blocks above `txs_through` whose rows are indexed.

        Recovery's catch-up of the tx table (after a crash lost waiting rows).
        """
        with self._lock:
            self._check_open()
            self._in_transaction(lambda: self._add_txs(list(blocks)))

    def _in_transaction(self, work: Callable[[], None]) -> None:
        self._db.execute("BEGIN")
        try:
            work()
        except BaseException:
            self._written_through = None
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if self._written_through is not None:
            # The waiting rows are in the tx table now: look-ups find them there.
            self.txs_through, self._written_through = self._written_through, None
            self._waiting = {}
            self._waiting_blocks = 0

    def _add(
        self, blocks: Iterable[tuple[BlockFacts, BlockLocation]], *, wait: bool
    ) -> None:
        for facts, location in blocks:
            self._insert_block(facts, location)
            self._hold(facts)
        if not wait or self._waiting_blocks >= TX_FLUSH_BLOCKS:
            self._write_waiting()

    def _add_txs(self, blocks: list[BlockFacts]) -> None:
        for facts in blocks:
            self._hold(facts)
        self._write_waiting()

    def _hold(self, facts: BlockFacts) -> None:
        number = facts.number
        if number <= max(self.txs_through, self._waiting_through):
            raise BlockStoreError(f"the tx rows of block {number} are indexed already")
        waiting = self._waiting
        for tx in facts.txs:
            if tx.tx_id not in waiting:
                waiting[tx.tx_id] = TxLocation(number, tx.position, tx.validation_code)
        self._waiting_blocks += 1
        self._waiting_through = number

    def _write_waiting(self) -> None:
        """Write the waiting rows sorted by tx id, and `txs_through`; in a transaction."""
        through = self._waiting_through
        self._db.executemany(
            "INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)",
            [
                (tx_id, tx.block_number, tx.position, tx.validation_code)
                for tx_id, tx in sorted(self._waiting.items())
            ],
        )
        self._db.execute(
            "UPDATE meta SET value = ? WHERE name = 'txs_through'", (through,)
        )
        self._written_through = through

    def last_block(self) -> IndexedBlock | None:
        """The highest indexed block, or None for an empty index."""
        return self._block_where("number = (SELECT MAX(number) FROM blocks)", ())

    def block(self, number: int) -> IndexedBlock | None:
        """The index row of block `number`, if indexed."""
        return self._block_where("number = ?", (number,))

    def number_by_hash(self, header_hash: bytes) -> int | None:
        """The number of the block whose header hashes to `header_hash`, if indexed."""
        row = self._fetch_one(
            "SELECT number FROM blocks WHERE hash = ?", (header_hash,)
        )
        return None if row is None else int(row[0])

    def tx(self, tx_id: str) -> TxLocation | None:
        """Where transaction `tx_id` was first committed, if it was."""
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT block_number, position, validation_code FROM txs"
                " WHERE tx_id = ?",
                (tx_id,),
            ).fetchone()
            if row is None:
                return self._waiting.get(tx_id)
        return TxLocation(int(row[0]), int(row[1]), int(row[2]))

    def stored_tx_ids(self, tx_ids: Iterable[str]) -> set[str]:
        """Those of `tx_ids` that are indexed."""
        unique = list(dict.fromkeys(tx_ids))
        found: set[str] = set()
        with self._lock:
            self._check_open()
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT tx_id FROM txs WHERE tx_id IN ({marks})", chunk
                )
                found.update(tx_id for (tx_id,) in rows)
            waiting = self._waiting
            found.update(tx_id for tx_id in unique if tx_id in waiting)
        return found

    def _insert_block(self, facts: BlockFacts, location: BlockLocation) -> None:
        self._db.execute(
            "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
            (
                facts.number,
                location.file_number,
                location.offset,
                location.length,
                facts.header_hash,
                facts.previous_hash,
            ),
        )

    def _block_where(
        self, condition: str, parameters: tuple[int, ...]
    ) -> IndexedBlock | None:
        row = self._fetch_one(
            "SELECT number, file, offset, length, hash, previous_hash"
            " FROM blocks WHERE " + condition,
            parameters,
        )
        if row is None:
            return None
        number, file_number, offset, length, header_hash, previous_hash = row
        return IndexedBlock(
            number=int(number),
            location=BlockLocation(int(file_number), int(offset), int(length)),
            header_hash=bytes(header_hash),
            previous_hash=bytes(previous_hash),
        )

    def _fetch_one(
        self, sql: str, parameters: tuple[object, ...]
    ) -> tuple[Any, ...] | None:
        with self._lock:
            self._check_open()
            row: tuple[Any, ...] | None = self._db.execute(sql, parameters).fetchone()
        return row

    def _check_open(self) -> None:
        if self._closed:
            raise BlockStoreError("block store is closed")


def _prepare(db: sqlite3.Connection) -> None:
    """WAL, relaxed sync, a 64 MiB page cache, and the schema (created if new)."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-65536")
    db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
    db.execute(f"PRAGMA journal_size_limit={_WAL_BYTES_KEPT}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise sqlite3.DatabaseError(
            f"index schema version {version} is not {SCHEMA_VERSION}"
        )
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
