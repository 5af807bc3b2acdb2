"""A dictionary-backed `StateReader` for simulator tests, and rwset decoding helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from peer.ledger.history import KeyModification, Timestamp
from peer.ledger.statedb import KV, Page, Version, VersionedValue
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

T = TypeVar("T")


@dataclass
class FakeReader:
    """Committed state as plain dicts; every method of `StateReader`."""

    state: dict[tuple[str, str], VersionedValue] = field(default_factory=dict)
    private: dict[tuple[str, str, str], VersionedValue] = field(default_factory=dict)
    hashed: dict[tuple[str, str, bytes], VersionedValue] = field(default_factory=dict)
    history: dict[tuple[str, str], list[KeyModification]] = field(default_factory=dict)
    closed_sources: int = 0

    def put(
        self,
        ns: str,
        key: str,
        value: bytes,
        version: Version,
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        self.state[(ns, key)] = VersionedValue(value, version, dict(metadata or {}))

    def put_private(
        self,
        ns: str,
        coll: str,
        key: str,
        value: bytes,
        version: Version,
        *,
        plaintext: bool = True,
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        if plaintext:
            self.private[(ns, coll, key)] = VersionedValue(value, version)
        digest = hashlib.sha256(key.encode()).digest()
        self.hashed[(ns, coll, digest)] = VersionedValue(
            hashlib.sha256(value).digest(), version, dict(metadata or {})
        )

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        return self.state.get((ns, key))

    def get_state_metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        entry = self.state.get((ns, key))
        return None if entry is None else entry.metadata

    def get_state_range(self, ns: str, start_key: str, end_key: str) -> Iterator[KV]:
        return self._tracked(
            KV(key, entry.value, entry.version)
            for (space, key), entry in sorted(self.state.items())
            if space == ns and key >= start_key and (not end_key or key < end_key)
        )

    def get_query_result(self, ns: str, query: str) -> Iterator[KV]:
        """Test query language: the query is a substring every returned value holds."""
        return self._tracked(
            KV(key, entry.value, entry.version)
            for (space, key), entry in sorted(self.state.items())
            if space == ns and query.encode() in entry.value
        )

    def get_query_result_page(
        self, ns: str, query: str, *, page_size: int, bookmark: str
    ) -> Page:
        matches = [kv for kv in self.get_query_result(ns, query) if kv.key > bookmark]
        records = tuple(matches[:page_size])
        more = len(matches) > page_size
        return Page(records, records[-1].key if more else "")

    def get_history_for_key(self, ns: str, key: str) -> Iterator[KeyModification]:
        return self._tracked(self.history.get((ns, key), []))

    def get_private_data(self, ns: str, coll: str, key: str) -> VersionedValue | None:
        return self.private.get((ns, coll, key))

    def get_private_data_hash(
        self, ns: str, coll: str, key_hash: bytes
    ) -> VersionedValue | None:
        return self.hashed.get((ns, coll, key_hash))

    def get_private_data_range(
        self, ns: str, coll: str, start_key: str, end_key: str
    ) -> Iterator[KV]:
        return self._tracked(
            KV(key, entry.value, entry.version)
            for (space, collection, key), entry in sorted(self.private.items())
            if (space, collection) == (ns, coll)
            and key >= start_key
            and (not end_key or key < end_key)
        )

    def get_private_data_query_result(
        self, ns: str, coll: str, query: str
    ) -> Iterator[KV]:
        """The test query language of `get_query_result`, on the collection."""
        return self._tracked(
            KV(key, entry.value, entry.version)
            for (space, collection, key), entry in sorted(self.private.items())
            if (space, collection) == (ns, coll) and query.encode() in entry.value
        )

    def _tracked(self, items: Iterable[T]) -> Iterator[T]:
        def generator() -> Iterator[T]:
            try:
                yield from items
            finally:
                self.closed_sources += 1

        return generator()


def modification(tx_id: str, value: bytes, block: int) -> KeyModification:
    return KeyModification(
        tx_id=tx_id,
        value=value,
        timestamp=Timestamp(1_700_000_000 + block),
        is_delete=not value,
        block_num=block,
        tx_num=0,
    )


def decode_public(data: bytes) -> dict[str, kv_rwset_pb2.KVRWSet]:
    """Namespace → its KVRWSet."""
    message = rwset_pb2.TxReadWriteSet.FromString(data)
    return {
        ns.namespace: kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
        for ns in message.ns_rwset
    }


def decode_hashed(
    data: bytes,
) -> dict[tuple[str, str], tuple[kv_rwset_pb2.HashedRWSet, bytes]]:
    """(namespace, collection) → (HashedRWSet, pvt_rwset_hash)."""
    message = rwset_pb2.TxReadWriteSet.FromString(data)
    return {
        (ns.namespace, coll.collection_name): (
            kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset),
            coll.pvt_rwset_hash,
        )
        for ns in message.ns_rwset
        for coll in ns.collection_hashed_rwset
    }


def decode_private(
    data: bytes,
) -> dict[tuple[str, str], tuple[kv_rwset_pb2.KVRWSet, bytes]]:
    """(namespace, collection) → (private KVRWSet, its marshaled bytes)."""
    message = rwset_pb2.TxPvtReadWriteSet.FromString(data)
    return {
        (ns.namespace, coll.collection_name): (
            kv_rwset_pb2.KVRWSet.FromString(coll.rwset),
            coll.rwset,
        )
        for ns in message.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    }


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
