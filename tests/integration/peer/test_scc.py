"""qscc and cscc through ProcessProposal: answers, Fabric's error texts and ACLs.

Method: one peer (Hospital A) joined to medical-records with the asset chaincode
defined (block 1) and one asset transaction committed (block 2); queries are signed
proposals for `qscc`/`cscc`. Readers of the channel may query; the health commission's
auditor (an orderer organisation, not a channel member) may not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio

from common.channelconfig import ChannelConfig
from common.protoutil import ParsedProposal, block_header_hash
from protos.common import common_pb2, configtx_pb2, ledger_pb2
from protos.peer import proposal_response_pb2, transaction_pb2
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    StandalonePeer,
    build_peer_material,
    open_channel,
    process_proposal,
    signed_proposal,
    standalone_peer,
    transaction,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Chain:
    peer: StandalonePeer
    endorser: grpc.aio.Channel
    created: ParsedProposal


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("scc-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Chain]:
    async with (
        standalone_peer(material, tmp_path_factory.mktemp("scc")) as peer,
        open_channel(peer.address) as endorser,
    ):
        client = material.user(HOSPITAL_A, "dr-lee")
        signed, proposal = signed_proposal(
            client, ["CreateAsset", "q1", "red", "1", "Ann", "5"]
        )
        response = await process_proposal(endorser, signed)
        assert response.response.status == 200, response.response.message
        await peer.commit([transaction(client, proposal, [response])])
        yield Chain(peer, endorser, proposal)


async def query(
    chain: Chain, *args: str | bytes, chaincode: str = "qscc", user: str = "dr-lee"
) -> proposal_response_pb2.ProposalResponse:
    mspid = "HealthCommissionMSP" if user == "inspector-ng" else HOSPITAL_A
    signer = chain.peer.material.user(mspid, user)
    signed, _ = signed_proposal(signer, list(args), chaincode=chaincode)
    return await process_proposal(chain.endorser, signed)


async def test_get_chain_info(chain: Chain) -> None:
    response = await query(chain, "GetChainInfo", CHANNEL)
    assert response.response.status == 200, response.response.message
    info = ledger_pb2.BlockchainInfo.FromString(response.response.payload)
    store = chain.peer.channel.ledger.block_store
    assert info.height == 3
    assert info.currentBlockHash == block_header_hash(store.block_by_number(2).header)
    assert response.endorsement.signature, "system chaincode answers are endorsed"


async def test_blocks_by_number_hash_and_tx_id_are_the_stored_block(
    chain: Chain,
) -> None:
    store = chain.peer.channel.ledger.block_store
    stored = store.block_by_number(2)
    by_number = await query(chain, "GetBlockByNumber", CHANNEL, "2")
    by_hash = await query(
        chain, "GetBlockByHash", CHANNEL, block_header_hash(stored.header)
    )
    by_tx = await query(chain, "GetBlockByTxID", CHANNEL, chain.created.tx_id)
    for response in (by_number, by_hash, by_tx):
        assert response.response.status == 200, response.response.message
        assert common_pb2.Block.FromString(response.response.payload) == stored
    assert by_number.response.payload == store.block_bytes(2)


async def test_transaction_by_id_carries_the_validation_code(chain: Chain) -> None:
    response = await query(chain, "GetTransactionByID", CHANNEL, chain.created.tx_id)
    assert response.response.status == 200, response.response.message
    processed = transaction_pb2.ProcessedTransaction.FromString(
        response.response.payload
    )
    assert processed.validationCode == transaction_pb2.ENDORSEMENT_POLICY_FAILURE
    assert processed.transactionEnvelope.payload


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("GetChainInfo",), "Incorrect number of arguments, 1"),
        (("GetBlockByNumber", CHANNEL), "missing 3rd argument for GetBlockByNumber"),
        (("GetChainInfo", "no-channel"), "Invalid chain ID, no-channel"),
        (("GetBlockByNumber", CHANNEL, "x"), "Failed to parse block number"),
        (("GetBlockByNumber", CHANNEL, "99"), "Failed to get block number 99"),
        (
            ("GetTransactionByID", CHANNEL, "nope"),
            "Failed to get transaction with id nope",
        ),
        (("Explode", CHANNEL, "x"), "Requested function Explode not found."),
    ],
)
async def test_qscc_errors_are_500_responses(
    chain: Chain, args: tuple[str, ...], message: str
) -> None:
    response = await query(chain, *args)
    assert response.response.status == 500
    assert message in response.response.message


async def test_a_non_member_may_not_query(chain: Chain) -> None:
    response = await query(chain, "GetChainInfo", CHANNEL, user="inspector-ng")
    assert response.response.status == 500
    assert response.response.message.startswith(
        f"access denied for [GetChainInfo][{CHANNEL}]"
    )


async def test_cscc_config_block_and_config(chain: Chain) -> None:
    block = await query(chain, "GetConfigBlock", CHANNEL, chaincode="cscc")
    assert block.response.status == 200, block.response.message
    config = ChannelConfig.from_block(block.response.payload)
    assert config.channel_id == CHANNEL
    assert set(config.application_orgs) >= {HOSPITAL_A, HOSPITAL_B}
    raw = await query(chain, "GetChannelConfig", CHANNEL, chaincode="cscc")
    assert raw.response.status == 200, raw.response.message
    assert configtx_pb2.Config.FromString(raw.response.payload).sequence == 0
    denied = await query(
        chain, "GetConfigBlock", CHANNEL, chaincode="cscc", user="inspector-ng"
    )
    assert denied.response.status == 500
    assert "access denied for [GetConfigBlock]" in denied.response.message
