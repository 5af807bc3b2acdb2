"""The etcd backend's block puller against a real Deliver service (no etcd needed).

Method: an in-process solo orderer on 127.0.0.1:0 orders a few envelopes (one per
block); `DeliverPuller`, signing its seeks as orderer0, pulls a range from it after
an address where nothing listens. Blocks arrive in order and verified; a block whose
signature is not an orderer's fails `verify_block_signatures`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig
from common.errors import PolicyError
from common.msp import load_signing_identity
from common.protoutil import sign_block
from network.etcd_local import free_ports
from network.orderer_material import (
    HOSPITAL,
    ORDERING,
    OrdererMaterial,
    build_orderer_material,
    new_envelope,
    small_spec,
)
from orderer.consensus.etcd_puller import DeliverPuller, verify_block_signatures
from protos.common import common_pb2
from tests.support.orderer import broadcast, open_channel, running_orderer


@pytest.fixture(scope="module")
def one_per_block(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_orderer_material(
        tmp_path_factory.mktemp("puller"), small_spec(max_message_count=1)
    )


async def test_blocks_are_pulled_in_order_skipping_an_unreachable_orderer(
    one_per_block: OrdererMaterial, tmp_path: Path
) -> None:
    """Five envelopes make blocks 1-5; blocks 2-4 come from the second address."""
    material = one_per_block
    config = ChannelConfig.from_block(material.genesis)
    signer = load_signing_identity(material.orderer.msp_dir, mspid=ORDERING)
    client = material.signing_identity(HOSPITAL, "dr-lee")
    (unused_port,) = free_ports(1)
    async with (
        running_orderer(material, tmp_path) as (_, listening),
        open_channel(listening["grpc"]) as channel,
    ):
        address = listening["grpc"]
        envelopes = [new_envelope(client) for _ in range(5)]
        statuses = {r.status for r in await broadcast(channel, envelopes)}
        assert statuses == {common_pb2.SUCCESS}

        async def addresses() -> list[str]:
            return [f"127.0.0.1:{unused_port}", address]

        puller = DeliverPuller(
            signer=signer, tls=None, addresses=addresses, config=lambda: config
        )
        pulled = [block async for block in puller(material.channel, 2, 5)]

    assert [block.header.number for block in pulled] == [2, 3, 4]
    assert [list(block.data.data) for block in pulled] == [[e] for e in envelopes[1:4]]


async def test_a_block_signed_by_a_client_is_refused(
    one_per_block: OrdererMaterial, tmp_path: Path
) -> None:
    """BlockValidation wants an orderer organisation's signature."""
    material = one_per_block
    config = ChannelConfig.from_block(material.genesis)
    client = material.signing_identity(HOSPITAL, "dr-lee")
    orderer = load_signing_identity(material.orderer.msp_dir, mspid=ORDERING)
    unsigned = common_pb2.Block()
    unsigned.CopyFrom(material.genesis)

    def signed_by(identity: object) -> common_pb2.Block:
        return sign_block(
            unsigned,
            signer=identity.sign,  # type: ignore[attr-defined]
            creator=identity.serialized,  # type: ignore[attr-defined]
            last_config_index=0,
        )

    verify_block_signatures(signed_by(orderer), config)
    with pytest.raises(PolicyError):
        verify_block_signatures(signed_by(client), config)
