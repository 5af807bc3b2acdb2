"""ChannelLedger and private data: plaintext, transient store, replay, missing, expiry."""

from __future__ import annotations

import hashlib
from contextlib import closing
from pathlib import Path

import pytest

from peer.errors import LedgerError
from peer.ledger import pvtdata, transient
from peer.ledger.ledger import DATABASE_FILE, ChannelLedger, CommitStep
from peer.ledger.schema import open_channel_db
from protos.ledger.rwset import rwset_pb2
from protos.transientstore import transientstore_pb2
from tests.sim.ledger_writer import PrivateWrite, collection_sets
from tests.unit.peer.test_ledger import NS, VALID, Chain, Failure, fail_at


class Membership:
    """Member of "mine" (block-to-live `btl`), not of "theirs"."""

    def __init__(self, btl: int = 0) -> None:
        self.btl = btl

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        return coll == "mine"

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        return self.btl if coll == "mine" else 0


def private_tx(
    chain: Chain, private: dict[str, list[PrivateWrite]]
) -> tuple[bytes, bytes]:
    """An envelope with the collections' hashed write sets, and their plaintext."""
    hashed, pvt_rwset = collection_sets(private, namespace=NS)
    return chain.tx(collections=hashed), pvt_rwset


def persist_transient(folder: Path, tx_id: str, height: int, data: bytes) -> None:
    """What an endorser or a dissemination receiver does, on its own connection."""
    with closing(open_channel_db(folder / DATABASE_FILE)) as conn:
        transient.persist(conn, tx_id, height, data)


def open_ledger(path: Path, **options: object) -> ChannelLedger:
    return ChannelLedger.open(
        path,
        channel_id="ch",
        collections=options.pop("collections", Membership()),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def test_handed_in_private_data_is_applied_stored_and_leaves_the_transient_store(
    tmp_path: Path,
) -> None:
    chain = Chain()
    envelope, pvt_rwset = private_tx(
        chain,
        {"mine": [PrivateWrite("p", b"secret")], "theirs": [PrivateWrite("q", b"x")]},
    )
    with open_ledger(tmp_path) as ledger:
        ledger.commit_block(chain.block((envelope, VALID)), {0: pvt_rwset})

        value = ledger.get_private_data(NS, "mine", "p")
        assert value is not None
        assert value.value == b"secret"
        assert ledger.get_private_data(NS, "theirs", "q") is None
        assert ledger.get_private_data_hash(NS, "theirs", "q") == _sha(b"x")
        reader = ledger.reader()
        stored = pvtdata.get_block_private_data(reader, 0)
        assert [
            c.collection_name for c in stored[0].ns_pvt_rwset[0].collection_pvt_rwset
        ] == ["mine"]
        assert pvtdata.list_missing(reader, 10, eligible=False) == [
            pvtdata.MissingPrivateData(0, 0, NS, "theirs", False)
        ]
        assert transient.tx_ids(reader) == []


def test_private_data_survives_a_crash_after_the_append_through_the_transient_store(
    tmp_path: Path,
) -> None:
    """Replay finds the handed-in plaintext in the transient store, not in memory."""
    chain = Chain()
    envelope, pvt_rwset = private_tx(chain, {"mine": [PrivateWrite("p", b"secret")]})
    ledger = open_ledger(tmp_path, observer=fail_at(CommitStep.APPENDED, 0))
    with pytest.raises(Failure):
        ledger.commit_block(chain.block((envelope, VALID)), {0: pvt_rwset})
    assert transient.tx_ids(ledger.reader()) == ["tx1"]
    ledger.close()

    with open_ledger(tmp_path) as reopened:
        value = reopened.get_private_data(NS, "mine", "p")
        assert value is not None
        assert value.value == b"secret"
        assert pvtdata.list_missing(reopened.reader(), 10) == []
        assert transient.tx_ids(reopened.reader()) == []


def test_endorsement_time_transient_data_is_used_and_absent_data_is_missing(
    tmp_path: Path,
) -> None:
    """tx1's plaintext waits in the transient store; tx2's is nowhere: missing."""
    chain = Chain()
    first, first_pvt = private_tx(chain, {"mine": [PrivateWrite("p", b"one")]})
    second, _ = private_tx(chain, {"mine": [PrivateWrite("r", b"two")]})
    with open_ledger(tmp_path) as ledger:
        entry = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
            endorsed_at=0, pvt_rwset=rwset_pb2.TxPvtReadWriteSet.FromString(first_pvt)
        )
        with_config = entry.SerializeToString()
        persist_transient(tmp_path, "tx1", 0, with_config)

        ledger.commit_block(chain.block((first, VALID), (second, VALID)))

        assert ledger.get_private_data(NS, "mine", "p") is not None
        assert ledger.get_private_data(NS, "mine", "r") is None
        assert ledger.get_private_data_hash(NS, "mine", "r") == _sha(b"two")
        assert pvtdata.list_missing(ledger.reader(), 10) == [
            pvtdata.MissingPrivateData(0, 1, NS, "mine")
        ]


def test_private_data_expires_after_its_block_to_live(tmp_path: Path) -> None:
    """BTL 1: written at block 0, gone when block 2 commits, on every peer."""
    chain = Chain()
    envelope, pvt_rwset = private_tx(chain, {"mine": [PrivateWrite("p", b"secret")]})
    with open_ledger(tmp_path, collections=Membership(btl=1)) as ledger:
        ledger.commit_block(chain.block((envelope, VALID)), {0: pvt_rwset})
        ledger.commit_block(chain.block((chain.tx(("a", b"1")), VALID)))
        assert ledger.get_private_data(NS, "mine", "p") is not None

        ledger.commit_block(chain.block((chain.tx(("a", b"2")), VALID)))

        assert ledger.get_private_data(NS, "mine", "p") is None
        assert ledger.get_private_data_hash(NS, "mine", "p") is None
        assert pvtdata.get_block_private_data(ledger.reader(), 0) == {}


def test_transient_entries_older_than_the_retention_are_dropped(
    tmp_path: Path,
) -> None:
    """Retention 2: committing block 3 drops entries endorsed below height 1 (as Fabric)."""
    chain = Chain()
    _, pvt_rwset = private_tx(chain, {"mine": [PrivateWrite("p", b"x")]})
    entry = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
        pvt_rwset=rwset_pb2.TxPvtReadWriteSet.FromString(pvt_rwset)
    ).SerializeToString()
    with open_ledger(tmp_path, transient_retention_blocks=2) as ledger:
        persist_transient(tmp_path, "old", 0, entry)
        persist_transient(tmp_path, "recent", 1, entry)
        for value in (b"1", b"2", b"3", b"4"):
            ledger.commit_block(chain.block((chain.tx(("a", value)), VALID)))

        assert transient.tx_ids(ledger.reader()) == ["recent"]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_private_data_that_does_not_decode_is_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    chain = Chain()
    envelope, _ = private_tx(chain, {"mine": [PrivateWrite("p", b"secret")]})
    public = chain.tx(("a", b"1"))
    with open_ledger(tmp_path) as ledger:
        for bad in ({0: b"\xff\xff"}, {1: b"\xff\xff"}):
            with pytest.raises(LedgerError, match="cannot commit"):
                ledger.commit_block(
                    chain.block((envelope, VALID), (public, VALID)), bad
                )
            chain.number -= 1  # the same block again
            chain.previous_hash = ledger.blockchain_info().currentBlockHash

        assert ledger.height == 0
        assert transient.tx_ids(ledger.reader()) == []
