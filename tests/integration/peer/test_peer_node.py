"""Two hospitals' peers and a solo orderer, in process over real gRPC: the whole flow.

Method: an orderer and peer0 of Hospitals A and B start on 127.0.0.1:0 from the
example consortium (solo variant); both peers join medical-records through the signed
admin API and pull from the orderer. A `_lifecycle` definition of the asset chaincode,
endorsed by both peers' identities, is ordered; the chaincode runs launched by peer A
and as a service dialled by peer B. A proposal endorsed by both peers becomes a
transaction that both peers commit as VALID; state, qscc and Deliver agree on both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.protoutil import SeekPosition, parse_proposal_response
from peer.admin import AdminTarget, join_channel, list_channels
from peer.node import PeerNode
from protos.common import common_pb2, ledger_pb2
from protos.peer import transaction_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    ASSET_PACKAGE,
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    asset_definition,
    asset_server,
    build_peer_material,
    definition_envelope,
    launched_asset,
    open_channel,
    peer_deliver,
    process_proposal,
    running_peer,
    seek,
    signed_proposal,
    transaction,
    wait_for_height,
    write_peer_yaml,
)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("peer-material"))


@dataclass
class Network:
    material: PeerMaterial
    orderer: str
    peer_a: PeerNode
    peer_b: PeerNode
    address_a: str
    address_b: str


@pytest.fixture
async def network(material: PeerMaterial, tmp_path: Path) -> AsyncIterator[Network]:
    """Orderer + peer A (launched chaincode) + peer B (chaincode as a service), joined."""
    async with (
        running_orderer(material.orderer, tmp_path / "orderer") as (_, orderer),
        asset_server() as chaincode_address,
    ):
        grpc_orderer = orderer["grpc"]
        config_a = write_peer_yaml(
            tmp_path / "a" / "peer.yaml",
            material,
            HOSPITAL_A,
            storage=tmp_path / "a" / "data",
            orderer_address=grpc_orderer,
            chaincodes={"asset": launched_asset()},
        )
        config_b = write_peer_yaml(
            tmp_path / "b" / "peer.yaml",
            material,
            HOSPITAL_B,
            storage=tmp_path / "b" / "data",
            orderer_address=grpc_orderer,
            chaincodes={
                "asset": {"package_id": ASSET_PACKAGE, "address": chaincode_address}
            },
        )
        async with (
            running_peer(config_a) as (peer_a, addresses_a),
            running_peer(config_b) as (peer_b, addresses_b),
        ):
            for mspid, addresses in (
                (HOSPITAL_A, addresses_a),
                (HOSPITAL_B, addresses_b),
            ):
                response = await join_channel(
                    AdminTarget(address=addresses["grpc"]),
                    signer=material.user(mspid, "Admin"),
                    genesis_block=material.genesis.SerializeToString(),
                )
                assert (response.channel_id, response.height) == (CHANNEL, 1)
            yield Network(
                material,
                grpc_orderer,
                peer_a,
                peer_b,
                addresses_a["grpc"],
                addresses_b["grpc"],
            )


async def order(network: Network, envelope: bytes) -> None:
    async with open_orderer_channel(network.orderer) as channel:
        [response] = await broadcast(channel, [envelope])
    assert response.status == common_pb2.SUCCESS, response.info


async def define_asset(network: Network) -> None:
    envelope = definition_envelope(
        network.material, asset_definition(), [HOSPITAL_A, HOSPITAL_B]
    )
    await order(network, envelope)
    for node in (network.peer_a, network.peer_b):
        await wait_for_height(node, 2)
        block = node.channels.require(CHANNEL).ledger.block_store.block_by_number(1)
        assert block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes(
            [transaction_pb2.VALID]
        )


async def test_a_transaction_endorsed_by_both_peers_commits_valid_on_both(
    network: Network,
) -> None:
    """Define, endorse on both, order, commit on both; then query both the same way."""
    await define_asset(network)
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, proposal = signed_proposal(
        client, ["CreateAsset", "asset-17", "blue", "5", "Tomoko", "300"]
    )
    async with (
        open_channel(network.address_a) as a,
        open_channel(network.address_b) as b,
    ):
        responses = [
            await process_proposal(a, signed),
            await process_proposal(b, signed),
        ]
        for response in responses:
            assert response.response.status == 200, response.response.message
            assert response.endorsement.signature
        assert responses[0].payload == responses[1].payload
        action = parse_proposal_response(responses[0]).payload
        assert action is not None
        assert action.chaincode_action.chaincode_id is not None
        assert action.chaincode_action.chaincode_id.version == "1.0"
        assert responses[0].interest.chaincodes[0].name == "asset"

        await order(network, transaction(client, proposal, responses))
        for node in (network.peer_a, network.peer_b):
            await wait_for_height(node, 3)
            store = node.channels.require(CHANNEL).ledger.block_store
            assert store.tx_validation_code(proposal.tx_id) == transaction_pb2.VALID

        read, _ = signed_proposal(client, ["ReadAsset", "asset-17"])
        for channel in (a, b):
            answer = await process_proposal(channel, read)
            assert answer.response.status == 200, answer.response.message
            assert json.loads(answer.response.payload)["Owner"] == "Tomoko"

        infos = []
        for channel in (a, b):
            query, _ = signed_proposal(
                client, ["GetChainInfo", CHANNEL], chaincode="qscc"
            )
            answer = await process_proposal(channel, query)
            assert answer.response.status == 200, answer.response.message
            infos.append(ledger_pb2.BlockchainInfo.FromString(answer.response.payload))
        assert infos[0] == infos[1]
        assert infos[0].height == 3

        request = seek(
            client, start=SeekPosition.specified(2), stop=SeekPosition.specified(2)
        )
        blocks = await peer_deliver(a, "Deliver", [request])
        assert [r.WhichOneof("Type") for r in blocks] == ["block", "status"]
        assert blocks[0].block.metadata.metadata[
            common_pb2.TRANSACTIONS_FILTER
        ] == bytes([transaction_pb2.VALID])
        filtered = await peer_deliver(b, "DeliverFiltered", [request])
        [tx] = filtered[0].filtered_block.filtered_transactions
        assert (tx.txid, tx.tx_validation_code) == (
            proposal.tx_id,
            transaction_pb2.VALID,
        )
        assert filtered[-1].status == common_pb2.SUCCESS


async def test_admin_lists_the_joined_channel_and_refuses_a_second_join(
    network: Network,
) -> None:
    admin = network.material.user(HOSPITAL_A, "Admin")
    target = AdminTarget(address=network.address_a)
    listed = await list_channels(target, signer=admin)
    assert [c.channel_id for c in listed.channels] == [CHANNEL]
    with pytest.raises(Exception, match="already exists") as raised:
        await join_channel(
            target,
            signer=admin,
            genesis_block=network.material.genesis.SerializeToString(),
        )
    assert "ALREADY_EXISTS" in str(raised.value)
