"""MVCC: a transaction's reads must still hold when it commits, in block order.

Validate phase, last step; only transactions that passed every other rule get here, one
after the other. For each namespace, in rwset order, as Fabric's state validator:

1. every public read: no earlier valid transaction of this block wrote the key, and its
   committed version is the one read (absent = absent)          MVCC_READ_CONFLICT
2. every range query, run again over committed state merged with the block's earlier
   valid writes, yields the same keys and versions (raw reads) or the same Merkle
   summary; a query the chaincode stopped early also covers its end key
                                                                PHANTOM_READ_CONFLICT
3. every hashed private read, like 1 over the hashed state       MVCC_READ_CONFLICT

A valid transaction's writes then join `BlockWrites` at version (block, tx position). A
metadata-only write to a key that does not exist changes nothing, as in Fabric.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator, Mapping

from peer.ledger.statedb import Version
from peer.simulator.rangequery import RangeQueryResults
from peer.validator.context import HashedKey, LedgerView
from peer.validator.transaction import EndorserTx, NamespaceRwSet
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import transaction_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = ["BlockWrites", "CommittedVersions", "validate_mvcc"]

_DELETED = None


class CommittedVersions:
    """Committed versions of the keys a block reads or touches, loaded in bulk once."""

    def __init__(
        self,
        public: Mapping[tuple[str, str], Version],
        hashed: Mapping[HashedKey, Version],
    ) -> None:
        self.public = public
        self.hashed = hashed

    @classmethod
    def load(cls, ledger: LedgerView, txs: Iterable[EndorserTx]) -> CommittedVersions:
        """Versions of every key read, and of every key whose metadata is written."""
        public: set[tuple[str, str]] = set()
        hashed: set[HashedKey] = set()
        for tx in txs:
            for ns in tx.rwset:
                name = ns.namespace
                public.update((name, read.key) for read in ns.kv.reads)
                public.update((name, write.key) for write in ns.kv.metadata_writes)
                for collection in ns.collections:
                    coll = collection.name
                    hashed.update(
                        (name, coll, read.key_hash)
                        for read in collection.hashed.hashed_reads
                    )
                    hashed.update(
                        (name, coll, write.key_hash)
                        for write in collection.hashed.metadata_writes
                    )
        return cls(
            ledger.versions(public) if public else {},
            ledger.hashed_versions(hashed) if hashed else {},
        )


class BlockWrites:
    """The writes of the block's valid transactions so far, per key, with their versions."""

    def __init__(self) -> None:
        self._public: dict[str, dict[str, Version | None]] = {}
        self._sorted_keys: dict[str, list[str]] = {}
        self._hashed: dict[HashedKey, Version | None] = {}

    def has_key(self, ns: str, key: str) -> bool:
        return key in self._public.get(ns, {})

    def has_hashed_key(self, key: HashedKey) -> bool:
        return key in self._hashed

    def version(self, ns: str, key: str) -> Version | None:
        """The key's version after the earlier writes (None: deleted); key must be written."""
        return self._public[ns][key]

    def in_range(self, ns: str, start_key: str, end_key: str) -> list[str]:
        """Written keys of `ns` in [start_key, end_key) ("" end: unbounded), sorted."""
        keys = self._sorted_keys.get(ns)
        if keys is None:
            keys = sorted(self._public.get(ns, {}))
            self._sorted_keys[ns] = keys
        low = bisect.bisect_left(keys, start_key)
        high = bisect.bisect_left(keys, end_key) if end_key else len(keys)
        return keys[low:high]

    def add(
        self, tx: EndorserTx, version: Version, committed: CommittedVersions
    ) -> None:
        """Record a valid transaction's writes at `version`."""
        for ns in tx.rwset:
            self._add_public(ns, version, committed)
            self._add_hashed(ns, version, committed)

    def _add_public(
        self, ns: NamespaceRwSet, version: Version, committed: CommittedVersions
    ) -> None:
        name = ns.namespace
        keys = self._public.setdefault(name, {})
        written = {write.key: write.is_delete for write in ns.kv.writes}
        for key, is_delete in written.items():
            self._put(name, keys, key, _DELETED if is_delete else version)
        for write in ns.kv.metadata_writes:
            if write.key in written:
                continue
            exists = (
                keys[write.key] is not _DELETED
                if write.key in keys
                else (name, write.key) in committed.public
            )
            if exists:
                self._put(name, keys, write.key, version)

    def _put(
        self, ns: str, keys: dict[str, Version | None], key: str, value: Version | None
    ) -> None:
        if key not in keys:
            self._sorted_keys.pop(ns, None)
        keys[key] = value

    def _add_hashed(
        self, ns: NamespaceRwSet, version: Version, committed: CommittedVersions
    ) -> None:
        for collection in ns.collections:
            written: set[bytes] = set()
            for write in collection.hashed.hashed_writes:
                key = (ns.namespace, collection.name, write.key_hash)
                deleted = write.is_delete or write.is_purge
                self._hashed[key] = _DELETED if deleted else version
                written.add(write.key_hash)
            for metadata_write in collection.hashed.metadata_writes:
                key = (ns.namespace, collection.name, metadata_write.key_hash)
                if metadata_write.key_hash in written:
                    continue
                exists = (
                    self._hashed[key] is not _DELETED
                    if key in self._hashed
                    else key in committed.hashed
                )
                if exists:
                    self._hashed[key] = version


def validate_mvcc(
    tx: EndorserTx,
    *,
    ledger: LedgerView,
    committed: CommittedVersions,
    pending: BlockWrites,
) -> TxValidationCode:
    """VALID, MVCC_READ_CONFLICT or PHANTOM_READ_CONFLICT for one transaction."""
    for ns in tx.rwset:
        if not _reads_hold(ns, committed, pending):
            return transaction_pb2.MVCC_READ_CONFLICT
        for info in ns.kv.range_queries_info:
            if not _range_holds(ns.namespace, info, ledger, pending):
                return transaction_pb2.PHANTOM_READ_CONFLICT
        if not _hashed_reads_hold(ns, committed, pending):
            return transaction_pb2.MVCC_READ_CONFLICT
    return transaction_pb2.VALID


def _reads_hold(
    ns: NamespaceRwSet, committed: CommittedVersions, pending: BlockWrites
) -> bool:
    name = ns.namespace
    for read in ns.kv.reads:
        if pending.has_key(name, read.key):
            return False
        if committed.public.get((name, read.key)) != _read_version(read):
            return False
    return True


def _hashed_reads_hold(
    ns: NamespaceRwSet, committed: CommittedVersions, pending: BlockWrites
) -> bool:
    for collection in ns.collections:
        for read in collection.hashed.hashed_reads:
            key = (ns.namespace, collection.name, read.key_hash)
            if pending.has_hashed_key(key):
                return False
            if committed.hashed.get(key) != _read_version(read):
                return False
    return True


def _read_version(
    read: kv_rwset_pb2.KVRead | kv_rwset_pb2.KVReadHash,
) -> Version | None:
    if not read.HasField("version"):
        return None
    return Version(read.version.block_num, read.version.tx_num)


def _range_holds(
    ns: str,
    info: kv_rwset_pb2.RangeQueryInfo,
    ledger: LedgerView,
    pending: BlockWrites,
) -> bool:
    results = _range_now(ns, info, ledger, pending)
    if info.HasField("reads_merkle_hashes"):
        return _merkle_matches(info.reads_merkle_hashes, results)
    recorded = [(read.key, _read_version(read)) for read in info.raw_reads.kv_reads]
    return recorded == list(results)


def _merkle_matches(
    recorded: kv_rwset_pb2.QueryReadsMerkleSummary,
    results: Iterator[tuple[str, Version]],
) -> bool:
    try:
        summary_builder = RangeQueryResults(recorded.max_degree)
    except ValueError:
        return False
    for key, version in results:
        summary_builder.add(
            kv_rwset_pb2.KVRead(
                key=key,
                version=kv_rwset_pb2.Version(
                    block_num=version.block_num, tx_num=version.tx_num
                ),
            )
        )
    _, summary = summary_builder.done()
    return summary is not None and (
        summary.max_degree == recorded.max_degree
        and summary.max_level == recorded.max_level
        and list(summary.max_level_hashes) == list(recorded.max_level_hashes)
    )


def _range_now(
    ns: str,
    info: kv_rwset_pb2.RangeQueryInfo,
    ledger: LedgerView,
    pending: BlockWrites,
) -> Iterator[tuple[str, Version]]:
    """The range's keys and versions now: committed state under the block's writes.

    A range the chaincode did not exhaust records its last key as the end key, so that
    key is included (Fabric's `includeEndKey`).
    """
    start_key, end_key = info.start_key, info.end_key
    written = pending.in_range(ns, start_key, end_key)
    committed = (
        (key, version)
        for key, version in ledger.range_versions(ns, start_key, end_key)
        if not pending.has_key(ns, key)
    )
    overlay = ((key, pending.version(ns, key)) for key in written)
    for key, version in heapq.merge(committed, overlay, key=lambda item: item[0]):
        if version is not _DELETED:
            yield key, version
    if not info.itr_exhausted:
        yield from _end_key(ns, end_key, ledger, pending)


def _end_key(
    ns: str, end_key: str, ledger: LedgerView, pending: BlockWrites
) -> Iterator[tuple[str, Version]]:
    if pending.has_key(ns, end_key):
        version = pending.version(ns, end_key)
    else:
        version = ledger.versions([(ns, end_key)]).get((ns, end_key))
    if version is not _DELETED:
        yield end_key, version
