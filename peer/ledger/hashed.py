"""The hashed state: every channel member's view of private data, by key hash.

For each (namespace, collection, SHA-256 of the key) the channel database holds
the SHA-256 of the current value, the version (block, tx) that wrote it, and the
key metadata of the hashed write set (`KVMetadataWriteHash`, used for key-level
endorsement of private keys). The committer fills it from the hashed write sets
in the block, so it exists on every peer, member of the collection or not; it
serves `GetPrivateDataHash` and the MVCC check of hashed reads.

A hashed write with `is_purge` (Fabric 2.5 `PurgePrivateData`) deletes the entry
like a delete and, once the batch is written, purges the key's plaintext and its
history (`peer.ledger.pvtpurge`) in the same SQLite transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from peer.ledger import pvtrwset
from peer.ledger.pvtpurge import PurgeRecord, purge_private_key
from peer.ledger.schema import transaction
from peer.ledger.statedb import CollectionBatches, StateWrite, Version, WriteKind
from peer.ledger.values import decode_metadata, encode_metadata

__all__ = [
    "HashedKey",
    "HashedUpdateBatch",
    "HashedValue",
    "PurgeRequest",
    "apply_hashed_updates",
    "get_hashed_value",
    "get_hashed_version",
    "get_hashed_versions",
    "get_private_data_hash",
]


HashedKey = tuple[str, str, bytes]
"""(namespace, collection, key hash)."""


@dataclass(frozen=True, slots=True)
class HashedValue:
    """A committed hashed entry: the value's hash, its version and its key metadata."""

    value_hash: bytes
    version: Version
    metadata: Mapping[str, bytes] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """A valid transaction's `is_purge` hashed write: purge the key up to `version`."""

    ns: str
    coll: str
    key_hash: bytes
    version: Version


class HashedUpdateBatch(CollectionBatches):
    """The pending hashed writes of one block; call the methods in transaction order.

    Its keys are the key hashes in hex (see `CollectionBatches`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._purges: list[PurgeRequest] = []

    def put(
        self,
        ns: str,
        coll: str,
        key_hash: bytes,
        *,
        value_hash: bytes,
        version: Version,
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a value hash; `metadata` None keeps the entry's metadata."""
        self._batch(ns).put(
            coll, key_hash.hex(), value_hash, version, metadata=metadata
        )

    def delete(self, ns: str, coll: str, key_hash: bytes, version: Version) -> None:
        """Delete the entry with its metadata."""
        self._batch(ns).delete(coll, key_hash.hex(), version)

    def purge(self, ns: str, coll: str, key_hash: bytes, version: Version) -> None:
        """Delete the entry and purge the key's plaintext and history up to `version`."""
        self.delete(ns, coll, key_hash, version)
        self._purges.append(PurgeRequest(ns, coll, bytes(key_hash), version))

    def put_metadata(
        self,
        ns: str,
        coll: str,
        key_hash: bytes,
        metadata: Mapping[str, bytes],
        version: Version,
    ) -> None:
        """Replace the entry's metadata, keeping its value hash; ignored if absent."""
        self._batch(ns).put_metadata(coll, key_hash.hex(), metadata, version)

    def get(self, ns: str, coll: str, key_hash: bytes) -> StateWrite | None:
        batch = self._by_ns.get(ns)
        return None if batch is None else batch.get(coll, key_hash.hex())

    def items(self) -> Iterator[tuple[HashedKey, StateWrite]]:
        for ns, batch in self._by_ns.items():
            for (coll, hex_hash), write in batch.items():
                yield (ns, coll, bytes.fromhex(hex_hash)), write

    def purges(self) -> tuple[PurgeRequest, ...]:
        """The purge requests in transaction order."""
        return tuple(self._purges)


# ---------------------------------------------------------------- writing

_UPSERT_KEEP_METADATA = (
    "INSERT INTO pvt_hashed (ns, coll, key_hash, block_num, tx_num, value_hash) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ns, coll, key_hash) DO UPDATE SET "
    "block_num = excluded.block_num, tx_num = excluded.tx_num, "
    "value_hash = excluded.value_hash"
)
_UPSERT_WITH_METADATA = (
    "INSERT INTO pvt_hashed VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, coll, key_hash) DO UPDATE SET block_num = excluded.block_num, "
    "tx_num = excluded.tx_num, value_hash = excluded.value_hash, "
    "metadata = excluded.metadata"
)
_DELETE = "DELETE FROM pvt_hashed WHERE ns = ? AND coll = ? AND key_hash = ?"
_UPDATE_METADATA = (
    "UPDATE pvt_hashed SET block_num = ?, tx_num = ?, metadata = ? "
    "WHERE ns = ? AND coll = ? AND key_hash = ?"
)


def apply_hashed_updates(
    conn: sqlite3.Connection, batch: HashedUpdateBatch
) -> tuple[PurgeRecord, ...]:
    """Write the batch, then carry out its purges; atomic, joins an enclosing transaction.

    Returns the audit records of the purges, in transaction order.
    """
    keep: list[tuple[str, str, bytes, int, int, bytes]] = []
    replace: list[tuple[str, str, bytes, int, int, bytes, bytes | None]] = []
    deletes: list[tuple[str, str, bytes]] = []
    metadata: list[tuple[int, int, bytes | None, str, str, bytes]] = []
    for (ns, coll, hashed), write in sorted(batch.items(), key=_by_key):
        block_num, tx_num = write.version.block_num, write.version.tx_num
        if write.kind is WriteKind.DELETE:
            deletes.append((ns, coll, hashed))
        elif write.kind is WriteKind.METADATA:
            assert write.metadata is not None
            encoded = encode_metadata(write.metadata)
            metadata.append((block_num, tx_num, encoded, ns, coll, hashed))
        else:
            assert write.value is not None
            row = (ns, coll, hashed, block_num, tx_num, write.value)
            if write.metadata is None:
                keep.append(row)
            else:
                replace.append((*row, encode_metadata(write.metadata)))
    with transaction(conn):
        conn.executemany(_UPSERT_KEEP_METADATA, keep)
        conn.executemany(_UPSERT_WITH_METADATA, replace)
        conn.executemany(_DELETE, deletes)
        conn.executemany(_UPDATE_METADATA, metadata)
        return tuple(_purge(conn, request) for request in batch.purges())


def _by_key(item: tuple[HashedKey, StateWrite]) -> HashedKey:
    return item[0]


def _purge(conn: sqlite3.Connection, request: PurgeRequest) -> PurgeRecord:
    return purge_private_key(
        conn,
        request.ns,
        request.coll,
        request.key_hash,
        up_to_block=request.version.block_num,
        tx_num=request.version.tx_num,
    )


# ---------------------------------------------------------------- reading

_GET = (
    "SELECT value_hash, block_num, tx_num, metadata FROM pvt_hashed "
    "WHERE ns = ? AND coll = ? AND key_hash = ?"
)
_GET_VERSION = "SELECT block_num, tx_num FROM pvt_hashed WHERE ns = ? AND coll = ? AND key_hash = ?"


def get_private_data_hash(
    conn: sqlite3.Connection, ns: str, coll: str, key: str
) -> bytes | None:
    """`GetPrivateDataHash`: the SHA-256 of the key's current value, or None if absent."""
    hashed = get_hashed_value(conn, ns, coll, pvtrwset.key_hash(key))
    return None if hashed is None else hashed.value_hash


def get_hashed_value(
    conn: sqlite3.Connection, ns: str, coll: str, key_hash: bytes
) -> HashedValue | None:
    """The committed hashed entry of a key hash, or None when there is none."""
    row = conn.execute(_GET, (ns, coll, key_hash)).fetchone()
    if row is None:
        return None
    value_hash, block_num, tx_num, metadata = row
    return HashedValue(
        value_hash, Version(block_num, tx_num), decode_metadata(metadata)
    )


def get_hashed_version(
    conn: sqlite3.Connection, ns: str, coll: str, key_hash: bytes
) -> Version | None:
    """The committed version of a key hash (for MVCC of hashed reads), or None."""
    row = conn.execute(_GET_VERSION, (ns, coll, key_hash)).fetchone()
    return None if row is None else Version(row[0], row[1])


def get_hashed_versions(
    conn: sqlite3.Connection, keys: Iterable[HashedKey]
) -> dict[HashedKey, Version]:
    """Committed versions of many key hashes; absent ones are left out."""
    versions: dict[HashedKey, Version] = {}
    for ns, coll, hashed in dict.fromkeys(keys):
        version = get_hashed_version(conn, ns, coll, hashed)
        if version is not None:
            versions[(ns, coll, hashed)] = version
    return versions
