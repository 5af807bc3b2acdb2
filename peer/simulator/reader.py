"""What a simulation reads: the `StateReader` seam and its implementation over the ledger.

The simulator never touches SQLite itself; it reads through `StateReader`, so
unit tests can hand it any object with these methods. `LedgerStateReader` is
the real one: plain calls into `peer.ledger` on one connection.

A simulation must see one consistent state from its first read to its last
(Fabric holds a commit lock for that). `Snapshots` lends out read connections
to a channel database inside SQLite read transactions: in WAL mode the committer
keeps writing while every open `Snapshot` still sees the state of the moment it
was opened. Snapshots opened while nothing was committed share one read
transaction. Close a snapshot promptly; a long-lived one holds back WAL
checkpoints.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from peer.errors import LedgerError
from peer.ledger import hashed, history, mango, pvtstate, statedb
from peer.ledger.history import KeyModification
from peer.ledger.statedb import KV, Page, VersionedValue

__all__ = ["LedgerStateReader", "Snapshot", "Snapshots", "StateReader"]


class StateReader(Protocol):
    """Committed state as a simulation sees it (one consistent snapshot)."""

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """The committed value with its version and metadata, or None."""
        ...

    def get_state_metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        """The key's metadata ({} when none), or None when the key does not exist."""
        ...

    def get_state_range(self, ns: str, start_key: str, end_key: str) -> Iterator[KV]:
        """Keys in [start_key, end_key) in key order; "" end = unbounded."""
        ...

    def get_query_result(self, ns: str, query: str) -> Iterator[KV]:
        """Every match of a Mango query (raises QueryError subclasses on a bad query)."""
        ...

    def get_query_result_page(
        self, ns: str, query: str, *, page_size: int, bookmark: str
    ) -> Page:
        """One page of a Mango query and the bookmark of the next ("" when done)."""
        ...

    def get_history_for_key(self, ns: str, key: str) -> Iterator[KeyModification]:
        """The key's committed writes, newest first."""
        ...

    def get_private_data(self, ns: str, coll: str, key: str) -> VersionedValue | None:
        """The plaintext this peer holds for a private key, or None."""
        ...

    def get_private_data_hash(
        self, ns: str, coll: str, key_hash: bytes
    ) -> VersionedValue | None:
        """The hashed state of a key: `value` is the value's SHA-256; None if absent."""
        ...

    def get_private_data_range(
        self, ns: str, coll: str, start_key: str, end_key: str
    ) -> Iterator[KV]:
        """Private keys this peer holds in [start_key, end_key), in key order."""
        ...

    def get_private_data_query_result(
        self, ns: str, coll: str, query: str
    ) -> Iterator[KV]:
        """Every match of a Mango query among the collection's plaintext held here."""
        ...


class LedgerStateReader:
    """`StateReader` over a channel database connection (`peer.ledger` functions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        return statedb.get_state(self._conn, ns, key)

    def get_state_metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        return statedb.get_state_metadata(self._conn, ns, key)

    def get_state_range(self, ns: str, start_key: str, end_key: str) -> Iterator[KV]:
        return statedb.get_state_range(self._conn, ns, start_key, end_key)

    def get_query_result(self, ns: str, query: str) -> Iterator[KV]:
        return mango.get_query_result(self._conn, ns, query)

    def get_query_result_page(
        self, ns: str, query: str, *, page_size: int, bookmark: str
    ) -> Page:
        return mango.get_query_result_page(
            self._conn, ns, query, page_size=page_size, bookmark=bookmark
        )

    def get_history_for_key(self, ns: str, key: str) -> Iterator[KeyModification]:
        return history.get_history_for_key(self._conn, ns, key)

    def get_private_data(self, ns: str, coll: str, key: str) -> VersionedValue | None:
        return pvtstate.get_private_data(self._conn, ns, coll, key)

    def get_private_data_hash(
        self, ns: str, coll: str, key_hash: bytes
    ) -> VersionedValue | None:
        entry = hashed.get_hashed_value(self._conn, ns, coll, key_hash)
        if entry is None:
            return None
        return VersionedValue(entry.value_hash, entry.version, entry.metadata)

    def get_private_data_range(
        self, ns: str, coll: str, start_key: str, end_key: str
    ) -> Iterator[KV]:
        return pvtstate.get_private_data_range(self._conn, ns, coll, start_key, end_key)

    def get_private_data_query_result(
        self, ns: str, coll: str, query: str
    ) -> Iterator[KV]:
        return pvtstate.get_private_data_query_result(self._conn, ns, coll, query)


class Snapshot(LedgerStateReader):
    """A `LedgerStateReader` on a pinned read transaction; `close` lets go of it."""

    def __init__(self, pinned: _Pinned, owner: Snapshots) -> None:
        super().__init__(pinned.conn)
        self._pinned: _Pinned | None = pinned
        self._owner = owner

    def close(self) -> None:
        """Stop using the snapshot; the last user ends its read transaction (idempotent)."""
        pinned, self._pinned = self._pinned, None
        if pinned is not None:
            self._owner.release(pinned)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Pinned:
    """One connection inside a read transaction, and how many snapshots use it."""

    __slots__ = ("conn", "data_version", "thread", "users")

    def __init__(
        self, conn: sqlite3.Connection, *, data_version: int, thread: int
    ) -> None:
        self.conn = conn
        self.data_version = data_version
        self.thread = thread
        self.users = 0
        conn.execute("BEGIN")
        # Reading pins the snapshot now rather than at the simulation's first read.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()


class Snapshots:
    """Read snapshots of one channel database (see the module docstring).

    Simulations opened on one thread while nothing was committed share one read
    transaction: it shows them the same state a fresh one would, and saves
    beginning and ending one per simulation. `PRAGMA data_version` on a probe
    connection tells whether anything was committed since the shared one began.
    The last user of a read transaction ends it; idle connections are kept for reuse.
    """

    def __init__(
        self, path: str | Path, *, max_idle: int = 8, cache_mib: int = 16
    ) -> None:
        self._path = str(path)
        self._max_idle = max_idle
        self._cache_mib = cache_mib
        self._idle: list[sqlite3.Connection] = []
        self._shared: dict[int, _Pinned] = {}
        self._probe: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def open(self) -> Snapshot:
        """A reader over the state as of now; close it when the simulation ends."""
        thread = threading.get_ident()
        try:
            with self._lock:
                if self._closed:
                    raise LedgerError(f"snapshots of {self._path} are closed")
                data_version = self._data_version()
                pinned = self._shared.get(thread)
                if pinned is None or pinned.data_version != data_version:
                    pinned = self._pin(data_version, thread)
                pinned.users += 1
        except sqlite3.Error as error:
            raise LedgerError(
                f"cannot open a read snapshot of {self._path}: {error}"
            ) from error
        return Snapshot(pinned, self)

    def release(self, pinned: _Pinned) -> None:
        """One user fewer; the last one ends the read transaction."""
        with self._lock:
            pinned.users -= 1
            if pinned.users > 0:
                return
            if self._shared.get(pinned.thread) is pinned:
                del self._shared[pinned.thread]
            conn = pinned.conn
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                return
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; snapshots still open close theirs on release."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            probe, self._probe = self._probe, None
        for conn in idle:
            conn.close()
        if probe is not None:
            probe.close()

    def _data_version(self) -> int:
        if self._probe is None:
            self._probe = self._connect()
        row = self._probe.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _pin(self, data_version: int, thread: int) -> _Pinned:
        conn = self._idle.pop() if self._idle else self._connect()
        try:
            pinned = _Pinned(conn, data_version=data_version, thread=thread)
        except sqlite3.Error:
            conn.close()
            raise
        self._shared[thread] = pinned
        return pinned

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise LedgerError(
                f"cannot open {self._path} for reading: {error}"
            ) from error
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA cache_size={-1024 * self._cache_mib}")
        return conn
