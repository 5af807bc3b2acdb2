"""The private-data side of committing a block: hashed state, plaintext, store, expiry.

Commit phase, pure. For each collection write set of a VALID transaction (the
`CollectionHashedReadWriteSet`s in the block) this derives:
- the hashed state updates, on every peer (puts, deletes, purges, metadata);
- for a collection this peer is a member of: the plaintext write set whose
  SHA-256 equals the block's `pvt_rwset_hash`, taken from the private data on
  hand (handed to the commit, or from the transient store). It updates the
  private state and goes to the private data store. Without matching plaintext
  the write set is recorded as missing (eligible); for a collection this peer is
  not a member of, as missing (ineligible), and nothing is kept; a collection the
  transaction only read hashes of (no `pvt_rwset_hash`) has no plaintext at all;
- the block-to-live schedule of every collection the block wrote to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from common.errors import WireError
from peer.ledger.committed_txs import (
    CommittedTx,
    add_kv_writes,
    decode_in_tx,
    decode_message,
)
from peer.ledger.hashed import HashedUpdateBatch
from peer.ledger.pvtrwset import CollectionRwSet, build_tx_pvt_rwset, pvt_rwset_hash
from peer.ledger.pvtstate import PrivateUpdateBatch
from peer.ledger.pvtstore import MissingPrivateData
from peer.ledger.statedb import Version
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = [
    "EVERY_COLLECTION",
    "CollectionConfigs",
    "ExpirySchedule",
    "PrivateDataSource",
    "PrivateUpdates",
    "PrivateUpdatesBuilder",
]

_LOG = logging.getLogger(__name__)


class CollectionConfigs(Protocol):
    """What the committer needs to know of a collection, as of the block it commits."""

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        """Whether this peer's organisation may hold the collection's plaintext."""
        ...

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        """The collection's `block_to_live` (0 = never expires)."""
        ...


class _EveryCollection:
    """Member of every collection, none of which expires (tests, single-org setups)."""

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        return True

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        return 0


EVERY_COLLECTION: CollectionConfigs = _EveryCollection()

PrivateDataSource = Callable[[CommittedTx], Iterable[CollectionRwSet]]
"""The private write sets on hand for a transaction (any collection, not yet checked)."""


@dataclass(frozen=True, slots=True)
class ExpirySchedule:
    """A collection the block wrote to, and the key hashes given a value or metadata."""

    ns: str
    coll: str
    block_to_live: int
    key_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateUpdates:
    """The private-data updates of one block.

    `stored` maps a tx number to the marshaled `TxPvtReadWriteSet` of the member
    collections whose plaintext matched the block: what the private data store keeps.
    """

    hashed: HashedUpdateBatch = field(default_factory=HashedUpdateBatch)
    private: PrivateUpdateBatch = field(default_factory=PrivateUpdateBatch)
    stored: Mapping[int, bytes] = field(default_factory=dict)
    missing: tuple[MissingPrivateData, ...] = ()
    expiry: tuple[ExpirySchedule, ...] = ()

    def is_empty(self) -> bool:
        return not (len(self.hashed) or self.missing or self.expiry or self.stored)


class PrivateUpdatesBuilder:
    """Collects a block's private-data updates; call `add` in transaction order."""

    def __init__(
        self,
        block_num: int,
        *,
        source: PrivateDataSource | None,
        collections: CollectionConfigs,
    ) -> None:
        self._block_num = block_num
        self._source = source
        self._collections = collections
        self._hashed = HashedUpdateBatch()
        self._private = PrivateUpdateBatch()
        self._stored: dict[int, list[CollectionRwSet]] = {}
        self._missing: list[MissingPrivateData] = []
        self._written: dict[tuple[str, str], dict[bytes, None]] = {}
        self._on_hand: dict[int, tuple[CollectionRwSet, ...]] = {}

    def add(self, tx: CommittedTx, ns_rwset: rwset_pb2.NsReadWriteSet) -> None:
        """Add the collection write sets of one namespace of a valid transaction."""
        ns = ns_rwset.namespace
        for collection in ns_rwset.collection_hashed_rwset:
            coll = collection.collection_name
            hashed_rwset = decode_in_tx(
                kv_rwset_pb2.HashedRWSet, collection.hashed_rwset, tx
            )
            written = _add_hashed_writes(
                self._hashed, ns, coll, hashed_rwset, tx.version
            )
            self._written.setdefault((ns, coll), {}).update(dict.fromkeys(written))
            self._add_plaintext(tx, ns, coll, collection.pvt_rwset_hash)

    def build(self) -> PrivateUpdates:
        return PrivateUpdates(
            hashed=self._hashed,
            private=self._private,
            stored={
                tx_num: build_tx_pvt_rwset(collections).SerializeToString()
                for tx_num, collections in self._stored.items()
            },
            missing=tuple(self._missing),
            expiry=tuple(
                ExpirySchedule(
                    ns,
                    coll,
                    self._collections.block_to_live(
                        ns, coll, block_num=self._block_num
                    ),
                    tuple(hashes),
                )
                for (ns, coll), hashes in self._written.items()
            ),
        )

    def _add_plaintext(
        self, tx: CommittedTx, ns: str, coll: str, expected_hash: bytes
    ) -> None:
        if not expected_hash:
            return  # the transaction only read hashes: there is no plaintext
        if not self._collections.is_member(ns, coll, block_num=self._block_num):
            self._missing.append(
                MissingPrivateData(self._block_num, tx.tx_num, ns, coll, False)
            )
            return
        found = self._matching(tx, ns, coll, expected_hash)
        kv_rwset = None if found is None else _decode_plaintext(found, tx)
        if found is None or kv_rwset is None:
            self._missing.append(
                MissingPrivateData(self._block_num, tx.tx_num, ns, coll)
            )
            return
        self._stored.setdefault(tx.tx_num, []).append(found)
        add_kv_writes(_OneCollection(self._private, coll), ns, kv_rwset, tx.version)

    def _matching(
        self, tx: CommittedTx, ns: str, coll: str, expected_hash: bytes
    ) -> CollectionRwSet | None:
        on_hand = self._on_hand.get(tx.tx_num)
        if on_hand is None:
            on_hand = () if self._source is None else tuple(self._source(tx))
            self._on_hand[tx.tx_num] = on_hand
        for candidate in on_hand:
            if (candidate.ns, candidate.coll) != (ns, coll):
                continue
            if pvt_rwset_hash(candidate.rwset) == expected_hash:
                return candidate
        return None


class _OneCollection:
    """A `PrivateUpdateBatch` seen through one collection (a `WriteTarget`)."""

    def __init__(self, batch: PrivateUpdateBatch, coll: str) -> None:
        self._batch = batch
        self._coll = coll

    def put(self, ns: str, key: str, value: bytes, version: Version) -> None:
        self._batch.put(ns, self._coll, key, value, version)

    def delete(self, ns: str, key: str, version: Version) -> None:
        self._batch.delete(ns, self._coll, key, version)

    def put_metadata(
        self, ns: str, key: str, metadata: Mapping[str, bytes], version: Version
    ) -> None:
        self._batch.put_metadata(ns, self._coll, key, metadata, version)


def _add_hashed_writes(
    batch: HashedUpdateBatch,
    ns: str,
    coll: str,
    hashed_rwset: kv_rwset_pb2.HashedRWSet,
    version: Version,
) -> list[bytes]:
    """Add a collection's hashed writes; returns the key hashes given a value or metadata."""
    written: list[bytes] = []
    for write in hashed_rwset.hashed_writes:
        if write.is_purge:
            batch.purge(ns, coll, write.key_hash, version)
        elif write.is_delete:
            batch.delete(ns, coll, write.key_hash, version)
        else:
            batch.put(
                ns, coll, write.key_hash, value_hash=write.value_hash, version=version
            )
            written.append(write.key_hash)
    for metadata_write in hashed_rwset.metadata_writes:
        entries = {entry.name: entry.value for entry in metadata_write.entries}
        batch.put_metadata(ns, coll, metadata_write.key_hash, entries, version)
        written.append(metadata_write.key_hash)
    return written


def _decode_plaintext(
    collection: CollectionRwSet, tx: CommittedTx
) -> kv_rwset_pb2.KVRWSet | None:
    """The plaintext write set, or None (logged) when bytes matching the hash do not decode.

    The endorsers signed those bytes, so no peer can do better; the data stays missing.
    """
    try:
        return decode_message(kv_rwset_pb2.KVRWSet, collection.rwset, "private KVRWSet")
    except WireError as error:
        _LOG.warning(
            "private write set matches its hash but does not decode "
            "block=%d tx_num=%d ns=%s coll=%s error=%s",
            tx.block_num,
            tx.tx_num,
            collection.ns,
            collection.coll,
            error,
        )
        return None
