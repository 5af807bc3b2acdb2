"""The channel ledger: one channel's block store and database, committed block by block.

Commit phase, the last step of the pipeline. Committing block n (its
TRANSACTIONS_FILTER already set by the validator) is two durable steps:
1. append the block to the block store (one fsync);
2. one SQLite transaction writing the block's public state, history, private
   data and transient-store purge together with the savepoint n.
The transaction's writes overlap with the append (which runs on a helper
thread), but it commits only after the append has returned, so the database
never gets ahead of the block store. A crash in between leaves the database
behind the block store; `open` replays every block above the savepoint,
deriving its updates from the stored block again (`peer.ledger.updates`), so no
committed block is ever lost and the state always equals a replay of the chain.

Threads: one writer (the committer) calls `commit_block`; block-store listeners
run on the ledger's append thread, before the block's database transaction has
committed (`commit_block` returning, or the COMMITTED step, means the state is
readable); WAL checkpoints run on a thread of their own. Reads may come from
any thread and use a per-thread read-only connection, so they see the state of
the last committed SQLite transaction and never wait for the writer. All calls
block; the peer crosses into asyncio through one `to_thread` boundary.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from common.blockstore import BlockStore
from peer.errors import LedgerError
from peer.ledger import pvtdata
from peer.ledger.apply import (
    ApplyHooks,
    apply_block_updates,
    keep_in_transient,
    private_data_on_hand,
)
from peer.ledger.committed_txs import DecodedTx
from peer.ledger.connections import Checkpointer, Readers, open_writer
from peer.ledger.history import KeyModification, get_history_for_key
from peer.ledger.pvtupdates import EVERY_COLLECTION, CollectionConfigs
from peer.ledger.statedb import (
    KV,
    Page,
    VersionedValue,
    get_state,
    get_state_metadata,
    get_state_range,
    get_state_range_page,
    savepoint,
)
from peer.ledger.updates import BlockUpdates, derive_block_updates
from peer.metrics import PURGES
from protos.common import common_pb2, ledger_pb2

__all__ = [
    "BLOCKS_DIR",
    "DATABASE_FILE",
    "TRANSIENT_RETENTION_BLOCKS",
    "ChannelLedger",
    "CommitObserver",
    "CommitStep",
]

_LOG = logging.getLogger(__name__)

BLOCKS_DIR = "blocks"
DATABASE_FILE = "ledger.sqlite"
TRANSIENT_RETENTION_BLOCKS = 1000
"""Fabric's default `transientstoreMaxBlockRetention`."""


class CommitStep(enum.Enum):
    """Points inside a commit, reported to a `CommitObserver` (metrics, crash tests).

    TRANSIENT_STORED: private data handed to `commit_block` is in the transient
    store; the block is not appended yet. HISTORY_WRITTEN, STATE_WRITTEN: inside
    the open database transaction (the block's append may still be running).
    APPENDED: the block is durable; the database transaction is still open.
    COMMITTED: the database transaction, with the savepoint, is committed.
    REPLAYED: `open` re-applied a block above the savepoint.
    """

    TRANSIENT_STORED = "transient-stored"
    STATE_WRITTEN = "state-written"
    HISTORY_WRITTEN = "history-written"
    APPENDED = "appended"
    COMMITTED = "committed"
    REPLAYED = "replayed"


CommitObserver = Callable[[CommitStep, int], None]
"""Called in the writer's thread with each step and the block number."""


class ChannelLedger:
    """The ledger of one channel on this peer. Open with `ChannelLedger.open`."""

    def __init__(
        self,
        *,
        channel_id: str,
        store: BlockStore,
        conn: sqlite3.Connection,
        database_path: Path,
        collections: CollectionConfigs,
        transient_retention_blocks: int,
        observer: CommitObserver | None,
    ) -> None:
        self.channel_id = channel_id
        self._store = store
        self._conn = conn
        self._readers = Readers(database_path)
        self._checkpointer = Checkpointer(database_path)
        self._collections = collections
        self._retention = transient_retention_blocks
        self._observer = observer
        self._appender = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"ledger-append-{channel_id}"
        )
        self._broken: str | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        folder: Path | str,
        *,
        channel_id: str,
        collections: CollectionConfigs = EVERY_COLLECTION,
        transient_retention_blocks: int = TRANSIENT_RETENTION_BLOCKS,
        observer: CommitObserver | None = None,
    ) -> ChannelLedger:
        """Open (or create) the ledger in `folder` and replay blocks above the savepoint.

        `collections` tells which private data collections this peer is a member
        of and their block-to-live; transient private data endorsed more than
        `transient_retention_blocks` blocks ago is dropped.

        Raises:
            CorruptBlockStore: the block store is damaged (see `BlockStore.open`).
            LedgerError: the database is unusable, is ahead of the block store, or a
                stored block cannot be replayed.
        """
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        with ExitStack() as on_error:
            store = BlockStore.open(root / BLOCKS_DIR)
            on_error.callback(store.close)
            conn = open_writer(root / DATABASE_FILE)
            on_error.callback(conn.close)
            ledger = cls(
                channel_id=channel_id,
                store=store,
                conn=conn,
                database_path=root / DATABASE_FILE,
                collections=collections,
                transient_retention_blocks=transient_retention_blocks,
                observer=observer,
            )
            on_error.pop_all()
        try:
            ledger._replay()
        except BaseException:
            ledger.close()
            raise
        return ledger

    # Committing

    def commit_block(
        self,
        block: common_pb2.Block,
        pvt_data: Mapping[int, bytes] | None = None,
        *,
        decoded: Sequence[DecodedTx | None] | None = None,
    ) -> None:
        """Append a validated block and apply its valid transactions, durably.

        `block` carries its TRANSACTIONS_FILTER (one TxValidationCode per
        transaction). `pvt_data` maps a transaction's position in the block to its
        marshaled TxPvtReadWriteSet; collections whose write set does not hash to
        the block's `pvt_rwset_hash` are ignored, and the transient store is
        searched for the rest.

        `decoded` (one entry per transaction, from the validator: see
        `committed_txs.DecodedTx`) spares decoding the VALID endorser transactions
        again; it must have been decoded from this block's own bytes.

        Contract for private data: every private write set this peer obtained for
        the block (endorsed here, pushed by or pulled from other peers) must be in
        the transient store before the block is appended, because a replay after a
        crash finds private data nowhere else (what it cannot find is recorded as
        missing, for reconciliation). `commit_block` stores `pvt_data` there
        itself before appending; data obtained otherwise must already be there.

        Raises:
            BlockRejected: the block does not extend the chain (nothing is applied).
            LedgerError: the block has no transaction filter or a VALID transaction
                does not decode (nothing is written); or the database write failed
                after the block was appended, and the ledger must be reopened (the
                block is then replayed).
        """
        self._check_writable()
        given = dict(pvt_data or {})
        updates = self._derive(block, given, decoded)
        if given:
            keep_in_transient(self._conn, updates, given)
            self._observe(CommitStep.TRANSIENT_STORED, updates.block_num)
        # The append runs on the appender thread while this one writes the
        # database transaction (SQLite releases the GIL); the transaction commits
        # only once the append has returned.
        appended = self._appender.submit(
            self._store.append, block, tx_ids=updates.tx_id_at
        )
        try:
            self._apply(updates, appended=appended)
        except BaseException as error:
            self._fail(updates.block_num, appended, error)
        self._observe(CommitStep.COMMITTED, updates.block_num)
        if updates.private.hashed.purges():
            self._erase_purged(updates)

    # Reading

    @property
    def height(self) -> int:
        """The number of blocks in the block store (the next block's number)."""
        return self._store.height

    @property
    def block_store(self) -> BlockStore:
        """The channel's block store, for block and transaction queries."""
        return self._store

    def blockchain_info(self) -> ledger_pb2.BlockchainInfo:
        """Height and the header hashes of the last two blocks."""
        return self._store.blockchain_info()

    def savepoint(self) -> int | None:
        """The last block whose updates the database holds, or None."""
        return savepoint(self._readers.get())

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """The committed value of a key, or None."""
        return get_state(self._readers.get(), ns, key)

    def get_state_metadata(self, ns: str, key: str) -> dict[str, bytes] | None:
        """The key's metadata ({} when none), or None when the key does not exist."""
        return get_state_metadata(self._readers.get(), ns, key)

    def get_state_range(
        self, ns: str, start_key: str, end_key: str
    ) -> Generator[KV, None, None]:
        """Stream [start_key, end_key) in key order; holds a read snapshot until done."""
        return get_state_range(self._readers.get(), ns, start_key, end_key)

    def get_state_range_page(
        self,
        ns: str,
        start_key: str,
        end_key: str,
        *,
        page_size: int,
        bookmark: str = "",
    ) -> Page:
        """One page of a range query (see `statedb.get_state_range_page`)."""
        return get_state_range_page(
            self._readers.get(),
            ns,
            start_key,
            end_key,
            page_size=page_size,
            bookmark=bookmark,
        )

    def get_history_for_key(
        self, ns: str, key: str
    ) -> Generator[KeyModification, None, None]:
        """The key's committed writes, newest first."""
        return get_history_for_key(self._readers.get(), ns, key)

    def get_private_data(self, ns: str, coll: str, key: str) -> VersionedValue | None:
        """The plaintext this peer holds for a private key, or None."""
        return pvtdata.get_private_data(self._readers.get(), ns, coll, key)

    def get_private_data_hash(self, ns: str, coll: str, key: str) -> bytes | None:
        """The SHA-256 of a private key's current value (hashed state), or None."""
        return pvtdata.get_private_data_hash(self._readers.get(), ns, coll, key)

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection, for the `peer.ledger` query functions."""
        return self._readers.get()

    # Lifecycle

    def close(self) -> None:
        """Close the database connections and the block store."""
        if self._closed:
            return
        self._closed = True
        self._appender.shutdown(wait=True)
        self._readers.close()
        self._checkpointer.close()
        self._conn.close()
        self._store.close()

    def __enter__(self) -> ChannelLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Helpers

    def _replay(self) -> None:
        """Apply every stored block above the savepoint (after a crash)."""
        last = savepoint(self._conn)
        first = 0 if last is None else last + 1
        if first > self._store.height:
            raise LedgerError(
                f"channel {self.channel_id}: the database holds block {last} but the "
                f"block store ends at height {self._store.height}"
            )
        for block in self._store.iter_blocks(first):
            updates = self._derive(block, {})
            self._apply(updates)
            self._observe(CommitStep.REPLAYED, updates.block_num)
        if first < self._store.height:
            _LOG.info(
                "replayed blocks channel=%s first=%d last=%d",
                self.channel_id,
                first,
                self._store.height - 1,
            )

    def _fail(
        self, block_num: int, appended: Future[None], error: BaseException
    ) -> NoReturn:
        """Re-raise a failed commit; the ledger is broken if the block was stored."""
        append_error = appended.exception()  # waits for the append to finish
        if append_error is not None:
            raise append_error  # rolled back, and the block is not stored
        self._broken = f"applying block {block_num} failed: {error}"
        _LOG.error(
            "commit failed after append channel=%s block=%d error=%s",
            self.channel_id,
            block_num,
            error,
        )
        if isinstance(error, sqlite3.Error):
            raise LedgerError(self._broken) from error
        raise error

    def _derive(
        self,
        block: common_pb2.Block,
        given: Mapping[int, bytes],
        decoded: Sequence[DecodedTx | None] | None = None,
    ) -> BlockUpdates:
        return derive_block_updates(
            block,
            private_data=private_data_on_hand(self._conn, given),
            collections=self._collections,
            decoded=decoded,
        )

    def _apply(
        self, updates: BlockUpdates, *, appended: Future[None] | None = None
    ) -> None:
        block_num = updates.block_num
        apply_block_updates(
            self._conn,
            updates,
            transient_retention_blocks=self._retention,
            appended=appended,
            hooks=ApplyHooks(
                state_written=lambda: self._observe(
                    CommitStep.STATE_WRITTEN, block_num
                ),
                history_written=lambda: self._observe(
                    CommitStep.HISTORY_WRITTEN, block_num
                ),
                appended=lambda: self._observe(CommitStep.APPENDED, block_num),
            ),
        )
        self._checkpointer.committed()

    def _erase_purged(self, updates: BlockUpdates) -> None:
        """Make a block's purges final on disk, then log one audit line per purge.

        The writer zeroes deleted content (`secure_delete`), but earlier versions of
        the purged pages stay in the WAL until it starts over: a TRUNCATE checkpoint
        copies the zeroed pages into the database file and empties the WAL. It waits
        (busy timeout) for readers of older snapshots; if they outlast it, the line
        says `wal_truncated=no` and old versions stay in the WAL until it starts over.
        """
        busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        for purge in updates.private.hashed.purges():
            PURGES.labels(self.channel_id, purge.ns, purge.coll).inc()
            _LOG.info(
                "privdata purge completed channel=%s ns=%s collection=%s key_hash=%s "
                "block=%d tx=%d wal_truncated=%s",
                self.channel_id,
                purge.ns,
                purge.coll,
                purge.key_hash.hex(),
                purge.version.block_num,
                purge.version.tx_num,
                "no" if busy else "yes",
            )

    def _observe(self, step: CommitStep, block_num: int) -> None:
        if self._observer is not None:
            self._observer(step, block_num)

    def _check_writable(self) -> None:
        if self._closed:
            raise LedgerError(f"channel {self.channel_id}: the ledger is closed")
        if self._broken is not None:
            raise LedgerError(
                f"channel {self.channel_id}: the ledger must be reopened: {self._broken}"
            )
        self._checkpointer.raise_if_failed()
