"""Append-only block storage with an index, shared by the orderer and the peer.

`BlockStore.open(folder)` recovers from a crash (a torn last record is cut off and
reported in `store.recovery`), then serves appends and queries by number, header hash
and tx id. See `common.blockstore.store` for the storage layout and threading rules.
"""

from common.blockstore._files import fsync_directory
from common.blockstore._reading import StoredTx
from common.blockstore._recovery import OpenCheck, RecoveryReport, TornTail
from common.blockstore.store import FILE_SIZE_MAX, INDEX_FILE, BlockListener, BlockStore

__all__ = [
    "FILE_SIZE_MAX",
    "INDEX_FILE",
    "BlockListener",
    "BlockStore",
    "OpenCheck",
    "RecoveryReport",
    "StoredTx",
    "TornTail",
    "fsync_directory",
]
