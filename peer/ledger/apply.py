"""Writing one block's updates to the channel database, in one SQLite transaction.

Commit phase. `apply_block_updates` writes what `peer.ledger.updates` derived
(public state, history, hashed and private state, private data store, missing
data, block-to-live schedule and expiry, transient-store purge) and the
savepoint, atomically. `private_data_on_hand` and `keep_in_transient` are the
private-data side of `ChannelLedger.commit_block`: where the plaintext for a
transaction comes from, and making handed-in plaintext durable before the block
is appended.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from common.errors import WireError
from peer.errors import LedgerError
from peer.ledger import pvtdata, transient
from peer.ledger.committed_txs import CommittedTx, decode_message
from peer.ledger.history import writing_block_history
from peer.ledger.pvtrwset import CollectionRwSet, split_tx_pvt_rwset
from peer.ledger.pvtupdates import PrivateDataSource, PrivateUpdates
from peer.ledger.schema import transaction
from peer.ledger.statedb import Version, write_savepoint, write_updates
from peer.ledger.updates import BlockUpdates
from protos.ledger.rwset import rwset_pb2
from protos.transientstore import transientstore_pb2

__all__ = [
    "ApplyHooks",
    "apply_block_updates",
    "keep_in_transient",
    "private_data_on_hand",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyHooks:
    """Callbacks inside the transaction, named after `ledger.CommitStep` values."""

    state_written: Callable[[], None]
    history_written: Callable[[], None]
    appended: Callable[[], None]


def apply_block_updates(
    conn: sqlite3.Connection,
    updates: BlockUpdates,
    *,
    transient_retention_blocks: int,
    appended: Future[None] | None = None,
    hooks: ApplyHooks | None = None,
) -> None:
    """Write a block's updates and its savepoint in one SQLite transaction.

    With `appended` (the block's append, possibly still running) the transaction
    commits only once the append has returned, and rolls back if it raised.
    """
    block_num = updates.block_num
    with transaction(conn):
        # History rows link to each key's previous head, which the state rows
        # hold until `write_updates` gives them the block's heads: the rows that
        # need more go first, the state row updates write the others.
        with writing_block_history(conn, updates.history, block_num=block_num):
            write_updates(
                conn, updates.state, history_heads=updates.history.put_heads()
            )
        if hooks is not None:
            hooks.history_written()
            hooks.state_written()
        _apply_private(conn, block_num, updates.private)
        transient.purge_by_tx_ids(conn, updates.tx_ids)
        if block_num >= transient_retention_blocks:
            transient.purge_below_height(conn, block_num - transient_retention_blocks)
        if appended is not None:
            appended.result()
            if hooks is not None:
                hooks.appended()
        write_savepoint(conn, Version(block_num, updates.tx_count))


def _apply_private(
    conn: sqlite3.Connection, block_num: int, private: PrivateUpdates
) -> None:
    if not private.is_empty():
        pvtdata.apply_hashed_updates(conn, private.hashed)
        pvtdata.apply_private_updates(conn, private.private)
        pvtdata.store_block_private_data(
            conn, block_num, private.stored, private.missing
        )
        for schedule in private.expiry:
            pvtdata.schedule_expiry(
                conn,
                block_num=block_num,
                ns=schedule.ns,
                coll=schedule.coll,
                block_to_live=schedule.block_to_live,
                key_hashes=schedule.key_hashes,
            )
    pvtdata.expire(conn, block_num)


def private_data_on_hand(
    conn: sqlite3.Connection, given: Mapping[int, bytes]
) -> PrivateDataSource:
    """A transaction's candidate plaintext: what was handed in, then the transient store.

    Raises (when called):
        LedgerError: handed-in private data does not decode.
    """

    def on_hand(tx: CommittedTx) -> list[CollectionRwSet]:
        found: list[CollectionRwSet] = []
        if tx.tx_num in given:
            found += _split_given(tx, given[tx.tx_num])
        for entry in transient.get_by_tx_id(conn, tx.tx_id):
            found += _collections_of(entry.pvt_rwset.pvt_rwset)
        return found

    return on_hand


def keep_in_transient(
    conn: sqlite3.Connection, updates: BlockUpdates, given: Mapping[int, bytes]
) -> None:
    """Store handed-in private data of valid transactions in the transient store.

    Committed in its own transaction before the block is appended, so a replay
    after a crash finds it; the block's own transaction purges it again.

    Raises:
        LedgerError: handed-in private data does not decode (nothing is stored).
    """
    entries = [
        (tx.tx_id, _transient_entry(tx, given[tx.tx_num]))
        for tx in updates.committed
        if tx.tx_num in given and tx.tx_id
    ]
    with transaction(conn):
        for tx_id, entry in entries:
            transient.persist(conn, tx_id, updates.block_num, entry)


def _transient_entry(tx: CommittedTx, data: bytes) -> bytes:
    what = f"private data of block {tx.block_num} tx {tx.tx_num}"
    try:
        pvt_rwset = decode_message(rwset_pb2.TxPvtReadWriteSet, data, what)
    except WireError as error:
        raise LedgerError(f"cannot commit: {error}") from error
    entry = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
        endorsed_at=tx.block_num, pvt_rwset=pvt_rwset
    )
    return entry.SerializeToString()


def _split_given(tx: CommittedTx, data: bytes) -> tuple[CollectionRwSet, ...]:
    what = f"private data of block {tx.block_num} tx {tx.tx_num}"
    try:
        return split_tx_pvt_rwset(data, what=what)
    except WireError as error:
        raise LedgerError(f"cannot commit: {error}") from error


def _collections_of(message: rwset_pb2.TxPvtReadWriteSet) -> list[CollectionRwSet]:
    return [
        CollectionRwSet(ns.namespace, coll.collection_name, coll.rwset)
        for ns in message.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    ]
