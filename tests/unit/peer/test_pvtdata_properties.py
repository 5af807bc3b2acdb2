"""Private data against a plain in-memory model, by hypothesis.

Blocks of put/delete/purge transactions on one collection with a drawn
block-to-live are committed the way the `ChannelLedger` does (expire, schedule,
store, private and hashed updates, in a drawn order within one transaction); the
private state, hashed state and private data store must equal a model that
applies the documented rules directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from peer.ledger import pvtdata
from peer.ledger.pvtdata import (
    HashedUpdateBatch,
    PrivateUpdateBatch,
    apply_hashed_updates,
    apply_private_updates,
    expire,
    get_block_private_data,
    get_hashed_value,
    get_private_data_range,
    key_hash,
    list_purges,
    schedule_expiry,
    store_block_private_data,
    value_hash,
)
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.statedb import Version
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

NS = "cc"
COLL = "coll"
KEY_ALPHABET = st.sampled_from(["\x00", "a", "b", "é", "\uffff", "\U0010fffe"])
KEYS = st.text(KEY_ALPHABET, min_size=1, max_size=2)
BOUNDS = st.text(KEY_ALPHABET, max_size=2)
STEPS = ("expire", "schedule", "store", "private", "hashed")


@dataclass(frozen=True)
class Op:
    kind: str  # "put", "delete" or "purge"
    key: str
    value: bytes = b""


OPS = st.one_of(
    st.builds(Op, st.just("put"), KEYS, st.binary(max_size=4)),
    st.builds(Op, st.sampled_from(["delete", "purge"]), KEYS),
)
BLOCKS = st.lists(st.lists(OPS, max_size=4), max_size=6)


@dataclass
class Model:
    """The documented rules, applied one transaction at a time."""

    block_to_live: int
    state: dict[str, tuple[bytes, Version]] = field(default_factory=dict)
    store: dict[Version, list[tuple[str, bytes | None]]] = field(default_factory=dict)
    purges: list[tuple[Version, bytes]] = field(default_factory=list)

    def commit(self, block_num: int, ops: list[Op]) -> None:
        self.expire(block_num)
        for tx_num, op in enumerate(ops):
            version = Version(block_num, tx_num)
            value = op.value if op.kind == "put" else None
            self.store[version] = [(op.key, value)]
            if value is not None:
                self.state[op.key] = (value, version)
                continue
            self.state.pop(op.key, None)
            if op.kind == "purge":
                self.purge(op.key, version)

    def purge(self, key: str, version: Version) -> None:
        self.purges.append((version, key_hash(key)))
        for stored, writes in self.store.items():
            if stored < version:
                writes[:] = [write for write in writes if write[0] != key]

    def expire(self, committing: int) -> None:
        if self.block_to_live == 0:
            return
        due = committing - self.block_to_live - 1
        self.store = {v: w for v, w in self.store.items() if v.block_num > due}
        self.state = {k: vv for k, vv in self.state.items() if vv[1].block_num > due}


def kv_rwset(op: Op) -> bytes:
    message = kv_rwset_pb2.KVRWSet()
    if op.kind == "put":
        message.writes.add(key=op.key, value=op.value)
    else:
        message.writes.add(key=op.key, is_delete=True)
    return message.SerializeToString()


def tx_pvt(op: Op) -> bytes:
    message = rwset_pb2.TxPvtReadWriteSet()
    message.ns_pvt_rwset.add(namespace=NS).collection_pvt_rwset.add(
        collection_name=COLL, rwset=kv_rwset(op)
    )
    return message.SerializeToString()


def commit(
    conn: sqlite3.Connection,
    block_num: int,
    ops: list[Op],
    *,
    block_to_live: int,
    order: list[str],
) -> None:
    """Commit a block the way the ledger does, running its steps in `order`."""
    hashed, private = HashedUpdateBatch(), PrivateUpdateBatch()
    for tx_num, op in enumerate(ops):
        version = Version(block_num, tx_num)
        if op.kind == "put":
            hashed.put(
                NS,
                COLL,
                key_hash(op.key),
                value_hash=value_hash(op.value),
                version=version,
            )
            private.put(NS, COLL, op.key, op.value, version)
        else:
            private.delete(NS, COLL, op.key, version)
            if op.kind == "purge":
                hashed.purge(NS, COLL, key_hash(op.key), version)
            else:
                hashed.delete(NS, COLL, key_hash(op.key), version)
    put_hashes = [key_hash(op.key) for op in ops if op.kind == "put"]
    steps: dict[str, Callable[[], object]] = {
        "expire": lambda: expire(conn, block_num),
        "schedule": lambda: schedule_expiry(
            conn,
            block_num=block_num,
            ns=NS,
            coll=COLL,
            block_to_live=block_to_live,
            key_hashes=put_hashes,
        ),
        "store": lambda: store_block_private_data(
            conn, block_num, {tx: tx_pvt(op) for tx, op in enumerate(ops)}
        ),
        "private": lambda: apply_private_updates(conn, private),
        "hashed": lambda: apply_hashed_updates(conn, hashed),
    }
    with transaction(conn):
        for step in order:
            steps[step]()


@contextmanager
def channel_db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    pvtdata.ensure(conn)
    try:
        yield conn
    finally:
        conn.close()


def stored_writes(
    conn: sqlite3.Connection, height: int
) -> dict[Version, list[tuple[str, bytes | None]]]:
    stored: dict[Version, list[tuple[str, bytes | None]]] = {}
    for block_num in range(1, height + 1):
        for tx_num, message in get_block_private_data(conn, block_num).items():
            [ns_rwset] = message.ns_pvt_rwset
            [coll_rwset] = ns_rwset.collection_pvt_rwset
            kv = kv_rwset_pb2.KVRWSet.FromString(coll_rwset.rwset)
            stored[Version(block_num, tx_num)] = [
                (w.key, None if w.is_delete else w.value) for w in kv.writes
            ]
    return stored


@settings(max_examples=60, deadline=None)
@given(
    blocks=BLOCKS,
    block_to_live=st.integers(0, 3),
    order=st.permutations(STEPS),
)
def test_private_data_matches_the_model(
    blocks: list[list[Op]], block_to_live: int, order: list[str]
) -> None:
    """Private state, hashed state, store and purge records after every block equal the model."""
    model = Model(block_to_live)
    keys = {op.key for ops in blocks for op in ops}
    with channel_db() as conn:
        for block_num, ops in enumerate(blocks, start=1):
            commit(conn, block_num, ops, block_to_live=block_to_live, order=order)
            model.commit(block_num, ops)
            private = {
                kv.key: (kv.value, kv.version)
                for kv in get_private_data_range(conn, NS, COLL, "", "")
            }
            assert private == model.state
            for key in keys:
                hashed = get_hashed_value(conn, NS, COLL, key_hash(key))
                expected = model.state.get(key)
                if expected is None:
                    assert hashed is None
                else:
                    assert hashed is not None
                    assert (hashed.value_hash, hashed.version) == (
                        value_hash(expected[0]),
                        expected[1],
                    )
            assert stored_writes(conn, block_num) == model.store
        purges = [(r.version, r.key_hash) for r in list_purges(conn, NS, COLL)]
        assert sorted(purges) == sorted(model.purges)


@settings(max_examples=60, deadline=None)
@given(blocks=BLOCKS, start=BOUNDS, end=BOUNDS)
def test_private_ranges_match_the_model(
    blocks: list[list[Op]], start: str, end: str
) -> None:
    """Ranges are [start, end) in code-point order, "" end unbounded, like public state."""
    model = Model(block_to_live=0)
    with channel_db() as conn:
        for block_num, ops in enumerate(blocks, start=1):
            order = list(STEPS)
            commit(conn, block_num, ops, block_to_live=0, order=order)
            model.commit(block_num, ops)
        got = [kv.key for kv in get_private_data_range(conn, NS, COLL, start, end)]
    expected = sorted(k for k in model.state if k >= start and (not end or k < end))
    assert got == expected
