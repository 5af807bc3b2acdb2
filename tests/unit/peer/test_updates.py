"""What a block changes: derive_block_updates on blocks built in memory (no database)."""

from __future__ import annotations

import hashlib

import pytest

from network.bench_ledger import endorser_envelope, tx_id_of_nonce, validated_block
from peer.errors import LedgerError
from peer.ledger.pvtrwset import CollectionRwSet, split_tx_pvt_rwset
from peer.ledger.pvtstore import MissingPrivateData
from peer.ledger.pvtupdates import ExpirySchedule
from peer.ledger.statedb import Version, WriteKind
from peer.ledger.updates import derive_block_updates
from peer.validator.transaction import inspect_envelope
from protos.common import common_pb2
from tests.sim.ledger_writer import PrivateWrite, collection_sets, config_envelope

NS = "cc"
VALID, MVCC_READ_CONFLICT, BAD_PAYLOAD = 0, 11, 2


def tx(
    tx_id: str,
    *writes: tuple[str, bytes | None],
    metadata: tuple[tuple[str, dict[str, bytes]], ...] = (),
    private: dict[str, list[PrivateWrite]] | None = None,
) -> bytes:
    hashed, _ = collection_sets(private or {})
    return endorser_envelope(
        tx_id=tx_id,
        writes=writes,
        namespace=NS,
        timestamp_s=1_700_000_100,
        metadata_writes=metadata,
        collections=hashed,
    )


def block(*txs: tuple[bytes, int], number: int = 7) -> common_pb2.Block:
    return validated_block(
        number,
        previous_hash=b"\x01" * 32,
        envelopes=[envelope for envelope, _ in txs],
        codes=[code for _, code in txs],
    )


def test_only_valid_transactions_write_and_each_gets_its_position() -> None:
    """Three txs, the middle one invalid: only the first and last reach state and history."""
    updates = derive_block_updates(
        block(
            (tx("t0", ("a", b"1")), VALID),
            (tx("t1", ("b", b"2")), MVCC_READ_CONFLICT),
            (tx("t2", ("c", b"3"), ("a", None)), VALID),
        )
    )

    writes = dict(updates.state.items())
    assert set(writes) == {(NS, "a"), (NS, "c")}
    assert writes[(NS, "a")].kind is WriteKind.DELETE
    assert writes[(NS, "a")].version == Version(7, 2)
    assert writes[(NS, "c")].value == b"3"
    history = updates.history.rows()
    assert [(row[1], row[3], row[4], row[7]) for row in history] == [
        ("a", 0, "t0", 0),
        ("c", 2, "t2", 0),
        ("a", 2, "t2", 1),
    ]
    assert {row[5] for row in history} == {1_700_000_100}
    assert updates.tx_ids == ("t0", "t1", "t2")
    assert [committed.tx_num for committed in updates.committed] == [0, 2]
    assert (updates.block_num, updates.tx_count) == (7, 3)


def test_later_transactions_win_and_metadata_follows_the_writes() -> None:
    """A key written twice keeps the later value; metadata writes join the value write."""
    updates = derive_block_updates(
        block(
            (tx("t0", ("k", b"old"), metadata=(("m", {"P": b"x"}),)), VALID),
            (
                tx("t1", ("k", b"new"), ("m", b"v"), metadata=(("m", {"P": b"y"}),)),
                VALID,
            ),
        )
    )

    assert updates.state.get(NS, "k") is not None
    assert updates.state.get(NS, "k").value == b"new"  # type: ignore[union-attr]
    metadata_key = updates.state.get(NS, "m")
    assert metadata_key is not None
    assert (metadata_key.kind, metadata_key.value) == (WriteKind.PUT, b"v")
    assert metadata_key.metadata == {"P": b"y"}


def test_config_and_undecodable_invalid_transactions_are_skipped() -> None:
    """A VALID config tx writes nothing but its tx id counts; invalid garbage is skipped."""
    updates = derive_block_updates(
        block(
            (config_envelope("cfg"), VALID),
            (b"\x0a\x03bad", BAD_PAYLOAD),
            (tx("t2", ("a", b"1")), VALID),
        )
    )

    assert updates.tx_ids == ("cfg", "t2")
    assert updates.tx_id_at == ("cfg", "", "t2")  # by position, for the block store
    assert [key for key, _ in updates.state.items()] == [(NS, "a")]


def _endorser_payload(data: bytes) -> bytes:
    payload = common_pb2.Payload(data=data)
    payload.header.channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, tx_id="t"
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


@pytest.mark.parametrize(
    "envelope",
    [
        b"\x0a\x03bad",
        common_pb2.Envelope(payload=b"\x12\x02zz").SerializeToString(),
        _endorser_payload(b"\x0a\x03bad"),
        _endorser_payload(b""),
    ],
    ids=["envelope", "no-header", "transaction", "no-action"],
)
def test_a_valid_transaction_that_does_not_decode_is_a_ledger_error(
    envelope: bytes,
) -> None:
    """The filter says VALID but the bytes are not an endorser transaction."""
    with pytest.raises(LedgerError, match="transaction 0 is marked VALID"):
        derive_block_updates(block((envelope, VALID)))


def test_a_block_without_a_transaction_filter_is_refused() -> None:
    """Committing needs the validator's codes; an unvalidated block is an error."""
    unvalidated = block((tx("t0", ("a", b"1")), VALID))
    unvalidated.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = b""

    with pytest.raises(LedgerError, match="no transaction filter"):
        derive_block_updates(unvalidated)


class Membership:
    def __init__(self, member: set[str], block_to_live: int = 0) -> None:
        self.member = member
        self.btl = block_to_live

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        return coll in self.member

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        return self.btl if coll in self.member else 0


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_private_write_sets_feed_hashed_state_plaintext_store_and_expiry() -> None:
    """Member data with a matching hash is applied and stored; the rest is missing."""
    private = {
        "mine": [PrivateWrite("p1", b"secret"), PrivateWrite("p2", None)],
        "theirs": [PrivateWrite("q", b"other")],
    }
    _, pvt_rwset = collection_sets(private, namespace=NS)
    on_hand = split_tx_pvt_rwset(pvt_rwset)

    updates = derive_block_updates(
        block((tx("t0", ("a", b"1"), private=private), VALID)),
        private_data=lambda committed: on_hand,
        collections=Membership({"mine"}, block_to_live=2),
    )

    private_updates = updates.private
    hashed = dict(private_updates.hashed.items())
    assert hashed[(NS, "mine", _sha(b"p1"))].value == _sha(b"secret")
    assert hashed[(NS, "mine", _sha(b"p2"))].kind is WriteKind.DELETE
    assert hashed[(NS, "theirs", _sha(b"q"))].value == _sha(b"other")
    plaintext = dict(private_updates.private.items())
    assert set(plaintext) == {(NS, "mine", "p1"), (NS, "mine", "p2")}
    assert plaintext[(NS, "mine", "p1")].value == b"secret"
    stored = split_tx_pvt_rwset(private_updates.stored[0])
    assert [(c.ns, c.coll) for c in stored] == [(NS, "mine")]
    assert private_updates.missing == (MissingPrivateData(7, 0, NS, "theirs", False),)
    assert set(private_updates.expiry) == {
        ExpirySchedule(NS, "mine", 2, (_sha(b"p1"),)),
        ExpirySchedule(NS, "theirs", 0, (_sha(b"q"),)),
    }


def test_plaintext_that_does_not_match_the_hash_is_missing() -> None:
    """A member collection whose offered write set hashes differently is recorded missing."""
    private = {"mine": [PrivateWrite("p1", b"secret")]}
    forged = [CollectionRwSet(NS, "mine", b"\x1a\x00")]

    updates = derive_block_updates(
        block((tx("t0", private=private), VALID), (tx("t1", private=private), VALID)),
        private_data=lambda committed: forged if committed.tx_num == 0 else (),
        collections=Membership({"mine"}),
    )

    assert len(updates.private.private) == 0
    assert updates.private.stored == {}
    assert updates.private.missing == (
        MissingPrivateData(7, 0, NS, "mine"),
        MissingPrivateData(7, 1, NS, "mine"),
    )


def test_purge_and_invalid_private_transactions() -> None:
    """A purge becomes a hashed purge request; an invalid tx's collections are ignored."""
    purge = {"mine": [PrivateWrite("p1", None, purge=True)]}
    ignored = {"mine": [PrivateWrite("p9", b"x")]}

    updates = derive_block_updates(
        block(
            (tx("t0", private=purge), VALID),
            (tx("t1", private=ignored), MVCC_READ_CONFLICT),
        ),
        collections=Membership({"mine"}),
    )

    (request,) = updates.private.hashed.purges()
    assert (request.coll, request.key_hash, request.version) == (
        "mine",
        _sha(b"p1"),
        Version(7, 0),
    )
    assert updates.private.missing == (MissingPrivateData(7, 0, NS, "mine"),)
    assert updates.private.expiry == (ExpirySchedule(NS, "mine", 0, ()),)


def test_blocks_without_collections_never_ask_for_private_data() -> None:
    """The private data source is consulted only for txs with collection write sets."""
    asked: list[int] = []

    def source(committed: object) -> list[CollectionRwSet]:
        asked.append(1)
        return []

    updates = derive_block_updates(
        block((tx("t0", ("a", b"1")), VALID)), private_data=source
    )

    assert asked == []
    assert updates.private.is_empty()


def test_the_validators_decoding_gives_the_same_updates_as_the_block() -> None:
    """Handing in what inspect_envelope decoded changes nothing but the work done."""
    nonces = [bytes([n]) * 24 for n in range(4)]
    private = {"c1": [PrivateWrite("p", b"secret")]}
    hashed, _ = collection_sets(private)
    envelopes = [
        endorser_envelope(
            tx_id=tx_id_of_nonce(nonce),
            nonce=nonce,
            writes=[(f"k{n}", b"v"), ("shared", None if n == 2 else bytes([n]))],
            namespace=NS,
            metadata_writes=(("shared", {"P": b"x"}),) if n == 1 else (),
            collections=hashed if n == 3 else (),
        )
        for n, nonce in enumerate(nonces)
    ]
    the_block = block(
        (envelopes[0], VALID),
        (envelopes[1], VALID),
        (envelopes[2], MVCC_READ_CONFLICT),
        (envelopes[3], VALID),
        (config_envelope("cfg"), VALID),
    )
    decoded = [
        inspect_envelope(envelope, channel_id="bench").decoded
        for envelope in the_block.data.data
    ]
    assert [entry is None for entry in decoded] == [False] * 4 + [True]

    with_decoded = derive_block_updates(the_block, decoded=decoded)
    from_block = derive_block_updates(the_block)

    assert dict(with_decoded.state.items()) == dict(from_block.state.items())
    assert with_decoded.history.rows() == from_block.history.rows()
    assert with_decoded.tx_id_at == from_block.tx_id_at
    assert [tx.tx_num for tx in with_decoded.committed] == [0, 1, 3]
    assert list(with_decoded.private.hashed.items()) == list(
        from_block.private.hashed.items()
    )
    assert len(dict(with_decoded.state.items())) == 4


def test_decoded_transactions_must_cover_the_block() -> None:
    the_block = block((tx("t0", ("a", b"1")), VALID), (tx("t1", ("b", b"2")), VALID))
    with pytest.raises(LedgerError, match="2 transactions but 1 decoded"):
        derive_block_updates(the_block, decoded=[None])
