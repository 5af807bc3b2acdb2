"""The read-write set of one simulated transaction, marshaled exactly as Fabric does.

`RwSetBuilder` is pure: the simulator tells it what was read and written, and
`build` produces the `TxReadWriteSet` (public reads, writes, metadata writes,
range-query infos, and per collection the hashed reads and writes) and the
`TxPvtReadWriteSet` (the plaintext private writes per collection).

Fabric's rules, which make the bytes deterministic:
- per namespace/collection one entry per key: the last read, write or metadata
  write of a key replaces the earlier one;
- namespaces, collections and keys are sorted (by code point, which is UTF-8
  byte order); hashed entries sort by their plaintext key, not by the hash;
- range-query infos keep the order their iterators were opened in, one per
  distinct (start key, end key, exhausted);
- a write of an empty value is a delete (`is_delete`, no value; no value hash);
- `pvt_rwset_hash` of a collection is the SHA-256 of its marshaled private
  `KVRWSet`; the private set holds writes and, for a private metadata write, an
  entry with only the key;
- a namespace that only has hashed reads still appears (with an empty KVRWSet).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from peer.ledger.statedb import Version
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = ["RwSetBuilder", "SimulationResults", "key_hash", "kv_read", "proto_version"]

_T = TypeVar("_T")

CollectionKey = tuple[str, str]
"""(namespace, collection)."""


@dataclass(frozen=True, slots=True)
class SimulationResults:
    """What a simulation produced, as the endorser and the private data store need it.

    `public_rwset` is the marshaled TxReadWriteSet that goes into the
    ChaincodeAction; `private_rwset` the marshaled TxPvtReadWriteSet (b"" when
    the transaction wrote no private data). `private_reads` names the
    collections whose plaintext was read (Fabric's PrivateReads),
    `private_writes` those written or purged. `writeset_metadata` holds the
    committed key metadata (key-level endorsement policies) of the keys written,
    by (namespace, collection or "", key), for keys that have any.
    """

    public_rwset: bytes
    private_rwset: bytes = b""
    private_reads: frozenset[CollectionKey] = frozenset()
    private_writes: frozenset[CollectionKey] = frozenset()
    writeset_metadata: Mapping[tuple[str, str, str], Mapping[str, bytes]] = field(
        default_factory=dict
    )


def proto_version(version: Version) -> kv_rwset_pb2.Version:
    """The kvrwset form of a committed version."""
    return kv_rwset_pb2.Version(block_num=version.block_num, tx_num=version.tx_num)


def kv_read(key: str, version: Version | None) -> kv_rwset_pb2.KVRead:
    """A KVRead; no version means the key did not exist."""
    if version is None:
        return kv_rwset_pb2.KVRead(key=key)
    return kv_rwset_pb2.KVRead(key=key, version=proto_version(version))


def key_hash(key: str) -> bytes:
    """SHA-256 of the key's UTF-8 bytes, as hashed read and write sets name keys."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def _metadata_entries(
    metadata: Mapping[str, bytes],
) -> list[kv_rwset_pb2.KVMetadataEntry]:
    return [
        kv_rwset_pb2.KVMetadataEntry(name=name, value=metadata[name])
        for name in sorted(metadata)
    ]


class _Namespace:
    """The public part of one namespace, plus its collections' hashed parts."""

    def __init__(self) -> None:
        self.reads: dict[str, kv_rwset_pb2.KVRead] = {}
        self.writes: dict[str, kv_rwset_pb2.KVWrite] = {}
        self.metadata_writes: dict[str, kv_rwset_pb2.KVMetadataWrite] = {}
        self.range_queries: dict[
            tuple[str, str, bool], kv_rwset_pb2.RangeQueryInfo
        ] = {}
        self.collections: dict[str, _HashedCollection] = {}

    def kv_rwset(self) -> bytes:
        message = kv_rwset_pb2.KVRWSet(
            reads=_sorted_values(self.reads),
            range_queries_info=list(self.range_queries.values()),
            writes=_sorted_values(self.writes),
            metadata_writes=_sorted_values(self.metadata_writes),
        )
        return message.SerializeToString()


class _HashedCollection:
    def __init__(self) -> None:
        self.reads: dict[str, kv_rwset_pb2.KVReadHash] = {}
        self.writes: dict[str, kv_rwset_pb2.KVWriteHash] = {}
        self.metadata_writes: dict[str, kv_rwset_pb2.KVMetadataWriteHash] = {}

    def hashed_rwset(self) -> bytes:
        message = kv_rwset_pb2.HashedRWSet(
            hashed_reads=_sorted_values(self.reads),
            hashed_writes=_sorted_values(self.writes),
            metadata_writes=_sorted_values(self.metadata_writes),
        )
        return message.SerializeToString()


class _PrivateCollection:
    def __init__(self) -> None:
        self.writes: dict[str, kv_rwset_pb2.KVWrite] = {}
        self.metadata_writes: dict[str, kv_rwset_pb2.KVMetadataWrite] = {}

    def kv_rwset(self) -> bytes:
        message = kv_rwset_pb2.KVRWSet(
            writes=_sorted_values(self.writes),
            metadata_writes=_sorted_values(self.metadata_writes),
        )
        return message.SerializeToString()


def _sorted_values(entries: Mapping[str, _T]) -> list[_T]:
    return [entries[key] for key in sorted(entries)]


class RwSetBuilder:
    """Accumulates one transaction's reads and writes; `build` marshals them."""

    def __init__(self) -> None:
        self._public: dict[str, _Namespace] = {}
        self._private: dict[str, dict[str, _PrivateCollection]] = {}

    # public data

    def add_read(self, ns: str, key: str, version: Version | None) -> None:
        self._namespace(ns).reads[key] = kv_read(key, version)

    def add_write(self, ns: str, key: str, value: bytes) -> None:
        """Record a write; an empty value is a delete."""
        self._namespace(ns).writes[key] = _kv_write(key, value)

    def add_metadata_write(
        self, ns: str, key: str, metadata: Mapping[str, bytes]
    ) -> None:
        """Record the key's new metadata (replacing all of it; {} removes it)."""
        write = kv_rwset_pb2.KVMetadataWrite(
            key=key, entries=_metadata_entries(metadata)
        )
        self._namespace(ns).metadata_writes[key] = write

    def add_range_query(self, ns: str, info: kv_rwset_pb2.RangeQueryInfo) -> None:
        """Record a range query's info; a repeat of the same range is kept once."""
        identity = (info.start_key, info.end_key, info.itr_exhausted)
        self._namespace(ns).range_queries.setdefault(identity, info)

    # private data

    def add_hashed_read(
        self, ns: str, coll: str, key: str, version: Version | None
    ) -> None:
        read = kv_rwset_pb2.KVReadHash(key_hash=key_hash(key))
        if version is not None:
            read.version.CopyFrom(proto_version(version))
        self._hashed(ns, coll).reads[key] = read

    def add_private_write(self, ns: str, coll: str, key: str, value: bytes) -> None:
        """Record a private write (plaintext and hash); an empty value is a delete."""
        write = _kv_write(key, value)
        hashed = kv_rwset_pb2.KVWriteHash(
            key_hash=key_hash(key), is_delete=write.is_delete
        )
        if not write.is_delete:
            hashed.value_hash = hashlib.sha256(value).digest()
        self._private_collection(ns, coll).writes[key] = write
        self._hashed(ns, coll).writes[key] = hashed

    def add_private_purge(self, ns: str, coll: str, key: str) -> None:
        """Record a purge: a delete whose hashed write is marked `is_purge`."""
        self._private_collection(ns, coll).writes[key] = _kv_write(key, b"")
        self._hashed(ns, coll).writes[key] = kv_rwset_pb2.KVWriteHash(
            key_hash=key_hash(key), is_delete=True, is_purge=True
        )

    def add_private_metadata_write(
        self, ns: str, coll: str, key: str, metadata: Mapping[str, bytes]
    ) -> None:
        """Record new metadata of a private key (entries only in the hashed set)."""
        self._private_collection(ns, coll).metadata_writes[key] = (
            kv_rwset_pb2.KVMetadataWrite(key=key)
        )
        self._hashed(ns, coll).metadata_writes[key] = kv_rwset_pb2.KVMetadataWriteHash(
            key_hash=key_hash(key), entries=_metadata_entries(metadata)
        )

    # results

    def namespaces(self) -> Iterable[str]:
        """The namespaces touched so far (public or hashed), unsorted."""
        return self._public.keys()

    def build(self) -> tuple[bytes, bytes]:
        """(marshaled TxReadWriteSet, marshaled TxPvtReadWriteSet or b"")."""
        private_rwset, collection_hashes = self._build_private()
        public = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
        for ns in sorted(self._public):
            namespace = self._public[ns]
            ns_rwset = public.ns_rwset.add(namespace=ns, rwset=namespace.kv_rwset())
            for coll in sorted(namespace.collections):
                ns_rwset.collection_hashed_rwset.add(
                    collection_name=coll,
                    hashed_rwset=namespace.collections[coll].hashed_rwset(),
                    pvt_rwset_hash=collection_hashes.get((ns, coll), b""),
                )
        return public.SerializeToString(), private_rwset

    def _build_private(self) -> tuple[bytes, dict[CollectionKey, bytes]]:
        if not self._private:
            return b"", {}
        hashes: dict[CollectionKey, bytes] = {}
        private = rwset_pb2.TxPvtReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
        for ns in sorted(self._private):
            ns_pvt = private.ns_pvt_rwset.add(namespace=ns)
            collections = self._private[ns]
            for coll in sorted(collections):
                kv_bytes = collections[coll].kv_rwset()
                ns_pvt.collection_pvt_rwset.add(collection_name=coll, rwset=kv_bytes)
                hashes[(ns, coll)] = hashlib.sha256(kv_bytes).digest()
        return private.SerializeToString(), hashes

    def _namespace(self, ns: str) -> _Namespace:
        namespace = self._public.get(ns)
        if namespace is None:
            namespace = self._public[ns] = _Namespace()
        return namespace

    def _hashed(self, ns: str, coll: str) -> _HashedCollection:
        collections = self._namespace(ns).collections
        collection = collections.get(coll)
        if collection is None:
            collection = collections[coll] = _HashedCollection()
        return collection

    def _private_collection(self, ns: str, coll: str) -> _PrivateCollection:
        collections = self._private.setdefault(ns, {})
        collection = collections.get(coll)
        if collection is None:
            collection = collections[coll] = _PrivateCollection()
        return collection


def _kv_write(key: str, value: bytes) -> kv_rwset_pb2.KVWrite:
    if not value:
        return kv_rwset_pb2.KVWrite(key=key, is_delete=True)
    return kv_rwset_pb2.KVWrite(key=key, value=value)
