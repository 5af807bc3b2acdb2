"""The channel database's connections: the committer's, the readers', the checkpointer's.

The `ChannelLedger` writes through one connection (`open_writer`), reads through
one read-only connection per thread (`Readers`), and leaves WAL checkpoints to a
`Checkpointer` thread with a connection of its own. A checkpoint copies the
pages a WAL holds back into the database file and fsyncs it; on a large state
that is hundreds of milliseconds of random writes, which would otherwise stall
the commit that happens to cross SQLite's auto-checkpoint threshold. The
committer keeps an auto-checkpoint threshold four times higher as a backstop.
In a steady stream of commits the WAL only starts over at that backstop (a
checkpoint must have copied every frame before the committer's next
transaction), but the background checkpoints leave it just the last few blocks
to copy.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from peer.errors import LedgerError
from peer.ledger import pvtdata, transient
from peer.ledger.schema import CACHE_MIB, CHECKPOINT_MIB, open_channel_db

__all__ = [
    "CHECKPOINT_EVERY_BLOCKS",
    "MMAP_BYTES",
    "Checkpointer",
    "Readers",
    "open_writer",
]

MMAP_BYTES = 1 << 30
CHECKPOINT_EVERY_BLOCKS = 16
"""Blocks committed between two background checkpoints."""
_BACKSTOP_FACTOR = 4
"""The committer checkpoints itself once the WAL holds this many times CHECKPOINT_MIB."""


def open_writer(path: Path) -> sqlite3.Connection:
    """The committer's connection, with every ledger component's tables in place."""
    conn = open_channel_db(path, checkpoint_mib=CHECKPOINT_MIB * _BACKSTOP_FACTOR)
    try:
        # Deleted rows are zeroed, so purged or expired private data leaves no
        # plaintext in free space (see `ChannelLedger` for the WAL).
        conn.execute("PRAGMA secure_delete=ON")
        pvtdata.ensure(conn)
        transient.ensure(conn)
    except sqlite3.Error as error:
        conn.close()
        raise LedgerError(f"cannot open channel database {path}: {error}") from error
    except BaseException:
        conn.close()
        raise
    return conn


class Readers:
    """One read-only connection per reading thread, all closed together."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use).

        Raises:
            LedgerError: the readers are closed, or the database cannot be opened.
        """
        if self._closed:
            raise LedgerError("the ledger is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise LedgerError("the ledger is closed")
            conn = _open_reader(self._path)
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def _open_reader(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise LedgerError(f"cannot open a reader on {path}: {error}") from error
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA cache_size={-1024 * CACHE_MIB}")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    except sqlite3.Error as error:
        conn.close()
        raise LedgerError(f"cannot open a reader on {path}: {error}") from error
    return conn


class Checkpointer:
    """Runs a passive WAL checkpoint on its own thread every `every_blocks` commits.

    A passive checkpoint never blocks the committer or readers. A failure is kept
    for `raise_if_failed`, which the committer calls before each commit.
    """

    def __init__(
        self, path: Path, *, every_blocks: int = CHECKPOINT_EVERY_BLOCKS
    ) -> None:
        self._every_blocks = every_blocks
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False
        )
        self._wake = threading.Condition()
        self._pending = 0
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"ledger-checkpoint-{path.parent.name}", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """Count one committed block; wakes the thread every `every_blocks`."""
        with self._wake:
            self._pending += 1
            if self._pending >= self._every_blocks:
                self._wake.notify()

    def raise_if_failed(self) -> None:
        """Raise the error of the last background checkpoint, if it failed.

        Raises:
            LedgerError: the checkpoint failed (the database file is not writable).
        """
        error, self._error = self._error, None
        if error is not None:
            raise LedgerError(f"background WAL checkpoint failed: {error}") from error

    def close(self) -> None:
        """Stop the thread after a last checkpoint of what is pending."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(
                    lambda: self._stopping or self._pending >= self._every_blocks
                )
                stopping, self._pending = self._stopping, 0
            self._checkpoint()
            if stopping:
                return

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            self._error = error  # raised to the committer by `raise_if_failed`
