"""Bad requests to the gateway get the right gRPC code, message and details.

Malformed, unsigned, wrongly signed and unauthorised requests are sent over raw gRPC
(the client would not build them); each case changes one thing of a good request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from common.msp import SigningIdentity
from common.protoutil import create_proposal, sign_proposal
from gateway.errors import details_from_trailers
from protos.common import common_pb2
from protos.gateway import gateway_pb2
from protos.orderer import ab_pb2
from protos.peer import events_pb2, proposal_pb2
from tests.integration.gateway.network import GatewayNetwork
from tests.support.peer import CHANNEL, HOSPITAL_A

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDERING = "HealthCommissionMSP"


@pytest_asyncio.fixture(loop_scope="module")
async def channel(network: GatewayNetwork) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(network.gateway_address) as opened:
        yield opened


def user(
    network: GatewayNetwork, mspid: str = HOSPITAL_A, name: str = "dr-lee"
) -> SigningIdentity:
    return network.material.user(mspid, name)


async def call(
    channel: grpc.aio.Channel, method: str, request: Any, response_type: Any
) -> Any:
    stub = channel.unary_unary(
        f"/gateway.Gateway/{method}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    return await stub(request, timeout=20)


async def failure(
    channel: grpc.aio.Channel, method: str, request: Any, response_type: Any
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(channel, method, request, response_type)
    return raised.value


def proposal(
    signer: SigningIdentity,
    args: list[bytes],
    *,
    channel: str = CHANNEL,
    chaincode: str = "asset",
    sign_with: SigningIdentity | None = None,
) -> proposal_pb2.SignedProposal:
    created = create_proposal(
        channel_id=channel,
        chaincode_name=chaincode,
        args=args,
        creator=signer.serialized,
    )
    return sign_proposal(created.proposal_bytes, (sign_with or signer).sign)


def evaluate_request(
    signed: proposal_pb2.SignedProposal,
) -> gateway_pb2.EvaluateRequest:
    return gateway_pb2.EvaluateRequest(channel_id=CHANNEL, proposed_transaction=signed)


async def test_an_empty_evaluate_is_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    error = await failure(
        channel, "Evaluate", gateway_pb2.EvaluateRequest(), gateway_pb2.EvaluateResponse
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "failed to unpack transaction proposal: "
        "the proposed transaction must contain a signed proposal"
    )


async def test_undecodable_proposal_bytes_are_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    signed = proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff\xff", signature=b"x")
    error = await failure(
        channel,
        "Endorse",
        gateway_pb2.EndorseRequest(proposed_transaction=signed),
        gateway_pb2.EndorseResponse,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_wrongly_signed_proposal_is_permission_denied_with_the_peer_named(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    forged = proposal(
        user(network),
        [b"ReadAsset", b"x"],
        sign_with=user(network, HOSPITAL_A, "dr-okafor"),
    )
    error = await failure(
        channel, "Evaluate", evaluate_request(forged), gateway_pb2.EvaluateResponse
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert (error.details() or "").startswith(
        "evaluate call to endorser returned error: "
    )
    [detail] = details_from_trailers(error.trailing_metadata())
    assert (detail.address, detail.mspid) == (network.address_a, HOSPITAL_A)


async def test_an_unsigned_proposal_is_refused(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name="asset",
        args=[b"ReadAsset", b"x"],
        creator=user(network).serialized,
    )
    unsigned = proposal_pb2.SignedProposal(proposal_bytes=created.proposal_bytes)
    error = await failure(
        channel,
        "Endorse",
        gateway_pb2.EndorseRequest(channel_id=CHANNEL, proposed_transaction=unsigned),
        gateway_pb2.EndorseResponse,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert details_from_trailers(error.trailing_metadata())


async def test_a_creator_who_may_not_write_the_channel_is_permission_denied(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    inspector = user(network, ORDERING, "inspector-ng")
    signed = proposal(inspector, [b"CreateAsset", b"i", b"b", b"1", b"o", b"2"])
    error = await failure(
        channel,
        "Endorse",
        gateway_pb2.EndorseRequest(channel_id=CHANNEL, proposed_transaction=signed),
        gateway_pb2.EndorseResponse,
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        "failed to endorse transaction, see attached details for more info"
    )


async def test_a_channel_the_gateway_does_not_serve_is_a_failed_precondition(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    signed = proposal(user(network), [b"ReadAsset", b"x"], channel="elsewhere")
    error = await failure(
        channel, "Evaluate", evaluate_request(signed), gateway_pb2.EvaluateResponse
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "elsewhere" in (error.details() or "")


async def test_an_unsigned_or_missing_transaction_is_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    missing = await failure(
        channel,
        "Submit",
        gateway_pb2.SubmitRequest(channel_id=CHANNEL),
        gateway_pb2.SubmitResponse,
    )
    assert missing.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert missing.details() == "a prepared transaction is required"
    unsigned = await failure(
        channel,
        "Submit",
        gateway_pb2.SubmitRequest(
            channel_id=CHANNEL,
            prepared_transaction=common_pb2.Envelope(payload=b"\x0a\x00"),
        ),
        gateway_pb2.SubmitResponse,
    )
    assert unsigned.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert unsigned.details() == "prepared transaction must be signed"


async def test_a_transaction_the_orderer_rejects_is_aborted_without_retry(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        endorsed = await contract.new_proposal(
            "CreateAsset", "forged-1", "b", "1", "o", "2"
        ).endorse()
    envelope = common_pb2.Envelope(
        payload=endorsed.message,
        signature=user(network, HOSPITAL_A, "dr-okafor").sign(endorsed.message),
    )
    error = await failure(
        channel,
        "Submit",
        gateway_pb2.SubmitRequest(
            transaction_id=endorsed.transaction_id,
            channel_id=CHANNEL,
            prepared_transaction=envelope,
        ),
        gateway_pb2.SubmitResponse,
    )
    assert error.code() is grpc.StatusCode.ABORTED
    assert error.details() == (
        "received unsuccessful response from orderer: status=FORBIDDEN, "
        "info=envelope signature: signature does not match message and key"
    )
    [detail] = details_from_trailers(error.trailing_metadata())
    assert detail.mspid == ORDERING


def commit_status_request(
    signer: SigningIdentity,
    *,
    channel: str = CHANNEL,
    tx_id: str = "0" * 64,
    identity: bytes | None = None,
    sign_with: SigningIdentity | None = None,
) -> gateway_pb2.SignedCommitStatusRequest:
    request = gateway_pb2.CommitStatusRequest(
        channel_id=channel,
        transaction_id=tx_id,
        identity=signer.serialized if identity is None else identity,
    ).SerializeToString()
    return gateway_pb2.SignedCommitStatusRequest(
        request=request, signature=(sign_with or signer).sign(request)
    )


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            "empty",
            grpc.StatusCode.INVALID_ARGUMENT,
            "a commit status request is required",
        ),
        ("no identity", grpc.StatusCode.INVALID_ARGUMENT, "no identity provided"),
        (
            "no tx id",
            grpc.StatusCode.INVALID_ARGUMENT,
            "transaction ID should not be empty",
        ),
        ("unknown channel", grpc.StatusCode.FAILED_PRECONDITION, "not served"),
        ("wrong signature", grpc.StatusCode.PERMISSION_DENIED, "access denied"),
        ("not a reader", grpc.StatusCode.PERMISSION_DENIED, "access denied"),
    ],
)
async def test_bad_commit_status_requests(
    network: GatewayNetwork,
    channel: grpc.aio.Channel,
    change: str,
    code: grpc.StatusCode,
    message: str,
) -> None:
    signer = user(network)
    requests = {
        "empty": gateway_pb2.SignedCommitStatusRequest(),
        "no identity": commit_status_request(signer, identity=b""),
        "no tx id": commit_status_request(signer, tx_id=""),
        "unknown channel": commit_status_request(signer, channel="elsewhere"),
        "wrong signature": commit_status_request(
            signer, sign_with=user(network, HOSPITAL_A, "dr-okafor")
        ),
        "not a reader": commit_status_request(user(network, ORDERING, "inspector-ng")),
    }
    error = await failure(
        channel, "CommitStatus", requests[change], gateway_pb2.CommitStatusResponse
    )
    assert error.code() is code
    assert message in (error.details() or "")


async def events_failure(
    channel: grpc.aio.Channel, request: gateway_pb2.SignedChaincodeEventsRequest
) -> grpc.aio.AioRpcError:
    stream = channel.unary_stream(
        "/gateway.Gateway/ChaincodeEvents",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=gateway_pb2.ChaincodeEventsResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stream(request, timeout=20):
            pass
    return raised.value


def events_request(
    signer: SigningIdentity,
    *,
    channel: str = CHANNEL,
    start: ab_pb2.SeekPosition | None = None,
    signed: bool = True,
) -> gateway_pb2.SignedChaincodeEventsRequest:
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel,
        chaincode_id="asset",
        identity=signer.serialized,
        start_position=start
        or ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()),
    ).SerializeToString()
    return gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=signer.sign(request) if signed else b""
    )


async def test_bad_chaincode_events_requests(
    network: GatewayNetwork, channel: grpc.aio.Channel
) -> None:
    signer = user(network)
    unsigned = await events_failure(channel, events_request(signer, signed=False))
    assert unsigned.code() is grpc.StatusCode.PERMISSION_DENIED
    unknown = await events_failure(channel, events_request(signer, channel="elsewhere"))
    assert unknown.code() is grpc.StatusCode.NOT_FOUND
    oldest = await events_failure(
        channel,
        events_request(signer, start=ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest())),
    )
    assert oldest.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert oldest.details() == "invalid start position type: oldest"


async def test_a_malformed_deliver_request_gets_a_bad_request_status(
    channel: grpc.aio.Channel,
) -> None:
    method = channel.stream_stream(  # type: ignore[call-arg]
        "/protos.Deliver/Deliver",
        response_deserializer=events_pb2.DeliverResponse.FromString,
    )
    call: Any = method(timeout=20)  # type: ignore[call-arg]
    await call.write(b"\xff\x01")
    response = await call.read()
    assert response.status == common_pb2.BAD_REQUEST
    call.cancel()
