"""What the private data store tests share: an in-memory channel database, write sets.

`db` is a fresh in-memory channel database with the private data tables, one per
test; a module takes it by naming it at module level (`db = pvtdata_fixtures.db`).
`kv_rwset` builds a collection's private write set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from peer.ledger import pvtdata
from peer.ledger.schema import open_channel_db
from protos.ledger.rwset.kvrwset import kv_rwset_pb2


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = open_channel_db(":memory:")
    pvtdata.ensure(conn)
    yield conn
    conn.close()


def kv_rwset(*writes: tuple[str, bytes | None]) -> bytes:
    """A private write set: (key, value) puts and (key, None) deletes."""
    message = kv_rwset_pb2.KVRWSet()
    for key, value in writes:
        if value is None:
            message.writes.add(key=key, is_delete=True)
        else:
            message.writes.add(key=key, value=value)
    return message.SerializeToString()
