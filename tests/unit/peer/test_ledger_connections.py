"""The channel database's connections: per-thread readers and the background checkpointer."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from peer.errors import LedgerError
from peer.ledger.connections import Checkpointer, Readers, open_writer


def _fill(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?)", ((i, bytes(200)) for i in range(rows))
    )
    conn.execute("COMMIT")


def test_the_checkpointer_copies_the_wal_into_the_database_every_n_blocks(
    tmp_path: Path,
) -> None:
    """Nothing happens before the n-th commit; closing checkpoints what is pending."""
    path = tmp_path / "db.sqlite"
    with closing(open_writer(path)) as writer:
        _fill(writer, 2000)
        size_before = path.stat().st_size
        checkpointer = Checkpointer(path, every_blocks=3)
        checkpointer.committed()
        checkpointer.committed()
        checkpointer.close()  # the last checkpoint runs here

        assert path.stat().st_size > size_before + 2000 * 200
        checkpointer.raise_if_failed()


def test_a_failed_checkpoint_is_raised_to_the_committer(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with closing(open_writer(path)):
        checkpointer = Checkpointer(path, every_blocks=1)
        checkpointer._conn.close()  # the simplest way to make the next checkpoint fail
        checkpointer.close()

        with pytest.raises(LedgerError, match="background WAL checkpoint failed"):
            checkpointer.raise_if_failed()
        checkpointer.raise_if_failed()  # reported once


def test_readers_are_read_only_and_refuse_after_close(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with closing(open_writer(path)):
        readers = Readers(path)
        conn = readers.get()
        assert readers.get() is conn
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("CREATE TABLE x (a)")
        readers.close()

        with pytest.raises(LedgerError, match="closed"):
            readers.get()
