"""ProcessProposal over real gRPC: Fabric's answers for each way a proposal can fail.

Method: one peer (Hospital A) joined to medical-records, the asset chaincode defined
through a committed `_lifecycle` transaction and launched by the peer; the test
commits blocks itself (signed as orderer0). Each case changes one thing about a valid
proposal and checks the gRPC status or the ProposalResponse, as Fabric 2.5 answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from common.protoutil import (
    create_proposal,
    parse_proposal_response,
    sign_proposal,
)
from protos.common import common_pb2
from protos.peer import proposal_pb2, query_pb2, transaction_pb2
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


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("endorser-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def peer(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StandalonePeer]:
    async with standalone_peer(material, tmp_path_factory.mktemp("endorser")) as peer:
        yield peer


@pytest_asyncio.fixture(loop_scope="module")
async def endorser(peer: StandalonePeer) -> AsyncIterator[grpc.aio.Channel]:
    async with open_channel(peer.address) as channel:
        yield channel


async def expect_status(
    endorser: grpc.aio.Channel, request: proposal_pb2.SignedProposal | bytes
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await process_proposal(endorser, request)
    return raised.value.code(), raised.value.details() or ""


async def test_a_valid_proposal_is_endorsed_with_the_definition_version(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["CreateAsset", "e1", "red", "1", "Ann", "5"])
    response = await process_proposal(endorser, signed)
    assert response.response.status == 200, response.response.message
    assert response.version == 1
    parsed = parse_proposal_response(response)
    assert parsed.payload is not None
    assert parsed.payload.chaincode_action.chaincode_id is not None
    assert parsed.payload.chaincode_action.chaincode_id.name == "asset"
    assert parsed.payload.chaincode_action.chaincode_id.version == "1.0"
    assert parsed.endorsement is not None
    identity = peer.material.peer_identity(HOSPITAL_A)
    assert parsed.endorsement.endorser == identity.serialized
    identity.identity.verify(
        parsed.payload.raw + parsed.endorsement.endorser, parsed.endorsement.signature
    )


async def test_an_unknown_channel_is_a_500_response_not_an_error(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["ReadAsset", "e1"], channel="no-such-channel")
    response = await process_proposal(endorser, signed)
    assert response.response.status == 500
    assert response.response.message == "channel 'no-such-channel' not found"
    assert not response.HasField("endorsement")


def proposal_with(
    peer: StandalonePeer,
    *,
    nonce: bytes | None = None,
    tx_id: str | None = None,
    sign: bool = True,
) -> proposal_pb2.SignedProposal:
    """A ReadAsset proposal by dr-lee with one field changed."""
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name="asset",
        args=[b"ReadAsset", b"e1"],
        creator=client.serialized,
        nonce=nonce,
    )
    proposal = proposal_pb2.Proposal.FromString(created.proposal_bytes)
    if tx_id is not None:
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        channel_header.tx_id = tx_id
        header.channel_header = channel_header.SerializeToString()
        proposal.header = header.SerializeToString()
    data = proposal.SerializeToString()
    if not sign:
        return proposal_pb2.SignedProposal(proposal_bytes=data)
    return sign_proposal(data, client.sign)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"nonce": b""}, grpc.StatusCode.INVALID_ARGUMENT, "nonce is empty"),
        (
            {"tx_id": "ab" * 32},
            grpc.StatusCode.INVALID_ARGUMENT,
            "incorrectly computed txid",
        ),
        ({"sign": False}, grpc.StatusCode.INVALID_ARGUMENT, "empty signature bytes"),
    ],
)
async def test_one_bad_field_gets_a_grpc_error(
    peer: StandalonePeer,
    endorser: grpc.aio.Channel,
    change: dict[str, object],
    code: grpc.StatusCode,
    message: str,
) -> None:
    request = proposal_with(peer, **change)  # type: ignore[arg-type]
    got_code, details = await expect_status(endorser, request)
    assert got_code == code
    assert message in details


async def test_a_signature_by_someone_else_is_access_denied(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    good = proposal_with(peer)
    other = peer.material.user(HOSPITAL_B, "dr-garcia")
    forged = sign_proposal(good.proposal_bytes, other.sign)
    code, details = await expect_status(endorser, forged)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == f"access denied: channel [{CHANNEL}] creator org [{HOSPITAL_A}]"


async def test_a_creator_that_is_not_a_writer_is_denied_by_the_acl(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    """Writers are admins and clients; a peer identity may not propose."""
    node_identity = peer.material.peer_identity(HOSPITAL_B)
    signed, _ = signed_proposal(node_identity, ["ReadAsset", "e1"])
    code, details = await expect_status(endorser, signed)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "peer/Propose" in details


async def test_a_committed_tx_id_is_a_duplicate(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, proposal = signed_proposal(
        client, ["CreateAsset", "dup", "red", "1", "Ann", "5"]
    )
    first = await process_proposal(endorser, signed)
    assert first.response.status == 200, first.response.message
    codes = await peer.commit([transaction(client, proposal, [first])])
    assert codes == (transaction_pb2.ENDORSEMENT_POLICY_FAILURE,)  # one org of 2
    code, details = await expect_status(endorser, signed)
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert f"duplicate transaction found [{proposal.tx_id}]" in details


async def test_an_undefined_chaincode_is_a_500_response(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["Anything"], chaincode="records")
    response = await process_proposal(endorser, signed)
    assert response.response.status == 500
    assert response.response.message.startswith(
        f"make sure the chaincode records has been successfully defined on channel "
        f"{CHANNEL}"
    )
    assert not response.payload


async def test_a_4xx_chaincode_status_is_a_response_only(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["ReadAsset", "missing"])
    response = await process_proposal(endorser, signed)
    assert response.response.status == 404
    assert "does not exist" in response.response.message
    assert not response.payload
    assert not response.HasField("endorsement")


async def test_a_5xx_chaincode_status_carries_the_payload_but_no_endorsement(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["NoSuchFunction"])
    response = await process_proposal(endorser, signed)
    assert response.response.status == 500
    assert response.payload
    assert not response.HasField("endorsement")


async def test_cscc_get_channels_needs_no_channel(
    peer: StandalonePeer, endorser: grpc.aio.Channel
) -> None:
    """A channel-less proposal is judged by the peer's MSP and answered unendorsed."""
    admin = peer.material.user(HOSPITAL_A, "Admin")
    signed, _ = signed_proposal(admin, ["GetChannels"], chaincode="cscc", channel="")
    response = await process_proposal(endorser, signed)
    assert response.response.status == 200, response.response.message
    channels = query_pb2.ChannelQueryResponse.FromString(response.response.payload)
    assert [c.channel_id for c in channels.channels] == [CHANNEL]
    assert not response.HasField("endorsement")
    other = peer.material.user(HOSPITAL_B, "Admin")
    signed, _ = signed_proposal(other, ["GetChannels"], chaincode="cscc", channel="")
    code, _details = await expect_status(endorser, signed)
    assert code == grpc.StatusCode.PERMISSION_DENIED
