"""Private data collections in the channel database: the tables and the public API.

A block's private data lands in five places, all written in the block's SQLite
transaction by the `ChannelLedger`:

- `hashed`: the hashed state (key hash → value hash, version, metadata), on
  every channel member, from the hashed write sets in the block;
- `pvtstate`: the plaintext private state of member collections;
- `pvtstore`: the private write sets by block and tx, and missing-data records
  for reconciliation;
- `pvtexpiry`: the block-to-live schedule and `expire`;
- `pvtpurge`: `PurgePrivateData` and its audit records.

`pvtrwset` has the hash rules (key hash = SHA-256 of the key's UTF-8 bytes,
value hash = SHA-256 of the value, pvt_rwset_hash = SHA-256 of the marshaled
KVRWSet). The tables belong to the schema component "pvtdata"; call `ensure`
once after opening the channel database.

Order within a block's transaction does not matter: purges and expiry only
touch versions older than the purging transaction or equal to the expiring
block, and storing a write set drops keys that a later transaction purged.
"""

from __future__ import annotations

import sqlite3

from peer.ledger.hashed import (
    HashedUpdateBatch,
    HashedValue,
    PurgeRequest,
    apply_hashed_updates,
    get_hashed_value,
    get_hashed_version,
    get_hashed_versions,
    get_private_data_hash,
)
from peer.ledger.pvtexpiry import expire, expiring_block, schedule_expiry
from peer.ledger.pvtpurge import PurgeRecord, list_purges, purge_private_key
from peer.ledger.pvtrwset import CollectionFilter, key_hash, pvt_rwset_hash, value_hash
from peer.ledger.pvtstate import (
    PrivateUpdateBatch,
    apply_private_updates,
    get_private_data,
    get_private_data_metadata,
    get_private_data_query_result,
    get_private_data_range,
)
from peer.ledger.pvtstore import (
    MissingPrivateData,
    get_block_private_data,
    get_collection_private_data,
    list_missing,
    mark_eligible,
    resolve_missing,
    store_block_private_data,
)
from peer.ledger.schema import migrate

__all__ = [
    "PVTDATA_MIGRATIONS",
    "CollectionFilter",
    "HashedUpdateBatch",
    "HashedValue",
    "MissingPrivateData",
    "PrivateUpdateBatch",
    "PurgeRecord",
    "PurgeRequest",
    "apply_hashed_updates",
    "apply_private_updates",
    "ensure",
    "expire",
    "expiring_block",
    "get_block_private_data",
    "get_collection_private_data",
    "get_hashed_value",
    "get_hashed_version",
    "get_hashed_versions",
    "get_private_data",
    "get_private_data_hash",
    "get_private_data_metadata",
    "get_private_data_query_result",
    "get_private_data_range",
    "key_hash",
    "list_missing",
    "list_purges",
    "mark_eligible",
    "purge_private_key",
    "pvt_rwset_hash",
    "resolve_missing",
    "schedule_expiry",
    "store_block_private_data",
    "value_hash",
]

# Each entry is one schema version; append, never edit a published entry.
PVTDATA_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE pvt_hashed (
            ns         TEXT    NOT NULL,
            coll       TEXT    NOT NULL,
            key_hash   BLOB    NOT NULL,
            block_num  INTEGER NOT NULL,
            tx_num     INTEGER NOT NULL,
            value_hash BLOB    NOT NULL,
            metadata   BLOB,
            PRIMARY KEY (ns, coll, key_hash)
        ) WITHOUT ROWID""",
        # val is TEXT for a JSON object and BLOB otherwise, as in the public state.
        """CREATE TABLE pvt_state (
            ns        TEXT    NOT NULL,
            coll      TEXT    NOT NULL,
            key       TEXT    NOT NULL,
            key_hash  BLOB    NOT NULL,
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            val                NOT NULL,
            metadata  BLOB,
            PRIMARY KEY (ns, coll, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX pvt_state_by_hash ON pvt_state (ns, coll, key_hash)",
        """CREATE TABLE pvt_store (
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            ns        TEXT    NOT NULL,
            coll      TEXT    NOT NULL,
            rwset     BLOB    NOT NULL,
            PRIMARY KEY (block_num, tx_num, ns, coll)
        ) WITHOUT ROWID""",
        # Where each key hash occurs in the store, so a purge need not scan it.
        """CREATE TABLE pvt_store_key (
            ns        TEXT    NOT NULL,
            coll      TEXT    NOT NULL,
            key_hash  BLOB    NOT NULL,
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            PRIMARY KEY (ns, coll, key_hash, block_num, tx_num)
        ) WITHOUT ROWID""",
        "CREATE INDEX pvt_store_key_by_block ON pvt_store_key (block_num, ns, coll)",
        """CREATE TABLE pvt_missing (
            block_num INTEGER NOT NULL,
            tx_num    INTEGER NOT NULL,
            ns        TEXT    NOT NULL,
            coll      TEXT    NOT NULL,
            eligible  INTEGER NOT NULL,
            PRIMARY KEY (block_num, tx_num, ns, coll)
        ) WITHOUT ROWID""",
        "CREATE INDEX pvt_missing_by_collection ON pvt_missing (ns, coll, eligible)",
        """CREATE TABLE pvt_expiry_key (
            expiring_block   INTEGER NOT NULL,
            ns               TEXT    NOT NULL,
            coll             TEXT    NOT NULL,
            key_hash         BLOB    NOT NULL,
            committing_block INTEGER NOT NULL,
            PRIMARY KEY (expiring_block, ns, coll, key_hash, committing_block)
        ) WITHOUT ROWID""",
        """CREATE TABLE pvt_expiry_block (
            expiring_block   INTEGER NOT NULL,
            ns               TEXT    NOT NULL,
            coll             TEXT    NOT NULL,
            committing_block INTEGER NOT NULL,
            PRIMARY KEY (expiring_block, ns, coll, committing_block)
        ) WITHOUT ROWID""",
        """CREATE TABLE pvt_purge (
            ns                    TEXT    NOT NULL,
            coll                  TEXT    NOT NULL,
            key_hash              BLOB    NOT NULL,
            block_num             INTEGER NOT NULL,
            tx_num                INTEGER NOT NULL,
            private_state_removed INTEGER NOT NULL,
            hashed_state_removed  INTEGER NOT NULL,
            store_entries_purged  INTEGER NOT NULL,
            PRIMARY KEY (ns, coll, key_hash, block_num, tx_num)
        ) WITHOUT ROWID""",
    ),
)


def ensure(conn: sqlite3.Connection) -> None:
    """Create or upgrade the private data tables (schema component "pvtdata")."""
    migrate(conn, "pvtdata", PVTDATA_MIGRATIONS)
