"""Private write sets as the private data stores see them: hashes, decoding, trimming.

The ledger keeps each collection's private write set (a `kvrwset.KVRWSet`) as the
exact bytes the endorser produced, because its SHA-256 is the `pvt_rwset_hash` in
the block. This module decodes those bytes, hashes keys and values the way the
on-chain hashed write set does, splits a `TxPvtReadWriteSet` into its collections
and builds one back, and removes purged keys from a write set (the only time the
bytes are re-encoded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.transientstore import transientstore_pb2

__all__ = [
    "CollectionFilter",
    "CollectionRwSet",
    "build_tx_pvt_rwset",
    "decode",
    "decode_kv_rwset",
    "filter_with_config",
    "key_hash",
    "pvt_rwset_hash",
    "rwset_keys",
    "split_tx_pvt_rwset",
    "value_hash",
    "without_keys",
]

CollectionFilter = Callable[[str, str], bool]
"""Whether a (namespace, collection) pair is wanted, e.g. the requester is eligible."""

_M = TypeVar("_M", bound=Message)
_Keyed = TypeVar(
    "_Keyed", kv_rwset_pb2.KVRead, kv_rwset_pb2.KVWrite, kv_rwset_pb2.KVMetadataWrite
)


def key_hash(key: str) -> bytes:
    """SHA-256 of the key's UTF-8 bytes: the key as the hashed write set names it."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def value_hash(value: bytes) -> bytes:
    """SHA-256 of the value: what the hashed write set and hashed state hold."""
    return hashlib.sha256(value).digest()


def pvt_rwset_hash(kv_rwset: bytes) -> bytes:
    """SHA-256 of a collection's marshaled private KVRWSet (`pvt_rwset_hash` on chain)."""
    return hashlib.sha256(kv_rwset).digest()


@dataclass(frozen=True, slots=True)
class CollectionRwSet:
    """One collection's private write set inside a transaction, as its original bytes."""

    ns: str
    coll: str
    rwset: bytes


def decode(message_type: type[_M], data: bytes, *, what: str) -> _M:
    """Parse `data` as `message_type`; any failure is a WireError naming `what`."""
    message = message_type()
    try:
        message.ParseFromString(bytes(data))
    except (DecodeError, RecursionError, ValueError) as error:
        name = message_type.DESCRIPTOR.full_name
        raise WireError(f"{what} does not decode as {name}: {error}") from error
    return message


def decode_kv_rwset(data: bytes, *, what: str) -> kv_rwset_pb2.KVRWSet:
    """Parse a collection's private write set; raises WireError naming `what`."""
    return decode(kv_rwset_pb2.KVRWSet, data, what=what)


def split_tx_pvt_rwset(
    data: bytes, *, what: str = "private write set"
) -> tuple[CollectionRwSet, ...]:
    """The collections of a marshaled `TxPvtReadWriteSet`, in their order.

    Raises:
        WireError: the bytes do not decode.
    """
    message = decode(rwset_pb2.TxPvtReadWriteSet, data, what=what)
    return tuple(
        CollectionRwSet(ns.namespace, coll.collection_name, coll.rwset)
        for ns in message.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    )


def build_tx_pvt_rwset(
    collections: Iterable[CollectionRwSet],
) -> rwset_pb2.TxPvtReadWriteSet:
    """A `TxPvtReadWriteSet` holding the collections, grouped by namespace in first-seen order."""
    message = rwset_pb2.TxPvtReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
    by_ns: dict[str, rwset_pb2.NsPvtReadWriteSet] = {}
    for entry in collections:
        ns_rwset = by_ns.get(entry.ns)
        if ns_rwset is None:
            ns_rwset = message.ns_pvt_rwset.add(namespace=entry.ns)
            by_ns[entry.ns] = ns_rwset
        ns_rwset.collection_pvt_rwset.add(collection_name=entry.coll, rwset=entry.rwset)
    return message


def rwset_keys(kv_rwset: kv_rwset_pb2.KVRWSet) -> Iterator[str]:
    """Every key the write set reads, writes, deletes or sets metadata on (may repeat)."""
    for write in kv_rwset.writes:
        yield write.key
    for metadata_write in kv_rwset.metadata_writes:
        yield metadata_write.key
    for read in kv_rwset.reads:
        yield read.key


def without_keys(data: bytes, key_hashes: Set[bytes], *, what: str) -> bytes:
    """The write set with every read and write of the hashed keys removed.

    Returns `data` itself, byte for byte, when none of the keys occurs, so that an
    untouched write set keeps matching its on-chain hash.

    Raises:
        WireError: `data` does not decode.
    """
    kv_rwset = decode_kv_rwset(data, what=what)
    keys = {key for key in rwset_keys(kv_rwset) if key_hash(key) in key_hashes}
    if not keys:
        return data
    trimmed = kv_rwset_pb2.KVRWSet()
    trimmed.CopyFrom(kv_rwset)
    _keep_only(trimmed.reads, keys)
    _keep_only(trimmed.writes, keys)
    _keep_only(trimmed.metadata_writes, keys)
    return trimmed.SerializeToString(deterministic=True)


def _keep_only(
    entries: RepeatedCompositeFieldContainer[_Keyed], removed_keys: Set[str]
) -> None:
    """Delete, in place, the entries of a repeated field whose key is in `removed_keys`."""
    for index in reversed(range(len(entries))):
        if entries[index].key in removed_keys:
            del entries[index]


def filter_with_config(
    message: transientstore_pb2.TxPvtReadWriteSetWithConfigInfo,
    accept: CollectionFilter,
) -> transientstore_pb2.TxPvtReadWriteSetWithConfigInfo:
    """A copy holding only the accepted collections' write sets and configs.

    Used where private data leaves a peer (a push, a pull answer) and where the
    transient store hands it out: nothing of a collection that was not accepted.
    """
    result = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
        endorsed_at=message.endorsed_at
    )
    if message.HasField("pvt_rwset"):
        result.pvt_rwset.SetInParent()
        result.pvt_rwset.data_model = message.pvt_rwset.data_model
    for ns_rwset in message.pvt_rwset.ns_pvt_rwset:
        kept = [
            coll
            for coll in ns_rwset.collection_pvt_rwset
            if accept(ns_rwset.namespace, coll.collection_name)
        ]
        if kept:
            result.pvt_rwset.ns_pvt_rwset.add(
                namespace=ns_rwset.namespace, collection_pvt_rwset=kept
            )
    for ns, package in message.collection_configs.items():
        configs = [
            config
            for config in package.config
            if accept(ns, config.static_collection_config.name)
        ]
        if configs:
            result.collection_configs[ns].config.extend(configs)
    return result
