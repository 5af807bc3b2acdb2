"""A fetched private write set less keys purged since is accepted at reconciliation.

Method: `NeededData.matches` on hand-built write sets: the whole write set (its hash);
the write set without a key this peer has purged since (accepted only with that key
hash in `purged`); a changed value or a key not in the block (refused).
"""

from __future__ import annotations

from peer.ledger.pvtrwset import key_hash, pvt_rwset_hash, value_hash
from peer.privdata.pull import NeededData
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

WRITES = {"k1": b"one", "k2": b"two"}


def plain(writes: dict[str, bytes]) -> bytes:
    return kv_rwset_pb2.KVRWSet(
        writes=[kv_rwset_pb2.KVWrite(key=k, value=v) for k, v in writes.items()]
    ).SerializeToString()


def needed(purged: frozenset[bytes] = frozenset()) -> NeededData:
    hashed = kv_rwset_pb2.HashedRWSet(
        hashed_writes=[
            kv_rwset_pb2.KVWriteHash(key_hash=key_hash(k), value_hash=value_hash(v))
            for k, v in WRITES.items()
        ]
    )
    return NeededData(
        "tx",
        5,
        0,
        "cc",
        "AB",
        pvt_rwset_hash(plain(WRITES)),
        frozenset({"Org1MSP"}),
        hashed.SerializeToString(),
        purged,
    )


def test_the_whole_write_set_matches_its_hash() -> None:
    assert needed().matches(plain(WRITES))


def test_a_write_set_without_a_purged_key_matches_only_once_purged_here() -> None:
    partial = plain({"k1": b"one"})
    assert not needed().matches(partial)
    assert needed(frozenset({key_hash("k2")})).matches(partial)
    assert needed(frozenset({key_hash("k1"), key_hash("k2")})).matches(b"")


def test_a_changed_value_or_a_foreign_key_never_matches() -> None:
    purged = frozenset({key_hash("k2")})
    assert not needed(purged).matches(plain({"k1": b"forged"}))
    assert not needed(purged).matches(plain({"k1": b"one", "k3": b"new"}))
    assert not needed(frozenset({key_hash("k2")})).matches(b"")
    assert not needed(purged).matches(b"\xff\xff")
