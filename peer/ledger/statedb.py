"""The world state: versioned values per (namespace, key), in the channel database.

Each key holds a value, the version (block number, tx number) of the transaction
that last wrote it, and optional key metadata (name → bytes; Fabric keeps the
key-level endorsement policy under `VALIDATION_PARAMETER`). Keys sort by their
UTF-8 bytes, which is code-point order, the order Fabric's LevelDB state uses.

Writes arrive as an `UpdateBatch` (pure data, built by the committer from the
valid transactions of a block) and are applied with `apply_updates`, which also
records the savepoint, all in one SQLite transaction. Reads are plain functions
over a connection: point reads, bulk versions for MVCC, and key-range scans with
Fabric's rules (start inclusive, end exclusive, "" start = from the first key,
"" end = unbounded) and Fabric's pagination (the bookmark is the key to start
the next page from; "" once the range is exhausted).

Streaming reads (`get_state_range`) hold a read snapshot until exhausted or
closed (`close()` on the generator); run them on a reader connection, not the
committer's.

Values that are JSON objects are stored as SQLite TEXT, everything else as BLOB;
only the former take part in rich queries (`peer.ledger.mango`). Readers always
get the exact bytes that were written.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from peer.errors import LedgerError
from peer.ledger.schema import transaction
from peer.ledger.values import decode_metadata, encode_metadata, stored_value

__all__ = [
    "KV",
    "CollectionBatches",
    "Page",
    "StateWrite",
    "UpdateBatch",
    "Version",
    "VersionedValue",
    "WriteKind",
    "apply_updates",
    "get_metadata_of",
    "get_state",
    "get_state_metadata",
    "get_state_range",
    "get_state_range_page",
    "get_versions",
    "savepoint",
    "savepoint_height",
    "write_savepoint",
    "write_updates",
]


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """The height of the transaction that last wrote a key."""

    block_num: int
    tx_num: int


@dataclass(frozen=True, slots=True)
class VersionedValue:
    """A committed value with its version and key metadata (empty when none)."""

    value: bytes
    version: Version
    metadata: Mapping[str, bytes] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class KV:
    """One result of a range or rich query."""

    key: str
    value: bytes
    version: Version


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paginated query; `bookmark` is "" when nothing follows."""

    records: tuple[KV, ...]
    bookmark: str

    @property
    def fetched_records_count(self) -> int:
        return len(self.records)


class WriteKind(enum.Enum):
    PUT = "put"
    DELETE = "delete"
    METADATA = "metadata"  # metadata only: the value stays, the version moves


class StateWrite(NamedTuple):
    """The net effect of a block's valid transactions on one key.

    For PUT, `metadata` None means "keep the committed metadata" (a transaction
    that writes only the value does not touch the key's metadata). An immutable
    NamedTuple rather than a frozen dataclass: one is built for every committed
    write, and it builds about six times faster.
    """

    kind: WriteKind
    version: Version
    value: bytes | None = None
    metadata: Mapping[str, bytes] | None = None


class UpdateBatch:
    """The pending writes of one block, per (namespace, key); later calls win.

    Call the methods in transaction order. A metadata-only write after a delete
    in the same block is dropped, as in Fabric: the key no longer exists.
    """

    def __init__(self) -> None:
        self._writes: dict[tuple[str, str], StateWrite] = {}

    def put(
        self,
        ns: str,
        key: str,
        value: bytes,
        version: Version,
        *,
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a value; `metadata` None keeps whatever metadata the key has."""
        ns_key = (ns, key)
        if metadata is None:
            earlier = self._writes.get(ns_key)
            if earlier is not None:
                metadata = _carried_metadata(earlier)
        self._writes[ns_key] = StateWrite(_PUT, version, bytes(value), metadata)

    def delete(self, ns: str, key: str, version: Version) -> None:
        """Delete the key together with its metadata."""
        self._writes[(ns, key)] = StateWrite(WriteKind.DELETE, version)

    def put_metadata(
        self, ns: str, key: str, metadata: Mapping[str, bytes], version: Version
    ) -> None:
        """Replace the key's metadata, keeping its value; ignored if the key is absent."""
        earlier = self._writes.get((ns, key))
        if earlier is not None and earlier.kind is WriteKind.DELETE:
            return
        if earlier is not None and earlier.kind is WriteKind.PUT:
            write = StateWrite(WriteKind.PUT, version, earlier.value, dict(metadata))
        else:
            write = StateWrite(WriteKind.METADATA, version, None, dict(metadata))
        self._writes[(ns, key)] = write

    def get(self, ns: str, key: str) -> StateWrite | None:
        return self._writes.get((ns, key))

    def items(self) -> Iterable[tuple[tuple[str, str], StateWrite]]:
        return self._writes.items()

    def __contains__(self, ns_key: object) -> bool:
        return ns_key in self._writes

    def __len__(self) -> int:
        return len(self._writes)


class CollectionBatches:
    """Pending writes per namespace, each in an `UpdateBatch` whose "namespace" is the
    collection: the base of the private and the hashed state's batches, whose puts,
    deletes and metadata writes thus combine exactly as public state writes do.
    """

    def __init__(self) -> None:
        self._by_ns: dict[str, UpdateBatch] = {}

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._by_ns.values())

    def _batch(self, ns: str) -> UpdateBatch:
        return self._by_ns.setdefault(ns, UpdateBatch())


_PUT = WriteKind.PUT


def _carried_metadata(earlier: StateWrite) -> Mapping[str, bytes] | None:
    """Metadata a value-only put inherits from an earlier write in the same block."""
    if earlier.kind is WriteKind.DELETE:
        return {}
    return earlier.metadata


# ---------------------------------------------------------------- writing

# hist_block/hist_tx: the key's newest history row (peer.ledger.history), given
# with the value by the committer; a put without one keeps the current head.
_UPSERT_KEEP_METADATA = (
    "INSERT INTO state (ns, key, block_num, tx_num, val, hist_block, hist_tx) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, key) DO UPDATE SET block_num = excluded.block_num, "
    "tx_num = excluded.tx_num, val = excluded.val, "
    "hist_block = coalesce(excluded.hist_block, hist_block), "
    "hist_tx = coalesce(excluded.hist_tx, hist_tx)"
)
_UPSERT_WITH_METADATA = (
    "INSERT INTO state (ns, key, block_num, tx_num, val, metadata, hist_block, "
    "hist_tx) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, key) DO UPDATE SET block_num = excluded.block_num, "
    "tx_num = excluded.tx_num, val = excluded.val, metadata = excluded.metadata, "
    "hist_block = coalesce(excluded.hist_block, hist_block), "
    "hist_tx = coalesce(excluded.hist_tx, hist_tx)"
)
# A deleted key's history head moves to history_heads (never backwards: the
# committer has recorded the delete's own row there already).
_KEEP_HISTORY_HEAD = (
    "INSERT INTO history_heads (ns, key, block_num, tx_num) "
    "SELECT ns, key, hist_block, hist_tx FROM state "
    "WHERE ns = ? AND key = ? AND hist_block IS NOT NULL "
    "ON CONFLICT (ns, key) DO UPDATE SET "
    "block_num = excluded.block_num, tx_num = excluded.tx_num "
    "WHERE (excluded.block_num, excluded.tx_num) "
    "> (history_heads.block_num, history_heads.tx_num)"
)
_DELETE = "DELETE FROM state WHERE ns = ? AND key = ?"
_UPDATE_METADATA = (
    "UPDATE state SET block_num = ?, tx_num = ?, metadata = ? WHERE ns = ? AND key = ?"
)
_NO_HEAD = (None, None)


def apply_updates(
    conn: sqlite3.Connection, batch: UpdateBatch, *, savepoint: Version | int
) -> None:
    """Apply a block's updates and record the savepoint, in one transaction.

    Nested inside an enclosing `transaction(conn)`, this becomes part of it.
    """
    with transaction(conn):
        write_updates(conn, batch)
        write_savepoint(conn, savepoint)


def write_updates(
    conn: sqlite3.Connection,
    batch: UpdateBatch,
    *,
    history_heads: Mapping[tuple[str, str], tuple[int, int]] | None = None,
) -> None:
    """Write the batch's puts, deletes and metadata changes atomically.

    `history_heads` gives the newest history row of put keys (from
    `HistoryBatch.put_heads`, whose rows are already written); keys it leaves
    out keep their head. Rows go in key order: B-tree updates with locality are
    several times faster.
    """
    heads: Mapping[tuple[str, str], tuple[int, int] | tuple[None, None]] = (
        history_heads or {}
    )
    keep: list[tuple[str, str, int, int, bytes | str, int | None, int | None]] = []
    replace: list[
        tuple[str, str, int, int, bytes | str, bytes | None, int | None, int | None]
    ] = []
    deletes: list[tuple[str, str]] = []
    metadata: list[tuple[int, int, bytes | None, str, str]] = []
    for ns_key, write in sorted(batch.items(), key=_by_key):
        ns, key = ns_key
        block_num, tx_num = write.version.block_num, write.version.tx_num
        if write.kind is WriteKind.DELETE:
            deletes.append(ns_key)
        elif write.kind is WriteKind.METADATA:
            assert write.metadata is not None
            metadata.append(
                (block_num, tx_num, encode_metadata(write.metadata), ns, key)
            )
        else:
            assert write.value is not None
            stored = stored_value(write.value)
            head_block, head_tx = heads.get(ns_key, _NO_HEAD)
            if write.metadata is None:
                keep.append((ns, key, block_num, tx_num, stored, head_block, head_tx))
            else:
                encoded = encode_metadata(write.metadata)
                replace.append(
                    (ns, key, block_num, tx_num, stored, encoded, head_block, head_tx)
                )
    with transaction(conn):
        conn.executemany(_UPSERT_KEEP_METADATA, keep)
        conn.executemany(_UPSERT_WITH_METADATA, replace)
        conn.executemany(_KEEP_HISTORY_HEAD, deletes)
        conn.executemany(_DELETE, deletes)
        conn.executemany(_UPDATE_METADATA, metadata)


def _by_key(item: tuple[tuple[str, str], StateWrite]) -> tuple[str, str]:
    return item[0]


def write_savepoint(conn: sqlite3.Connection, height: Version | int) -> None:
    """Record the last committed block (never moving backwards)."""
    if isinstance(height, int):
        height = Version(height, 0)
    current = savepoint_height(conn)
    if current is not None and height.block_num < current.block_num:
        raise LedgerError(
            f"savepoint would move backwards from block {current.block_num} "
            f"to block {height.block_num}"
        )
    conn.execute(
        "INSERT OR REPLACE INTO savepoint VALUES (0, ?, ?)",
        (height.block_num, height.tx_num),
    )


# ---------------------------------------------------------------- reading

_GET = "SELECT CAST(val AS BLOB), block_num, tx_num, metadata FROM state WHERE ns = ? AND key = ?"
_RANGE_FROM = (
    "SELECT key, CAST(val AS BLOB), block_num, tx_num FROM state "
    "WHERE ns = ? AND key >= ? ORDER BY key"
)
_RANGE_BETWEEN = (
    "SELECT key, CAST(val AS BLOB), block_num, tx_num FROM state "
    "WHERE ns = ? AND key >= ? AND key < ? ORDER BY key"
)
_VERSIONS_CHUNK = 250


def get_state(conn: sqlite3.Connection, ns: str, key: str) -> VersionedValue | None:
    """The committed value of a key, or None when it does not exist."""
    row = conn.execute(_GET, (ns, key)).fetchone()
    if row is None:
        return None
    value, block_num, tx_num, metadata = row
    return VersionedValue(value, Version(block_num, tx_num), decode_metadata(metadata))


def get_state_metadata(
    conn: sqlite3.Connection, ns: str, key: str
) -> dict[str, bytes] | None:
    """The key's metadata ({} when it has none), or None when the key does not exist."""
    row = conn.execute(
        "SELECT metadata FROM state WHERE ns = ? AND key = ?", (ns, key)
    ).fetchone()
    return None if row is None else decode_metadata(row[0])


def get_metadata_of(
    conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, bytes]]:
    """Metadata of many (namespace, key) pairs; absent keys and keys without
    metadata are left out."""
    found: dict[tuple[str, str], dict[str, bytes]] = {}
    for ns, chunk in _chunks_by_ns(keys):
        sql = (
            "SELECT key, metadata FROM state WHERE ns = ? AND metadata IS NOT NULL "
            f"AND key IN ({', '.join(['?'] * len(chunk))})"
        )
        for key, encoded in conn.execute(sql, (ns, *chunk)):
            found[(ns, key)] = decode_metadata(encoded)
    return found


def _chunks_by_ns(
    keys: Iterable[tuple[str, str]],
) -> Iterator[tuple[str, list[str]]]:
    """Distinct keys per namespace, in chunks small enough for one statement."""
    by_ns: dict[str, list[str]] = {}
    for ns, key in keys:
        by_ns.setdefault(ns, []).append(key)
    for ns, ns_keys in by_ns.items():
        unique = list(dict.fromkeys(ns_keys))
        for start in range(0, len(unique), _VERSIONS_CHUNK):
            yield ns, unique[start : start + _VERSIONS_CHUNK]


def get_versions(
    conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Version]:
    """Committed versions of many (namespace, key) pairs; absent keys are left out."""
    versions: dict[tuple[str, str], Version] = {}
    for ns, chunk in _chunks_by_ns(keys):
        sql = (
            "SELECT key, block_num, tx_num FROM state WHERE ns = ? AND key IN "
            f"({', '.join(['?'] * len(chunk))})"
        )
        for key, block_num, tx_num in conn.execute(sql, (ns, *chunk)):
            versions[(ns, key)] = Version(block_num, tx_num)
    return versions


def get_state_range(
    conn: sqlite3.Connection, ns: str, start_key: str, end_key: str
) -> Generator[KV, None, None]:
    """Stream the keys in [start_key, end_key) in key order ("" end = unbounded)."""
    cursor = _range_cursor(conn, ns, start_key, end_key, None)
    return (KV(key, value, Version(b, t)) for key, value, b, t in cursor)


def get_state_range_page(
    conn: sqlite3.Connection,
    ns: str,
    start_key: str,
    end_key: str,
    *,
    page_size: int,
    bookmark: str = "",
) -> Page:
    """One page of a range query; a non-empty bookmark replaces the start key."""
    if page_size <= 0:
        raise ValueError(f"page_size must be positive, got {page_size}")
    start = bookmark or start_key
    rows = _range_cursor(conn, ns, start, end_key, page_size + 1).fetchall()
    records = tuple(
        KV(key, value, Version(b, t)) for key, value, b, t in rows[:page_size]
    )
    next_bookmark = rows[page_size][0] if len(rows) > page_size else ""
    return Page(records, next_bookmark)


def _range_cursor(
    conn: sqlite3.Connection, ns: str, start_key: str, end_key: str, limit: int | None
) -> sqlite3.Cursor:
    sql = _RANGE_BETWEEN if end_key else _RANGE_FROM
    params: tuple[str | int, ...] = (
        (ns, start_key, end_key) if end_key else (ns, start_key)
    )
    if limit is not None:
        return conn.execute(f"{sql} LIMIT ?", (*params, limit))
    return conn.execute(sql, params)


def savepoint(conn: sqlite3.Connection) -> int | None:
    """The number of the last block whose updates were applied, or None."""
    height = savepoint_height(conn)
    return None if height is None else height.block_num


def savepoint_height(conn: sqlite3.Connection) -> Version | None:
    """The full savepoint (block number, tx number), or None before the first block."""
    row = conn.execute(
        "SELECT block_num, tx_num FROM savepoint WHERE id = 0"
    ).fetchone()
    return None if row is None else Version(row[0], row[1])
