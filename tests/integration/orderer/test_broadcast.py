"""Broadcast against an in-process solo orderer over real gRPC on 127.0.0.1:0.

Method: send envelopes on one stream and compare the statuses with the checks'
order; then read the channel's block store after the orderer stopped and check the
acknowledged envelopes are there, once each, in signed blocks that chain.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from common.blockstore import BlockStore
from common.channelconfig import ChannelConfig
from common.msp import SigningIdentity
from common.policies import SignedData as PolicySignedData
from common.protoutil import (
    block_signature_messages,
    last_config_index,
    parse_block,
    parse_envelope,
    payload_bytes,
    verify_block_hash_chain,
)
from network.orderer_material import (
    HOSPITAL,
    ORDERING,
    OrdererMaterial,
    build_orderer_material,
    new_envelope,
    small_spec,
)
from protos.common import common_pb2
from tests.support.orderer import broadcast, connected_orderer

SUCCESS = common_pb2.SUCCESS


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    """The same MSP ids under other CAs: identities the channel must not trust."""
    return build_orderer_material(tmp_path_factory.mktemp("foreign"))


@pytest.fixture(scope="module")
def small_batches(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    spec = small_spec(
        max_message_count=3,
        preferred_max_bytes="8 KB",
        absolute_max_bytes="16 KB",
        # Long enough that a loaded machine's pause between two envelopes of one
        # stream does not cut a block the count and size rules are meant to cut.
        batch_timeout="500ms",
    )
    return build_orderer_material(tmp_path_factory.mktemp("small"), spec)


def channel_store(folder: Path, material: OrdererMaterial) -> BlockStore:
    return BlockStore.open(folder / "storage" / "channels" / material.channel)


def resigned(envelope: bytes, signer: SigningIdentity) -> bytes:
    """The same payload with another identity's signature."""
    message = common_pb2.Envelope.FromString(envelope)
    return common_pb2.Envelope(
        payload=message.payload, signature=signer.sign(message.payload)
    ).SerializeToString()


def check_orderer_signature(block: common_pb2.Block, config: ChannelConfig) -> None:
    policy = config.policy_manager.get("/Channel/Orderer/BlockValidation")
    signed = [
        PolicySignedData(
            data=item.message, identity=item.identity, signature=item.signature
        )
        for item in block_signature_messages(block)
    ]
    policy.evaluate(signed, config.msp_manager)


async def test_acknowledged_envelopes_are_in_signed_chained_blocks(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    client = material.signing_identity(HOSPITAL, "dr-lee")
    envelopes = [new_envelope(client, data=bytes([n]) * 200) for n in range(40)]
    async with connected_orderer(material, tmp_path) as (_, channel):
        responses = await broadcast(channel, envelopes)

    assert [response.status for response in responses] == [SUCCESS] * 40
    config = ChannelConfig.from_block(material.genesis)
    with channel_store(tmp_path, material) as store:
        blocks = list(store.iter_blocks())
    stored = [envelope for block in blocks[1:] for envelope in block.data.data]
    assert stored == envelopes
    for previous, block in itertools.pairwise(blocks):
        verify_block_hash_chain(previous, block)
        check_orderer_signature(block, config)
        assert last_config_index(block) == 0


async def test_statuses_follow_the_checks_in_order(
    material: OrdererMaterial, foreign: OrdererMaterial, tmp_path: Path
) -> None:
    client = material.signing_identity(HOSPITAL, "dr-lee")
    stranger = foreign.signing_identity(HOSPITAL, "dr-lee")
    orderer_admin = material.signing_identity(ORDERING, "Admin")
    good = new_envelope(client)
    header_only = parse_envelope(good).header
    no_data = payload_bytes(
        header=common_pb2.Header(
            channel_header=header_only.channel_header.raw,
            signature_header=header_only.signature_header.raw,
        ).SerializeToString(),
        data=b"",
    )
    cases = [
        (good, SUCCESS),
        (b"\xff\x01garbage", common_pb2.BAD_REQUEST),
        (
            common_pb2.Envelope(signature=b"s").SerializeToString(),
            common_pb2.BAD_REQUEST,
        ),
        (new_envelope(client, channel="nowhere"), common_pb2.NOT_FOUND),
        (resigned(new_envelope(client), stranger), common_pb2.FORBIDDEN),
        (new_envelope(stranger), common_pb2.FORBIDDEN),
        (new_envelope(client, tx_id="0" * 64), common_pb2.BAD_REQUEST),
        (new_envelope(client, header_type=common_pb2.CONFIG), common_pb2.BAD_REQUEST),
        (new_envelope(client, header_type=common_pb2.MESSAGE), common_pb2.BAD_REQUEST),
        (
            new_envelope(client, header_type=common_pb2.CONFIG_UPDATE),
            common_pb2.BAD_REQUEST,
        ),
        (
            common_pb2.Envelope(
                payload=no_data, signature=client.sign(no_data)
            ).SerializeToString(),
            SUCCESS,
        ),
        (new_envelope(orderer_admin), SUCCESS),
        (new_envelope(client), SUCCESS),
    ]
    async with connected_orderer(material, tmp_path) as (_, channel):
        responses = await broadcast(channel, [envelope for envelope, _ in cases])

    assert [response.status for response in responses] == [
        status for _, status in cases
    ]
    assert "config update" in responses[9].info
    assert responses[3].info == "channel nowhere not found"


async def test_signatures_checked_in_the_worker_answer_each_envelope_in_place(
    material: OrdererMaterial, foreign: OrdererMaterial, tmp_path: Path
) -> None:
    """With the signature worker running, a forged envelope among good ones gets
    FORBIDDEN in its own place and the good ones are ordered in the order sent."""
    client = material.signing_identity(HOSPITAL, "dr-lee")
    stranger = foreign.signing_identity(HOSPITAL, "dr-lee")
    envelopes = [new_envelope(client, data=bytes([i])) for i in range(40)]
    forged = {
        5: resigned(envelopes[5], stranger),
        17: resigned(envelopes[17], stranger),
    }
    sent = [forged.get(i, envelope) for i, envelope in enumerate(envelopes)]
    async with connected_orderer(material, tmp_path) as (node, channel):
        await broadcast(channel, [new_envelope(client)])  # starts the worker
        assert await node.signatures.started()
        responses = await broadcast(channel, sent)
        assert node.signatures.running
        store = node.registrar.support(material.channel)
        assert store is not None
        ordered = [
            data
            for number in range(1, store.height())
            for data in parse_block(await store.block_bytes(number)).data.data
        ]

    assert [r.status for r in responses] == [
        common_pb2.FORBIDDEN if i in forged else SUCCESS for i in range(40)
    ]
    assert "envelope signature" in responses[5].info
    assert ordered[1:] == [e for i, e in enumerate(envelopes) if i not in forged]


async def test_fuzzed_envelopes_are_rejected_and_the_stream_survives(
    material: OrdererMaterial, tmp_path: Path, seed: int
) -> None:
    """Random bytes and bit-flipped valid envelopes never crash the stream."""
    rng = random.Random(seed)
    client = material.signing_identity(HOSPITAL, "dr-lee")
    valid = new_envelope(client, data=b"fuzz")
    fuzzed = [rng.randbytes(rng.randrange(0, 300)) for _ in range(150)]
    for _ in range(150):
        flipped = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        fuzzed.append(bytes(flipped))
    async with connected_orderer(material, tmp_path) as (_, channel):
        responses = await broadcast(channel, [*fuzzed, new_envelope(client)])

    statuses = {response.status for response in responses[:-1]}
    assert statuses <= {
        SUCCESS,  # a flip in the data part leaves a valid signature only by chance
        common_pb2.BAD_REQUEST,
        common_pb2.NOT_FOUND,
        common_pb2.FORBIDDEN,
    }
    assert common_pb2.BAD_REQUEST in statuses
    assert responses[-1].status == SUCCESS


async def test_blocks_are_cut_by_count_size_and_timeout(
    small_batches: OrdererMaterial, tmp_path: Path
) -> None:
    client = small_batches.signing_identity(HOSPITAL, "dr-lee")
    small = [new_envelope(client, data=b"s" * 100) for _ in range(4)]
    big = new_envelope(client, data=b"b" * 9000)
    too_big = new_envelope(client, data=b"t" * 17000)
    async with connected_orderer(small_batches, tmp_path) as (_, channel):
        responses = await broadcast(channel, [*small, big, too_big])

    assert [response.status for response in responses] == [SUCCESS] * 5 + [
        common_pb2.REQUEST_ENTITY_TOO_LARGE
    ]
    with channel_store(tmp_path, small_batches) as store:
        sizes = [len(block.data.data) for block in store.iter_blocks(1)]
    # 3 by count; the 4th is cut before the oversize envelope, which goes alone.
    assert sizes == [3, 1, 1]


async def test_timeout_cuts_a_partial_batch(
    small_batches: OrdererMaterial, tmp_path: Path
) -> None:
    client = small_batches.signing_identity(HOSPITAL, "dr-lee")
    async with connected_orderer(small_batches, tmp_path) as (_, channel):
        responses = await broadcast(channel, [new_envelope(client)])

    assert [response.status for response in responses] == [SUCCESS]
    with channel_store(tmp_path, small_batches) as store:
        assert store.height == 2
