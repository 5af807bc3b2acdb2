"""Reading committed blocks: events of valid transactions, definitions, commit tracking."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from common.msp import SigningIdentity
from common.protoutil import (
    ChaincodeId,
    ChaincodeResponse,
    create_proposal,
    create_proposal_response,
    create_transaction_envelope,
    new_block,
    parse_proposal,
    proposal_hash_of,
    sign_envelope,
    with_transaction_filter,
)
from gateway.blocks import block_events, block_transactions, config_of
from gateway.channels import ChannelView
from gateway.commit import CommitTracker, TxStatus
from gateway.errors import StatusError
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from protos.common import common_pb2
from protos.peer import chaincode_event_pb2
from protos.peer.transaction_pb2 import TxValidationCode
from tests.support.peer import HOSPITAL_A, PeerMaterial, definition_envelope

VALID = TxValidationCode.VALID
MVCC = TxValidationCode.MVCC_READ_CONFLICT


def transaction(
    material: PeerMaterial, chaincode: str, event_name: str = ""
) -> tuple[str, bytes]:
    client: SigningIdentity = material.user(HOSPITAL_A, "dr-lee")
    peer = material.peer_identity(HOSPITAL_A)
    created = create_proposal(
        channel_id="medical-records",
        chaincode_name=chaincode,
        args=[b"invoke"],
        creator=client.serialized,
    )
    event = b""
    if event_name:
        event = chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=chaincode, event_name=event_name, payload=b"p"
        ).SerializeToString()
    proposal = parse_proposal(created.proposal_bytes)
    response = create_proposal_response(
        proposal_hash=proposal_hash_of(proposal),
        results=b"",
        response=ChaincodeResponse(status=200),
        chaincode_id=ChaincodeId(chaincode, "1"),
        endorser=peer.serialized,
        signer=peer.sign,
        events=event,
    )
    payload = create_transaction_envelope(proposal=proposal, responses=[response])
    return created.tx_id, sign_envelope(payload, client.sign).SerializeToString()


def block(number: int, envelopes: list[bytes], codes: list[int]) -> common_pb2.Block:
    made = new_block(number, previous_hash=b"", envelopes=envelopes)
    return with_transaction_filter(made, codes)


def test_events_come_from_valid_transactions_of_the_chaincode_in_order(
    material: PeerMaterial,
) -> None:
    first = transaction(material, "asset", "Created")
    invalid = transaction(material, "asset", "Lost")
    other = transaction(material, "records", "Other")
    second = transaction(material, "asset", "Moved")
    quiet = transaction(material, "asset")
    txs = [first, invalid, other, second, quiet]
    committed = block(7, [tx for _, tx in txs], [VALID, MVCC, VALID, VALID, VALID])
    events = block_events(committed, chaincode="asset")
    assert [(e.event_name, e.tx_id) for e in events] == [
        ("Created", first[0]),
        ("Moved", second[0]),
    ]
    resumed = block_events(committed, chaincode="asset", after_tx_id=first[0])
    assert [e.event_name for e in resumed] == ["Moved"]
    assert block_events(committed, chaincode="asset", after_tx_id=second[0]) == []
    assert [tx.code for tx in block_transactions(committed)] == [
        VALID,
        MVCC,
        VALID,
        VALID,
        VALID,
    ]


def test_unvalidated_blocks_report_not_validated(material: PeerMaterial) -> None:
    _, tx = transaction(material, "asset", "Created")
    raw = new_block(3, previous_hash=b"", envelopes=[tx])
    assert [t.code for t in block_transactions(raw)] == [TxValidationCode.NOT_VALIDATED]
    assert block_events(raw, chaincode="asset") == []


def test_the_channel_view_reads_config_definitions_and_commits(
    material: PeerMaterial,
) -> None:
    view = ChannelView("medical-records")
    view.apply_block(material.genesis)
    assert view.config.channel_id == "medical-records"
    assert config_of(material.genesis) is not None
    definition = ChaincodeDefinition(
        name="asset",
        version="1",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )
    envelope = definition_envelope(material, definition, [HOSPITAL_A])
    committed = block(1, [envelope], [VALID])
    assert config_of(committed) is None
    view.apply_block(committed)
    info = view.lifecycle.chaincode("asset")
    assert info is not None
    assert info.endorsement_policy == default_endorsement_policy()
    assert view.height == 2
    view.apply_block(committed)  # seen before: ignored
    assert view.height == 2


def test_an_invalid_definition_transaction_changes_nothing(
    material: PeerMaterial,
) -> None:
    view = ChannelView("medical-records")
    view.apply_block(material.genesis)
    definition = ChaincodeDefinition(
        name="asset",
        version="1",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )
    envelope = definition_envelope(material, definition, [HOSPITAL_A])
    view.apply_block(
        block(1, [envelope], [TxValidationCode.ENDORSEMENT_POLICY_FAILURE])
    )
    assert view.lifecycle.chaincode("asset") is None


async def test_commit_waiters_wake_on_the_first_occurrence_only() -> None:
    tracker = CommitTracker()
    waiter = tracker.register("tx-1")
    tracker.record_block(0, [("tx-0", VALID)])
    assert not waiter.done()
    tracker.record_block(1, [("tx-1", VALID)])
    tracker.record_block(2, [("tx-1", TxValidationCode.DUPLICATE_TXID)])
    assert await asyncio.wait_for(waiter, 1) == TxStatus(VALID, 1)
    assert tracker.lookup("tx-1") == TxStatus(VALID, 1)
    assert tracker.register("tx-1").result() == TxStatus(VALID, 1)
    assert (tracker.next_block, tracker.complete_from) == (3, 0)


async def test_the_index_is_bounded_and_says_what_it_no_longer_covers() -> None:
    tracker = CommitTracker(capacity=2)
    for number in range(4):
        tracker.record_block(number, [(f"tx-{number}", VALID)])
    assert tracker.lookup("tx-0") is None
    assert tracker.lookup("tx-3") == TxStatus(VALID, 3)
    assert tracker.complete_from == 2


async def test_only_an_evicted_id_may_be_older_than_the_index() -> None:
    """Once the index is full, a waiting CommitStatus asks the ledger only for ids the
    evicted-id filter may hold; ids that are not hex could be anything."""
    tracker = CommitTracker(capacity=2)
    ids = [hashlib.sha256(bytes([n])).hexdigest() for n in range(4)]
    for number, tx_id in enumerate(ids):
        tracker.record_block(number, [(tx_id, VALID)])
    fresh = hashlib.sha256(b"not committed yet").hexdigest()

    assert [tracker.may_be_older(tx_id) for tx_id in ids] == [True, True, False, False]
    assert not tracker.may_be_older(fresh)
    tracker.record_block(4, [("tx-4", VALID)])
    tracker.record_block(5, [("tx-5", VALID)])
    tracker.record_block(6, [("tx-6", VALID)])
    assert tracker.may_be_older(fresh)


async def test_blocks_never_seen_may_hold_any_id() -> None:
    tracker = CommitTracker()
    tracker.record_block(5, [("tx-5", VALID)])
    assert tracker.may_be_older("tx-1")
    assert not tracker.may_be_older("tx-5")


async def test_a_gap_in_blocks_moves_the_complete_start() -> None:
    tracker = CommitTracker()
    tracker.record_block(5, [("tx-5", VALID)])
    assert tracker.complete_from == 5


async def test_giving_up_on_a_wait_forgets_the_waiter() -> None:
    tracker = CommitTracker()
    waiter = tracker.register("tx-9")
    tracker.unregister("tx-9", waiter)
    tracker.record_block(0, [("tx-9", VALID)])
    assert not waiter.done()
    other = tracker.register("tx-8")
    tracker.resolve("tx-8", TxStatus(MVCC, 4))
    assert other.result() == TxStatus(MVCC, 4)


async def test_an_unready_view_is_unavailable() -> None:
    view = ChannelView("medical-records")
    with pytest.raises(StatusError) as raised:
        await view.wait_ready(0.01)
    assert raised.value.code.name == "UNAVAILABLE"
    with pytest.raises(StatusError):
        _ = view.config
