"""Private range queries (GetPrivateDataByRange) and collection membership.

Method: a real channel database holding a collection's plaintext and hashes; the
simulator is told (through `membership`) whether this peer's organisation is a
member of the collection, as the peer's channels tell it from committed definitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.errors import CollectionError
from peer.ledger import pvtdata
from peer.ledger.hashed import HashedUpdateBatch, apply_hashed_updates
from peer.ledger.pvtrwset import key_hash, value_hash
from peer.ledger.pvtstate import PrivateUpdateBatch, apply_private_updates
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import KV, Version
from peer.simulator import Snapshots, open_simulator

NS = "records"
COLL = "patients"


@pytest.fixture
def snapshots(tmp_path: Path) -> Iterator[Snapshots]:
    path = tmp_path / "ledger.sqlite"
    conn = open_channel_db(path)
    pvtdata.ensure(conn)
    plain, hashed = PrivateUpdateBatch(), HashedUpdateBatch()
    for i in range(3):
        key, value = f"p{i}", f"v{i}".encode()
        plain.put(NS, COLL, key, value, Version(1, i))
        hashed.put(
            NS, COLL, key_hash(key), value_hash=value_hash(value), version=Version(1, i)
        )
    apply_private_updates(conn, plain)
    apply_hashed_updates(conn, hashed)
    conn.close()
    pool = Snapshots(path)
    yield pool
    pool.close()


def private_range(snapshots: Snapshots, *, member: bool) -> list[KV]:
    asked: list[tuple[str, str]] = []

    def membership(ns: str, coll: str) -> bool:
        asked.append((ns, coll))
        return member

    sim = open_simulator(snapshots, channel_id="ch", tx_id="tx1", membership=membership)
    try:
        iterator = sim.get_private_data_range(NS, COLL, "p0", "p9")
        found = []
        while (item := iterator.next()) is not None:
            found.append(item)
        return found
    finally:
        sim.done()
        assert asked == [(NS, COLL)]


def test_a_member_peer_ranges_over_its_plaintext(snapshots: Snapshots) -> None:
    """A member gets the committed plaintext in key order."""
    found = private_range(snapshots, member=True)

    assert [(kv.key, kv.value) for kv in found] == [
        ("p0", b"v0"),
        ("p1", b"v1"),
        ("p2", b"v2"),
    ]


def test_a_non_member_peer_gets_the_same_clear_error_as_rich_queries(
    snapshots: Snapshots,
) -> None:
    """Outside the collection the range query fails with a CollectionError naming
    the collection, instead of an empty result that looks like no data."""
    with pytest.raises(CollectionError, match="not a member of collection patients"):
        private_range(snapshots, member=False)
