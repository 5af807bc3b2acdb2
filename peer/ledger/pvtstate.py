"""The private state: plaintext private data of the collections this peer is a member of.

Per (namespace, collection, key) the channel database holds the value, the
version (block, tx) that wrote it and its key metadata, exactly like the public
state (`peer.ledger.statedb`), plus the key's SHA-256 so that a purge or an
expiry, which only know the key hash, can find it. The committer fills it from
the private write sets of valid transactions, in the block's SQLite transaction.

Reads: point reads, key ranges with the public state's rules (start
inclusive, end exclusive, "" start = first key, "" end = unbounded; keys in
UTF-8 byte order), which also serve partial composite-key queries, and rich
(Mango) queries over a collection's JSON values, run by `peer.ledger.mango` on
this table with the same semantics as public ones (selector, `fields`, `sort`,
`limit`, `skip`, `use_index`; no pages, as in Fabric). Their indexes are the
collection indexes a chaincode ships (`mango.create_index(..., collection=)`).
Every read returns what this peer holds: a peer that is not a member of the
collection, or still misses some of its data, sees less.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Mapping

from peer.ledger import mango
from peer.ledger.mango_parse import MangoQuery
from peer.ledger.pvtrwset import key_hash
from peer.ledger.schema import transaction
from peer.ledger.statedb import (
    KV,
    CollectionBatches,
    StateWrite,
    Version,
    VersionedValue,
    WriteKind,
)
from peer.ledger.values import decode_metadata, encode_metadata, stored_value

__all__ = [
    "PrivateKey",
    "PrivateUpdateBatch",
    "apply_private_updates",
    "get_private_data",
    "get_private_data_metadata",
    "get_private_data_query_result",
    "get_private_data_range",
]

PrivateKey = tuple[str, str, str]
"""(namespace, collection, key)."""


class PrivateUpdateBatch(CollectionBatches):
    """The pending private writes of one block; call the methods in transaction order.

    Later calls win; metadata None keeps the key's metadata (see `CollectionBatches`).
    """

    def put(
        self,
        ns: str,
        coll: str,
        key: str,
        value: bytes,
        version: Version,
        *,
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a value; `metadata` None keeps whatever metadata the key has."""
        self._batch(ns).put(coll, key, value, version, metadata=metadata)

    def delete(self, ns: str, coll: str, key: str, version: Version) -> None:
        """Delete the key with its metadata (also what a purge does to the private state)."""
        self._batch(ns).delete(coll, key, version)

    def put_metadata(
        self,
        ns: str,
        coll: str,
        key: str,
        metadata: Mapping[str, bytes],
        version: Version,
    ) -> None:
        """Replace the key's metadata, keeping its value; ignored if the key is absent."""
        self._batch(ns).put_metadata(coll, key, metadata, version)

    def get(self, ns: str, coll: str, key: str) -> StateWrite | None:
        batch = self._by_ns.get(ns)
        return None if batch is None else batch.get(coll, key)

    def items(self) -> Iterator[tuple[PrivateKey, StateWrite]]:
        for ns, batch in self._by_ns.items():
            for (coll, key), write in batch.items():
                yield (ns, coll, key), write


# ---------------------------------------------------------------- writing

_UPSERT_KEEP_METADATA = (
    "INSERT INTO pvt_state (ns, coll, key, key_hash, block_num, tx_num, val) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ns, coll, key) DO UPDATE SET "
    "block_num = excluded.block_num, tx_num = excluded.tx_num, val = excluded.val"
)
_UPSERT_WITH_METADATA = (
    "INSERT INTO pvt_state VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, coll, key) DO UPDATE SET block_num = excluded.block_num, "
    "tx_num = excluded.tx_num, val = excluded.val, metadata = excluded.metadata"
)
_DELETE = "DELETE FROM pvt_state WHERE ns = ? AND coll = ? AND key = ?"
_UPDATE_METADATA = (
    "UPDATE pvt_state SET block_num = ?, tx_num = ?, metadata = ? "
    "WHERE ns = ? AND coll = ? AND key = ?"
)


def apply_private_updates(conn: sqlite3.Connection, batch: PrivateUpdateBatch) -> None:
    """Write the batch's puts, deletes and metadata changes.

    Atomic; joins an enclosing transaction (the block's commit).
    """
    keep: list[tuple[str, str, str, bytes, int, int, bytes | str]] = []
    replace: list[tuple[str, str, str, bytes, int, int, bytes | str, bytes | None]] = []
    deletes: list[tuple[str, str, str]] = []
    metadata: list[tuple[int, int, bytes | None, str, str, str]] = []
    for (ns, coll, key), write in sorted(batch.items(), key=_by_key):
        block_num, tx_num = write.version.block_num, write.version.tx_num
        if write.kind is WriteKind.DELETE:
            deletes.append((ns, coll, key))
        elif write.kind is WriteKind.METADATA:
            assert write.metadata is not None
            encoded = encode_metadata(write.metadata)
            metadata.append((block_num, tx_num, encoded, ns, coll, key))
        else:
            assert write.value is not None
            row = (
                ns,
                coll,
                key,
                key_hash(key),
                block_num,
                tx_num,
                stored_value(write.value),
            )
            if write.metadata is None:
                keep.append(row)
            else:
                replace.append((*row, encode_metadata(write.metadata)))
    with transaction(conn):
        conn.executemany(_UPSERT_KEEP_METADATA, keep)
        conn.executemany(_UPSERT_WITH_METADATA, replace)
        conn.executemany(_DELETE, deletes)
        conn.executemany(_UPDATE_METADATA, metadata)


def _by_key(item: tuple[PrivateKey, StateWrite]) -> PrivateKey:
    return item[0]


# ---------------------------------------------------------------- reading

_GET = (
    "SELECT CAST(val AS BLOB), block_num, tx_num, metadata FROM pvt_state "
    "WHERE ns = ? AND coll = ? AND key = ?"
)
_RANGE_FROM = (
    "SELECT key, CAST(val AS BLOB), block_num, tx_num FROM pvt_state "
    "WHERE ns = ? AND coll = ? AND key >= ? ORDER BY key"
)
_RANGE_BETWEEN = (
    "SELECT key, CAST(val AS BLOB), block_num, tx_num FROM pvt_state "
    "WHERE ns = ? AND coll = ? AND key >= ? AND key < ? ORDER BY key"
)


def get_private_data(
    conn: sqlite3.Connection, ns: str, coll: str, key: str
) -> VersionedValue | None:
    """The committed plaintext of a private key, or None when this peer has none.

    None does not prove the key is absent on the channel: compare with
    `hashed.get_hashed_version` to tell "deleted" from "missing on this peer".
    """
    row = conn.execute(_GET, (ns, coll, key)).fetchone()
    if row is None:
        return None
    value, block_num, tx_num, metadata = row
    return VersionedValue(value, Version(block_num, tx_num), decode_metadata(metadata))


def get_private_data_metadata(
    conn: sqlite3.Connection, ns: str, coll: str, key: str
) -> dict[str, bytes] | None:
    """The private key's metadata ({} when none), or None when the key is not here."""
    row = conn.execute(
        "SELECT metadata FROM pvt_state WHERE ns = ? AND coll = ? AND key = ?",
        (ns, coll, key),
    ).fetchone()
    return None if row is None else decode_metadata(row[0])


def get_private_data_range(
    conn: sqlite3.Connection, ns: str, coll: str, start_key: str, end_key: str
) -> Generator[KV, None, None]:
    """Stream the collection's keys in [start_key, end_key) in key order ("" end = unbounded).

    The query starts at the call and holds a read snapshot until the generator is
    exhausted or closed.
    """
    if end_key:
        cursor = conn.execute(_RANGE_BETWEEN, (ns, coll, start_key, end_key))
    else:
        cursor = conn.execute(_RANGE_FROM, (ns, coll, start_key))
    return (KV(key, value, Version(b, t)) for key, value, b, t in cursor)


def get_private_data_query_result(
    conn: sqlite3.Connection, ns: str, coll: str, query: str | bytes | MangoQuery
) -> Generator[KV, None, None]:
    """Stream the collection's keys whose committed JSON value matches a Mango query.

    Sort, skip, limit, `fields` and `use_index` work as in public rich queries.
    The query is checked and started at the call (a bad query raises
    `MangoQueryError` here); the generator then holds its read snapshot until
    exhausted or closed.
    """
    return mango.get_query_result(conn, ns, query, collection=coll)
