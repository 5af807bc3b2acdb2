"""Refused and concurrent config updates on an in-process solo orderer.

Method: the consortium and update builders of `test_config_update`; each refused update
breaks one rule and must leave the chain as it was, with the status and reason in the
BroadcastResponse. Updates admitted against the same config are ordered in turn, so the
later ones are made again (or refused) at cut time against the config of that moment.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, keys
from common.configtx import (
    compute_update,
    create_signed_tx,
    parse_config_tx,
    validate_config_envelope,
    validate_config_update,
)
from common.deliver import DeliverSettings
from common.protoutil import last_config_index, parse_envelope
from network.orderer_material import ORDERING, OrdererMaterial
from orderer.errors import BroadcastRejected
from orderer.service import AtomicBroadcastService
from protos.common import common_pb2, configtx_pb2
from tests.integration.orderer.test_config_update import (
    CHANNEL,
    HOSPITALS,
    SUCCESS,
    admin,
    batch_size_update,
    build_consortium,
    channel_config,
    commission_update,
    edited,
    orderer_creator,
    set_batch_size,
    set_batch_timeout,
    statuses,
    stored_blocks,
    update_tx,
)
from tests.support.orderer import broadcast, connected_orderer, running_orderer


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_consortium(tmp_path_factory)


@pytest.fixture(scope="module")
def genesis(consortium: OrdererMaterial) -> ChannelConfig:
    return ChannelConfig.from_block(consortium.genesis)


async def test_refused_updates_write_nothing_and_say_why(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """After one accepted update, each case breaks one rule; a good update ends the stream."""
    commission = admin(consortium, ORDERING)
    applied = batch_size_update(consortium, genesis, 2)
    # The config the orderer holds once `applied` is in a block (sequence 1).
    current = ChannelConfig.from_config(
        validate_config_update(genesis, applied).config, channel_id=CHANNEL
    )

    def timeout_update(timeout: str = "1s") -> configtx_pb2.ConfigUpdate:
        return compute_update(
            CHANNEL, current.config, edited(current, set_batch_timeout(timeout))
        )

    stale_read = timeout_update()
    stale_read.read_set.groups[keys.ORDERER].values[keys.BATCH_SIZE].version = 0
    wrong_version = timeout_update()
    wrong_version.write_set.groups[keys.ORDERER].values[keys.BATCH_TIMEOUT].version = 5
    other_channel = timeout_update()
    other_channel.channel_id = "elsewhere"
    no_change = timeout_update()
    no_change.write_set.CopyFrom(no_change.read_set)
    cases = [
        (applied, common_pb2.BAD_REQUEST, "version"),
        (batch_size_update(consortium, genesis, 3), common_pb2.BAD_REQUEST, "version"),
        (commission_update(consortium, stale_read), common_pb2.BAD_REQUEST, "read set"),
        (
            commission_update(consortium, wrong_version),
            common_pb2.BAD_REQUEST,
            "not 5",
        ),
        (
            commission_update(consortium, other_channel),
            common_pb2.BAD_REQUEST,
            "elsewhere",
        ),
        (commission_update(consortium, no_change), common_pb2.BAD_REQUEST, "nothing"),
        (
            update_tx(
                timeout_update(),
                approvers=[admin(consortium, mspid) for mspid in HOSPITALS],
                submitter=commission,
            ),
            common_pb2.FORBIDDEN,
            "mod_policy",
        ),
        (
            update_tx(timeout_update(), approvers=[], submitter=commission),
            common_pb2.FORBIDDEN,
            "mod_policy",
        ),
        (
            create_signed_tx(
                common_pb2.CONFIG_UPDATE, b"\xff\xff", commission, channel_id=CHANNEL
            ).SerializeToString(),
            common_pb2.BAD_REQUEST,
            "ConfigUpdateEnvelope",
        ),
        (commission_update(consortium, timeout_update("3s")), SUCCESS, ""),
    ]
    async with connected_orderer(consortium, tmp_path) as (node, channel):
        assert statuses(await broadcast(channel, [applied])) == [SUCCESS]
        responses = await broadcast(channel, [envelope for envelope, _, _ in cases])
        final = channel_config(node)

    assert statuses(responses) == [status for _, status, _ in cases]
    for response, (_, _, words) in zip(responses, cases, strict=True):
        assert words in response.info
    assert final.sequence == 2
    assert final.batch_timeout == 3.0
    assert final.batch_size.max_message_count == 2
    assert len(stored_blocks(tmp_path)) == 3


async def test_an_update_made_against_an_older_config_is_made_again_at_cut_time(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """Three updates admitted against the genesis config, then ordered in turn.

    The second touches another value, so at cut time it is made again against the
    first's config (sequence 2, both changes); the third changes the first's value
    again, so it no longer applies and is refused without a block.
    """
    timeout = compute_update(
        CHANNEL, genesis.config, edited(genesis, set_batch_timeout("3s"))
    )
    async with running_orderer(consortium, tmp_path) as (node, _):
        service = AtomicBroadcastService(
            node.registrar, broadcast_window=8, deliver_settings=DeliverSettings()
        )
        admitted = [
            service.admit(batch_size_update(consortium, genesis, 2)),
            service.admit(commission_update(consortium, timeout)),
            service.admit(batch_size_update(consortium, genesis, 3)),
        ]
        outcomes = await asyncio.gather(*admitted, return_exceptions=True)
        final = channel_config(node)

    assert outcomes[:2] == [1, 2]
    refused = outcomes[2]
    assert isinstance(refused, BroadcastRejected)
    assert refused.status == common_pb2.BAD_REQUEST
    assert "version" in str(refused)
    assert final.sequence == 2
    assert (final.batch_size.max_message_count, final.batch_timeout) == (2, 3.0)
    blocks = stored_blocks(tmp_path)
    assert len(blocks) == 3
    first = validate_config_envelope(genesis, parse_config_tx(blocks[1].data.data[0]))
    second = validate_config_envelope(first, parse_config_tx(blocks[2].data.data[0]))
    assert second == final
    assert parse_envelope(blocks[2].data.data[0]).creator == orderer_creator(consortium)
    assert [last_config_index(block) for block in blocks] == [0, 1, 2]


async def test_fuzzed_config_updates_are_refused_and_the_stream_survives(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path, seed: int
) -> None:
    """Well-signed CONFIG_UPDATE envelopes around random or bit-flipped update bytes."""
    rng = random.Random(seed)
    commission = admin(consortium, ORDERING)
    good = compute_update(
        CHANNEL, genesis.config, edited(genesis, set_batch_size(2))
    ).SerializeToString()
    fuzzed = []
    for _ in range(40):
        flipped = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        fuzzed.append(bytes(flipped))
    fuzzed.extend(rng.randbytes(rng.randrange(0, 200)) for _ in range(20))
    envelopes = [
        update_tx(update, approvers=[commission], submitter=commission)
        for update in fuzzed
    ]
    envelopes.extend(
        create_signed_tx(
            common_pb2.CONFIG_UPDATE,
            rng.randbytes(rng.randrange(0, 200)),
            commission,
            channel_id=CHANNEL,
        ).SerializeToString()
        for _ in range(20)
    )
    async with connected_orderer(consortium, tmp_path) as (_, channel):
        responses = await broadcast(
            channel, [*envelopes, batch_size_update(consortium, genesis, 2)]
        )

    assert set(statuses(responses[:-1])) <= {
        SUCCESS,  # a flip that only changes the new BatchSize's numbers
        common_pb2.BAD_REQUEST,
        common_pb2.FORBIDDEN,
    }
    assert responses[-1].status in {SUCCESS, common_pb2.BAD_REQUEST}
