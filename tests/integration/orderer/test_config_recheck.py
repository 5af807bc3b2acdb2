"""Envelopes admitted under one config but cut under a newer one are checked again.

Method: an in-process solo orderer with the consortium of `test_config_update`;
envelopes and a config update go through `AtomicBroadcastService.admit` one after the
other without yielding, so every one is admitted against the genesis config before the
chain cuts anything. The update removes Hospital C from the channel: C's envelope
admitted before it is in the block cut before the config block; C's envelope admitted
after it fails FORBIDDEN at cut time; Hospital A's still passes and is ordered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig
from common.configtx import compute_update
from common.deliver import DeliverSettings
from network.orderer_material import OrdererMaterial
from orderer.errors import BroadcastRejected
from orderer.service import AtomicBroadcastService
from protos.common import common_pb2
from tests.integration.orderer.test_config_update import (
    CHANNEL,
    HOSPITALS,
    admin,
    build_consortium,
    channel_config,
    clients,
    edited,
    remove_org,
    stored_blocks,
    update_tx,
)
from tests.support.orderer import running_orderer


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_consortium(tmp_path_factory)


async def test_an_envelope_admitted_before_its_creator_was_removed_is_refused_at_cut(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    """C's second envelope was valid when admitted; the block after the config refuses it."""
    genesis = ChannelConfig.from_block(consortium.genesis)
    hospital_a, _, hospital_c = HOSPITALS
    update = update_tx(
        compute_update(
            CHANNEL, genesis.config, edited(genesis, remove_org(hospital_c))
        ),
        approvers=[admin(consortium, mspid) for mspid in HOSPITALS[:2]],
        submitter=admin(consortium, hospital_a),
    )
    before, after = clients(consortium, hospital_c, 2)
    (unaffected,) = clients(consortium, hospital_a, 1)
    async with running_orderer(consortium, tmp_path) as (node, _):
        service = AtomicBroadcastService(
            node.registrar, broadcast_window=8, deliver_settings=DeliverSettings()
        )
        admitted = [service.admit(e) for e in (before, update, after, unaffected)]
        settled = await asyncio.gather(*admitted[:3], return_exceptions=True)
        sequence = channel_config(node).sequence
    last = await admitted[3]  # written by the chain's stop (BatchTimeout is 20 s)

    assert settled[:2] == [1, 2]
    refused = settled[2]
    assert isinstance(refused, BroadcastRejected)
    assert refused.status == common_pb2.FORBIDDEN
    assert hospital_c in str(refused)
    assert (sequence, last) == (genesis.sequence + 1, 3)
    blocks = stored_blocks(tmp_path)
    assert [list(block.data.data) for block in blocks[1:4:2]] == [
        [before],
        [unaffected],
    ]
    assert after not in [envelope for block in blocks for envelope in block.data.data]


async def test_a_draining_orderer_refuses_new_envelopes_and_orders_admitted_ones(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    """Shutdown's first step: SERVICE_UNAVAILABLE for new envelopes, admitted ones kept."""
    hospital_a = HOSPITALS[0]
    admitted_first, refused_later = clients(consortium, hospital_a, 2)
    async with running_orderer(consortium, tmp_path) as (node, _):
        service = AtomicBroadcastService(
            node.registrar, broadcast_window=8, deliver_settings=DeliverSettings()
        )
        ordered = service.admit(admitted_first)
        service.drain()
        with pytest.raises(BroadcastRejected) as refused:
            service.admit(refused_later)
    assert refused.value.status == common_pb2.SERVICE_UNAVAILABLE
    assert "shutting down" in str(refused.value)
    assert await ordered == 1
    assert [list(block.data.data) for block in stored_blocks(tmp_path)[1:]] == [
        [admitted_first]
    ]
