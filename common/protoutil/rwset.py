"""The outer layers of a transaction's read-write set (rwset.TxReadWriteSet).

Only the namespace and collection framing is decoded here; the KVRWSet and HashedRWSet
inside stay as their original bytes for the simulator and validator to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.protoutil._wire import decode
from protos.ledger.rwset import rwset_pb2


@dataclass(frozen=True, slots=True)
class CollectionHashedRwSet:
    """One collection's hashed reads and writes (HashedRWSet) and private-set hash."""

    collection_name: str
    hashed_rwset: bytes
    pvt_rwset_hash: bytes


@dataclass(frozen=True, slots=True)
class NsRwSet:
    """One namespace (chaincode): KVRWSet bytes and its collections' hashed sets."""

    namespace: str
    rwset: bytes
    collection_hashed_rwsets: tuple[CollectionHashedRwSet, ...]


@dataclass(frozen=True, slots=True)
class TxRwSet:
    """A decoded TxReadWriteSet with its original bytes."""

    raw: bytes
    data_model: int
    ns_rwsets: tuple[NsRwSet, ...]


def parse_tx_rwset(data: bytes, *, what: str = "read-write set") -> TxRwSet:
    """Decode TxReadWriteSet bytes (ChaincodeAction.results); empty means no namespaces.

    Raises:
        WireError: the bytes do not decode.
    """
    message = decode(rwset_pb2.TxReadWriteSet, data, what=what)
    return TxRwSet(
        raw=data,
        data_model=message.data_model,
        ns_rwsets=tuple(
            NsRwSet(
                namespace=ns.namespace,
                rwset=ns.rwset,
                collection_hashed_rwsets=tuple(
                    CollectionHashedRwSet(
                        collection_name=collection.collection_name,
                        hashed_rwset=collection.hashed_rwset,
                        pvt_rwset_hash=collection.pvt_rwset_hash,
                    )
                    for collection in ns.collection_hashed_rwset
                ),
            )
            for ns in message.ns_rwset
        ),
    )
