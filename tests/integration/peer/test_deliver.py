"""The peer's protos.Deliver: blocks, filtered blocks, private-data form, and refusals.

Method: one peer (Hospital A) with the asset chaincode defined (block 1) and a valid
CreateAsset then TransferAsset (blocks 2 and 3, endorsed by peers of two hospitals);
requests are signed seek envelopes. Each refusal changes one thing of a good request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio

from common.protoutil import (
    FAIL_IF_NOT_READY,
    SeekPosition,
    Timestamp,
    create_seek_envelope,
)
from protos.common import common_pb2
from protos.peer import transaction_pb2
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    StandalonePeer,
    build_peer_material,
    co_endorse,
    open_channel,
    peer_deliver,
    process_proposal,
    seek,
    signed_proposal,
    standalone_peer,
    transaction,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Chain:
    peer: StandalonePeer
    channel: grpc.aio.Channel
    tx_ids: list[str]


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("deliver-material"))


async def endorse_and_commit(
    peer: StandalonePeer, channel: grpc.aio.Channel, args: list[str]
) -> str:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, proposal = signed_proposal(client, args)
    response = await process_proposal(channel, signed)
    assert response.response.status == 200, response.response.message
    second = co_endorse(response, peer.material.peer_identity(HOSPITAL_B))
    codes = await peer.commit([transaction(client, proposal, [response, second])])
    assert codes == (transaction_pb2.VALID,)
    return proposal.tx_id


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Chain]:
    async with (
        standalone_peer(material, tmp_path_factory.mktemp("deliver")) as peer,
        open_channel(peer.address) as channel,
    ):
        created = await endorse_and_commit(
            peer, channel, ["CreateAsset", "d1", "red", "1", "Ann", "5"]
        )
        moved = await endorse_and_commit(peer, channel, ["TransferAsset", "d1", "Bob"])
        yield Chain(peer, channel, [created, moved])


async def test_deliver_streams_the_committed_blocks_with_their_filters(
    chain: Chain,
) -> None:
    client = chain.peer.material.user(HOSPITAL_A, "dr-lee")
    request = seek(client, start=SeekPosition.oldest(), stop=SeekPosition.newest())
    responses = await peer_deliver(chain.channel, "Deliver", [request])
    blocks = [r.block for r in responses[:-1]]
    assert [b.header.number for b in blocks] == [0, 1, 2, 3]
    assert responses[-1].status == common_pb2.SUCCESS
    store = chain.peer.channel.ledger.block_store
    assert [b.SerializeToString() for b in blocks] == [
        store.block_bytes(n) for n in range(4)
    ]
    assert blocks[3].metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes([0])


async def test_filtered_blocks_carry_ids_codes_and_events_without_payload(
    chain: Chain,
) -> None:
    client = chain.peer.material.user(HOSPITAL_B, "dr-garcia")
    request = seek(client, start=SeekPosition.specified(2), stop=SeekPosition.newest())
    responses = await peer_deliver(chain.channel, "DeliverFiltered", [request])
    created, moved = (r.filtered_block for r in responses[:-1])
    assert (created.channel_id, created.number, moved.number) == (CHANNEL, 2, 3)
    [tx] = moved.filtered_transactions
    assert tx.txid == chain.tx_ids[1]
    assert tx.type == common_pb2.ENDORSER_TRANSACTION
    assert tx.tx_validation_code == transaction_pb2.VALID
    [action] = tx.transaction_actions.chaincode_actions
    event = action.chaincode_event
    assert (event.chaincode_id, event.tx_id) == ("asset", chain.tx_ids[1])
    assert event.event_name == "TransferAsset"
    assert event.payload == b""


async def test_private_data_form_wraps_the_block(chain: Chain) -> None:
    client = chain.peer.material.user(HOSPITAL_A, "dr-lee")
    request = seek(
        client, start=SeekPosition.specified(3), stop=SeekPosition.specified(3)
    )
    responses = await peer_deliver(chain.channel, "DeliverWithPrivateData", [request])
    wrapped = responses[0].block_and_private_data
    assert wrapped.block.header.number == 3
    assert dict(wrapped.private_data_map) == {}
    assert responses[-1].status == common_pb2.SUCCESS


async def test_a_waiting_request_gets_the_next_committed_block(chain: Chain) -> None:
    client = chain.peer.material.user(HOSPITAL_A, "dr-lee")
    height = chain.peer.channel.height()
    request = seek(
        client,
        start=SeekPosition.specified(height),
        stop=SeekPosition.specified(height),
    )
    waiting = asyncio.ensure_future(
        peer_deliver(chain.channel, "DeliverFiltered", [request])
    )
    tx_id = await endorse_and_commit(
        chain.peer, chain.channel, ["CreateAsset", "d2", "red", "1", "Ann", "5"]
    )
    responses = await asyncio.wait_for(waiting, 10)
    [tx] = responses[0].filtered_block.filtered_transactions
    assert tx.txid == tx_id
    chain.tx_ids.append(tx_id)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"channel": "no-such-channel"}, common_pb2.NOT_FOUND),
        ({"user": ("HealthCommissionMSP", "inspector-ng")}, common_pb2.FORBIDDEN),
        ({"timestamp": Timestamp(seconds=1_000_000)}, common_pb2.BAD_REQUEST),
        ({"behavior": FAIL_IF_NOT_READY}, common_pb2.NOT_FOUND),
        ({"stop": SeekPosition.specified(1)}, common_pb2.BAD_REQUEST),
    ],
)
async def test_refusals(chain: Chain, change: dict[str, object], status: int) -> None:
    user: tuple[str, str] = change.get("user", (HOSPITAL_A, "dr-lee"))  # type: ignore[assignment]
    signer = chain.peer.material.user(*user)
    request = create_seek_envelope(
        channel_id=change.get("channel", CHANNEL),  # type: ignore[arg-type]
        start=SeekPosition.specified(2),
        stop=change.get("stop", SeekPosition.specified(99)),  # type: ignore[arg-type]
        behavior=change.get("behavior", 0),  # type: ignore[arg-type]
        creator=signer.serialized,
        signer=signer.sign,
        timestamp=change.get("timestamp"),  # type: ignore[arg-type]
    ).SerializeToString()
    responses = await peer_deliver(chain.channel, "Deliver", [request])
    statuses = [r.status for r in responses if r.WhichOneof("Type") == "status"]
    assert statuses == [status]
