"""What committing a block changes in the channel database, derived from the block.

Commit phase, pure: given a validated block (its TRANSACTIONS_FILTER set), the
private write sets on hand and the collection configuration, `derive_block_updates`
computes the public state updates, the history rows, the private-data updates
(`peer.ledger.pvtupdates`) and the block's tx ids. The `ChannelLedger` applies
them in one SQLite transaction after appending the block, and derives them again
from the stored block when it replays after a crash, so a block always yields
the same updates (given the same private data).

Only VALID endorser transactions change anything (`peer.ledger.committed_txs`);
their writes get the version (block number, position in the block), and later
transactions of the block win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peer.ledger.committed_txs import (
    CommittedTx,
    DecodedTx,
    add_kv_writes,
    decode_in_tx,
    iter_committed_txs,
)
from peer.ledger.history import HistoryBatch, KeyWrite
from peer.ledger.pvtupdates import (
    EVERY_COLLECTION,
    CollectionConfigs,
    PrivateDataSource,
    PrivateUpdates,
    PrivateUpdatesBuilder,
)
from peer.ledger.statedb import UpdateBatch
from protos.common import common_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = ["BlockUpdates", "derive_block_updates"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockUpdates:
    """Everything one block writes to the channel database.

    `tx_id_at` holds each transaction's tx id by position ("" when its header
    has none or does not decode), as the block store indexes them.
    """

    block_num: int
    tx_count: int
    state: UpdateBatch
    history: HistoryBatch
    private: PrivateUpdates
    tx_id_at: tuple[str, ...]
    committed: tuple[CommittedTx, ...]

    @property
    def tx_ids(self) -> tuple[str, ...]:
        """Every tx id of the block, valid or not, in block order.

        Their transient private data is no longer needed once the block is
        committed.
        """
        return tuple(tx_id for tx_id in self.tx_id_at if tx_id)


def derive_block_updates(
    block: common_pb2.Block,
    *,
    private_data: PrivateDataSource | None = None,
    collections: CollectionConfigs = EVERY_COLLECTION,
    decoded: Sequence[DecodedTx | None] | None = None,
) -> BlockUpdates:
    """The updates a validated block makes to the channel database.

    `private_data` gives the private write sets on hand for a transaction (only
    asked for transactions with collection write sets); `collections` says which
    collections this peer is a member of and their block-to-live. `decoded`
    gives the transactions the validator decoded from this block
    (`committed_txs.iter_committed_txs`); the updates are the same with or
    without it.

    Raises:
        LedgerError: the block has no transaction filter, or a VALID transaction
            (or one of its write sets) does not decode.
    """
    block_num = block.header.number
    tx_ids: list[str] = []
    committed = tuple(
        iter_committed_txs(block, on_tx_id=tx_ids.append, decoded=decoded)
    )
    state = UpdateBatch()
    history = HistoryBatch()
    private = PrivateUpdatesBuilder(
        block_num, source=private_data, collections=collections
    )
    for tx in committed:
        writes: list[KeyWrite] = []
        version = tx.version
        kv_rwsets = tx.kv_rwsets
        for index, ns_rwset in enumerate(tx.rwset.ns_rwset):
            kv_rwset = (
                decode_in_tx(kv_rwset_pb2.KVRWSet, ns_rwset.rwset, tx)
                if kv_rwsets is None
                else kv_rwsets[index]
            )
            writes += add_kv_writes(state, ns_rwset.namespace, kv_rwset, version)
            if ns_rwset.collection_hashed_rwset:
                private.add(tx, ns_rwset)
        history.add(
            block_num=block_num,
            tx_num=tx.tx_num,
            tx_id=tx.tx_id,
            timestamp=tx.timestamp,
            writes=writes,
        )
    return BlockUpdates(
        block_num=block_num,
        tx_count=len(block.data.data),
        state=state,
        history=history,
        private=private.build(),
        tx_id_at=tuple(tx_ids),
        committed=committed,
    )
