"""The peer's ledger storage: one SQLite database per channel.

- `schema`: opening the channel database, its tables and `transaction`.
- `statedb`: versioned world state, range queries, update batches, savepoint
  (`values`: how values and key metadata are stored).
- `keys`: Fabric composite keys and key rules.
- `mango`: rich (CouchDB Mango) queries over JSON values, and chaincode indexes
  (`mango_parse` checks queries, `mango_sql` compiles selectors, `mango_order`
  orders results and pages).
- `history`: `GetHistoryForKey`.
- `ledger`: `ChannelLedger`, committing blocks (block store append + one SQLite
  transaction) and replaying them after a crash; `updates`, `committed_txs` and
  `pvtupdates` derive a block's updates, `apply` writes them, `connections`
  holds the committer's, readers' and checkpointer's connections.
- `bench`: a micro-benchmark of the state database.

The block store lives in `common.blockstore`; private data and transient data
stores add their own tables to the same database.
"""

from peer.ledger.history import (
    HistoryBatch,
    KeyModification,
    KeyWrite,
    Timestamp,
    get_history_for_key,
    write_history,
)
from peer.ledger.keys import (
    create_composite_key,
    partial_composite_key_range,
    split_composite_key,
    validate_simple_key,
)
from peer.ledger.mango import (
    create_index,
    deploy_indexes,
    drop_index,
    explain_query,
    get_query_result,
    get_query_result_page,
    list_indexes,
    package_index_collection,
)
from peer.ledger.schema import ensure, migrate, open_channel_db, transaction
from peer.ledger.statedb import (
    KV,
    Page,
    UpdateBatch,
    Version,
    VersionedValue,
    apply_updates,
    get_state,
    get_state_metadata,
    get_state_range,
    get_state_range_page,
    get_versions,
    savepoint,
    write_savepoint,
    write_updates,
)

__all__ = [
    "KV",
    "HistoryBatch",
    "KeyModification",
    "KeyWrite",
    "Page",
    "Timestamp",
    "UpdateBatch",
    "Version",
    "VersionedValue",
    "apply_updates",
    "create_composite_key",
    "create_index",
    "deploy_indexes",
    "drop_index",
    "ensure",
    "explain_query",
    "get_history_for_key",
    "get_query_result",
    "get_query_result_page",
    "get_state",
    "get_state_metadata",
    "get_state_range",
    "get_state_range_page",
    "get_versions",
    "list_indexes",
    "migrate",
    "open_channel_db",
    "package_index_collection",
    "partial_composite_key_range",
    "savepoint",
    "split_composite_key",
    "transaction",
    "validate_simple_key",
    "write_history",
    "write_savepoint",
    "write_updates",
]
