"""The channel database: one SQLite file per channel, its tables and transactions.

State, history, private data and the savepoint of a channel share one SQLite
database in WAL mode, so that committing a block is a single SQLite transaction.
The `ChannelLedger` owns the connection; the ledger modules only run statements
on it. Each module brings its own tables as a list of migrations under a
component name (`"state"`, `"history"`, later `"pvtdata"`), applied by
`migrate`; `ensure` applies the ones defined here.

Durability: `synchronous=NORMAL` in WAL mode does not fsync on commit. The block
file is the durability point; on start the ledger replays every block above the
savepoint, so losing the last few state commits in a power cut is harmless.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path

from peer.errors import LedgerError

__all__ = [
    "HISTORY_MIGRATIONS",
    "STATE_MIGRATIONS",
    "configure",
    "ensure",
    "migrate",
    "open_channel_db",
    "schema_version",
    "transaction",
]

# Each entry is one schema version: the statements that take the tables from the
# previous version to this one. Append, never edit a published entry.
STATE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # val is TEXT when the value is a JSON object (it then takes part in rich
        # queries), BLOB otherwise; readers always get the original bytes back.
        """CREATE TABLE state (
            ns        TEXT    NOT NULL,
            key       TEXT    NOT NULL,
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            val                NOT NULL,
            metadata  BLOB,
            PRIMARY KEY (ns, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE savepoint (
            id        INTEGER PRIMARY KEY CHECK (id = 0),
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL
        )""",
        """CREATE TABLE mango_index (
            ns          TEXT NOT NULL,
            ddoc        TEXT NOT NULL,
            name        TEXT NOT NULL,
            sqlite_name TEXT NOT NULL UNIQUE,
            definition  TEXT NOT NULL,
            PRIMARY KEY (ns, ddoc, name)
        ) WITHOUT ROWID""",
    ),
)

HISTORY_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE history (
            ns         TEXT    NOT NULL,
            key        TEXT    NOT NULL,
            block_num  INTEGER NOT NULL,
            tx_num     INTEGER NOT NULL,
            tx_id      TEXT    NOT NULL,
            ts_seconds INTEGER NOT NULL,
            ts_nanos   INTEGER NOT NULL,
            is_delete  INTEGER NOT NULL,
            val        BLOB    NOT NULL,
            PRIMARY KEY (ns, key, block_num, tx_num)
        ) WITHOUT ROWID""",
    ),
    # Version 2 clusters the rows in commit order, so a block's writes append to
    # the end of the table instead of landing on a random page each, and finds a
    # key's rows through a small index. On a large state this halves the pages a
    # block's commit dirties (see peer/ledger/ledger.py and `medledger bench ledger`).
    (
        """CREATE TABLE history_v2 (
            ns         TEXT    NOT NULL,
            key        TEXT    NOT NULL,
            block_num  INTEGER NOT NULL,
            tx_num     INTEGER NOT NULL,
            tx_id      TEXT    NOT NULL,
            ts_seconds INTEGER NOT NULL,
            ts_nanos   INTEGER NOT NULL,
            is_delete  INTEGER NOT NULL,
            val        BLOB    NOT NULL,
            PRIMARY KEY (block_num, tx_num, ns, key)
        ) WITHOUT ROWID""",
        "INSERT INTO history_v2 SELECT * FROM history",
        "DROP TABLE history",
        "ALTER TABLE history_v2 RENAME TO history",
        "CREATE INDEX history_by_key ON history (ns, key, block_num, tx_num)",
    ),
    # Version 3 drops the key index, whose random inserts cost a block's commit
    # as many dirtied pages as its state updates: each row points at the key's
    # previous row, and a key's newest row (its head) is kept in its state row,
    # or in history_heads when it has none (see peer/ledger/history.py). The
    # state table gets its head columns here, since only history uses them.
    (
        "ALTER TABLE history ADD COLUMN prev_block INTEGER",
        "ALTER TABLE history ADD COLUMN prev_tx INTEGER",
        "ALTER TABLE state ADD COLUMN hist_block INTEGER",
        "ALTER TABLE state ADD COLUMN hist_tx INTEGER",
        """CREATE TABLE history_heads (
            ns        TEXT    NOT NULL,
            key       TEXT    NOT NULL,
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            PRIMARY KEY (ns, key)
        ) WITHOUT ROWID""",
        """UPDATE history SET (prev_block, prev_tx) = (
            SELECT p.block_num, p.tx_num FROM history AS p
            WHERE p.ns = history.ns AND p.key = history.key
              AND (p.block_num, p.tx_num) < (history.block_num, history.tx_num)
            ORDER BY p.block_num DESC, p.tx_num DESC LIMIT 1
        )""",
        """INSERT INTO history_heads
        SELECT ns, key, block_num, tx_num FROM history AS h WHERE NOT EXISTS (
            SELECT 1 FROM history AS n
            WHERE n.ns = h.ns AND n.key = h.key
              AND (n.block_num, n.tx_num) > (h.block_num, h.tx_num)
        )""",
        "DROP INDEX history_by_key",
    ),
)

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID"""


PAGE_SIZE = 2048
CHECKPOINT_MIB = 64
CACHE_MIB = 64


def open_channel_db(
    path: str | Path,
    *,
    cache_mib: int = CACHE_MIB,
    page_size: int = PAGE_SIZE,
    checkpoint_mib: int = CHECKPOINT_MIB,
) -> sqlite3.Connection:
    """Open (creating if needed) a channel database with the ledger's settings.

    The connection is in autocommit mode (`isolation_level=None`): transactions
    are explicit, through `transaction`. `path` may be ":memory:" for tests.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        configure(
            conn,
            cache_mib=cache_mib,
            page_size=page_size,
            checkpoint_mib=checkpoint_mib,
        )
        ensure(conn)
    except sqlite3.Error as error:
        conn.close()
        raise LedgerError(f"cannot open channel database {path}: {error}") from error
    return conn


def configure(
    conn: sqlite3.Connection,
    *,
    cache_mib: int = CACHE_MIB,
    page_size: int = PAGE_SIZE,
    checkpoint_mib: int = CHECKPOINT_MIB,
) -> None:
    """Apply the per-connection settings.

    Small pages (2 KiB) keep the bytes written per random update low while a
    200-byte value still fits in its B-tree cell; checkpoints run about every
    `checkpoint_mib` of WAL, since each one fsyncs (random updates of a large
    state otherwise spend most of their time there). `page_size` only takes
    effect when the database is created.
    """
    conn.execute(f"PRAGMA page_size={int(page_size)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size={-1024 * int(cache_mib)}")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute(f"PRAGMA mmap_size={1024 * 1024 * 16 * int(cache_mib)}")
    actual_page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute(
        f"PRAGMA wal_autocheckpoint={(checkpoint_mib << 20) // actual_page_size}"
    )
    conn.execute(f"PRAGMA journal_size_limit={int(checkpoint_mib) << 20}")


def ensure(conn: sqlite3.Connection) -> None:
    """Create or upgrade the state and history tables."""
    migrate(conn, "state", STATE_MIGRATIONS)
    migrate(conn, "history", HISTORY_MIGRATIONS)


def migrate(
    conn: sqlite3.Connection, component: str, migrations: Sequence[Sequence[str]]
) -> None:
    """Bring `component`'s tables to the newest version in `migrations`, atomically."""
    with transaction(conn):
        conn.execute(_SCHEMA_TABLE)
        current = schema_version(conn, component)
        if current > len(migrations):
            raise LedgerError(
                f"database schema of {component!r} is version {current}, newer than "
                f"this software ({len(migrations)}); refusing to open it"
            )
        for statements in migrations[current:]:
            for statement in statements:
                conn.execute(statement)
        if current < len(migrations):
            conn.execute(
                "INSERT OR REPLACE INTO schema_version VALUES (?, ?)",
                (component, len(migrations)),
            )


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    """The applied schema version of `component` (0 when none)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute(
        "SELECT version FROM schema_version WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


_savepoint_names = count()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block atomically: a write transaction, or a savepoint when nested.

    The outermost call takes the write lock up front (`BEGIN IMMEDIATE`) and
    commits on success; a nested call becomes a SAVEPOINT, so ledger modules
    can each make their writes atomic and the `ChannelLedger` can still group
    them into one transaction per block. Any exception rolls back and re-raises.
    """
    if conn.in_transaction:
        name = f"ledger_{next(_savepoint_names)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if _is_in_transaction(conn):
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if _is_in_transaction(conn):  # SQLite may have rolled back already
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_in_transaction(conn: sqlite3.Connection) -> bool:
    return conn.in_transaction
