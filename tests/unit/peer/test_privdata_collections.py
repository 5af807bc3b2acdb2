"""Collection configs from committed definitions: membership, blockToLive, the ledger.

Method: definitions are `_lifecycle` writes (`definition_writes`), kept in a dict
reader for `CommittedCollections`, or committed in a block to a real channel ledger
opened by `peer.channels.open_ledger` for hospitals A (member) and C (not a member).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.policies import from_string
from network.bench_ledger import endorser_envelope, validated_block
from peer.channels import open_ledger
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtstore import MissingPrivateData, list_missing
from peer.ledger.statedb import Version, VersionedValue
from peer.ledger.updates import derive_block_updates
from peer.lifecycle import ChaincodeDefinition, definition_writes
from peer.lifecycle.definitions import signature_endorsement_policy
from peer.privdata.collections import (
    CommittedCollections,
    implicit_collection,
    member_mspids,
    static_config,
)
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import collection_pb2
from tests.sim.ledger_writer import PrivateWrite, collection_sets, config_envelope

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
CC = "records"
CHANNEL = "bench"  # the channel id of the envelopes network.bench_ledger builds
VALID = 0


def _collection(
    name: str, *, block_to_live: int = 0
) -> collection_pb2.CollectionConfig:
    config = collection_pb2.CollectionConfig()
    static = config.static_collection_config
    static.name = name
    static.member_orgs_policy.signature_policy.CopyFrom(
        from_string(f"OR('{A}.member', '{B}.member')")
    )
    static.block_to_live = block_to_live
    static.member_only_read = True
    return config


def _definition() -> ChaincodeDefinition:
    package = collection_pb2.CollectionConfigPackage(
        config=[_collection("AB"), _collection("ABttl", block_to_live=1)]
    )
    return ChaincodeDefinition(
        name=CC,
        version="1.0",
        sequence=1,
        endorsement_policy=signature_endorsement_policy(from_string(f"OR('{A}.peer')")),
        collections=package.SerializeToString(),
    )


class DictReader:
    def __init__(self, writes: list[tuple[str, bytes]]) -> None:
        self.values = dict(writes)
        self.reads = 0

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        self.reads += 1
        value = self.values.get(key) if ns == "_lifecycle" else None
        return None if value is None else VersionedValue(value, Version(1, 0), {})


def test_members_and_block_to_live_come_from_the_definition() -> None:
    """A and B are members of AB; C is not; ABttl lives one block; unknown: no member."""
    reader = DictReader(definition_writes(_definition()))
    on_a = CommittedCollections(lambda: reader, mspid=A)
    on_c = CommittedCollections(lambda: reader, mspid=C)

    assert on_a.is_member(CC, "AB", block_num=5)
    assert not on_c.is_member(CC, "AB", block_num=5)
    assert on_a.block_to_live(CC, "ABttl", block_num=5) == 1
    assert on_a.block_to_live(CC, "AB", block_num=5) == 0
    assert not on_a.is_member(CC, "nope", block_num=5)
    assert not on_a.is_member("undefined", "AB", block_num=5)
    config = static_config(reader, CC, "AB")
    assert config is not None
    assert member_mspids(config) == {A, B}


def test_implicit_collections_belong_to_their_organisation_only() -> None:
    """`_implicit_org_<MSP>` exists for every chaincode, even `_lifecycle`."""
    reader = DictReader([])
    on_a = CommittedCollections(lambda: reader, mspid=A)

    assert on_a.is_member("_lifecycle", f"_implicit_org_{A}", block_num=1)
    assert not on_a.is_member(CC, f"_implicit_org_{B}", block_num=1)
    assert on_a.block_to_live(CC, f"_implicit_org_{A}", block_num=1) == 0
    implicit = implicit_collection(B)
    assert member_mspids(implicit) == {B}
    assert not implicit.member_only_read
    assert not implicit.member_only_write


def test_configs_are_read_once_per_block() -> None:
    """Asking again during the same block costs no read; the next block reads again."""
    reader = DictReader(definition_writes(_definition()))
    collections = CommittedCollections(lambda: reader, mspid=A)

    collections.is_member(CC, "AB", block_num=3)
    reads = reader.reads
    collections.block_to_live(CC, "AB", block_num=3)
    assert reader.reads == reads
    collections.is_member(CC, "AB", block_num=4)
    assert reader.reads > reads


# ---------------------------------------------------------------- on a channel ledger


@pytest.fixture(params=[A, C])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChannelLedger]:
    opened, state = open_ledger(
        tmp_path / "ch", channel_id=CHANNEL, mspid=request.param
    )
    try:
        yield opened
    finally:
        opened.close()
        state.close()


def _commit(ledger: ChannelLedger, envelope: bytes, pvt: bytes | None = None) -> None:
    number = ledger.height
    previous = ledger.blockchain_info().currentBlockHash
    block = validated_block(
        number, previous_hash=previous, envelopes=[envelope], codes=[VALID]
    )
    ledger.commit_block(block, {0: pvt} if pvt is not None else None)


def test_open_ledger_stores_member_data_and_expires_it_by_the_definition(
    ledger: ChannelLedger, request: pytest.FixtureRequest
) -> None:
    """After the definition commits, A keeps AB and ABttl (the latter only until block
    2 + 1 + 1); C keeps nothing and records both as missing it is not eligible for."""
    mspid = request.node.callspec.params["ledger"]
    _commit(ledger, config_envelope("genesis"))
    _commit(
        ledger,
        endorser_envelope(
            tx_id="define",
            writes=definition_writes(_definition()),
            namespace="_lifecycle",
        ),
    )
    private = {
        "AB": [PrivateWrite("k", b"kept")],
        "ABttl": [PrivateWrite("t", b"short-lived")],
    }
    hashed, pvt = collection_sets(private, namespace=CC)
    _commit(
        ledger,
        endorser_envelope(tx_id="write", writes=[], namespace=CC, collections=hashed),
        pvt,
    )
    _commit(ledger, endorser_envelope(tx_id="next", writes=[("x", b"1")], namespace=CC))

    digest = hashlib.sha256(b"kept").digest()
    assert ledger.get_private_data_hash(CC, "AB", "k") == digest
    if mspid == A:
        kept = ledger.get_private_data(CC, "AB", "k")
        assert kept is not None
        assert kept.value == b"kept"
        assert ledger.get_private_data(CC, "ABttl", "t") is not None
        assert list_missing(ledger.reader(), 10) == []
    else:
        assert ledger.get_private_data(CC, "AB", "k") is None
        assert list_missing(ledger.reader(), 10) == []
        assert set(list_missing(ledger.reader(), 10, eligible=False)) == {
            MissingPrivateData(2, 0, CC, "AB", False),
            MissingPrivateData(2, 0, CC, "ABttl", False),
        }
    _commit(ledger, endorser_envelope(tx_id="last", writes=[("x", b"2")], namespace=CC))
    assert ledger.get_private_data(CC, "ABttl", "t") is None
    assert ledger.get_private_data_hash(CC, "ABttl", "t") is None


def test_a_collection_only_read_by_hash_expects_no_plaintext() -> None:
    """Like `_lifecycle`'s commit reading each organisation's approval hash: the
    hashed set has reads only and no pvt_rwset_hash, so nothing is missing."""
    reads_only = rwset_pb2.CollectionHashedReadWriteSet(
        collection_name=f"_implicit_org_{A}",
        hashed_rwset=kv_rwset_pb2.HashedRWSet(
            hashed_reads=[
                kv_rwset_pb2.KVReadHash(key_hash=hashlib.sha256(b"k").digest())
            ]
        ).SerializeToString(),
    )
    envelope = endorser_envelope(
        tx_id="commit", writes=[], namespace="_lifecycle", collections=[reads_only]
    )
    block = validated_block(
        5, previous_hash=bytes(32), envelopes=[envelope], codes=[VALID]
    )
    on_a = CommittedCollections(lambda: DictReader([]), mspid=A)

    updates = derive_block_updates(block, private_data=lambda tx: (), collections=on_a)

    assert updates.private.missing == ()
