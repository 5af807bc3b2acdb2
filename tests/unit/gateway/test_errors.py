"""Errors as gRPC statuses: codes, the ErrorDetail trailer, endorser outcomes, diffs."""

from __future__ import annotations

import grpc
import pytest

from common.errors import (
    ChannelConfigError,
    ConfigError,
    IdentityError,
    InvalidSignature,
    MedledgerError,
    PolicyNotSatisfied,
    WireError,
)
from gateway.connections import DialSettings, PeerClient
from gateway.diff import describe_payload_difference
from gateway.endorsers import classify
from gateway.errors import (
    ErrorDetail,
    StatusError,
    details_from_trailers,
    status_error_for,
    status_trailer,
)
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import proposal_pb2, proposal_response_pb2

PEER = PeerClient("peer0:7051", "HospitalAMSP", DialSettings(root_certs=None))


def test_details_travel_in_the_status_trailer_and_back() -> None:
    details = (
        ErrorDetail("peer0:7051", "HospitalAMSP", "chaincode response 500, boom"),
        ErrorDetail("peer1:7051", "HospitalBMSP", "rpc error: code = Unavailable"),
    )
    error = StatusError(grpc.StatusCode.ABORTED, "failed", details)
    trailer = status_trailer(error)
    assert trailer[0][0] == "grpc-status-details-bin"
    assert details_from_trailers(list(trailer)) == details
    assert details_from_trailers([("other", b"x")]) == ()
    assert details_from_trailers([("grpc-status-details-bin", b"\xff")]) == ()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (WireError("bad bytes"), grpc.StatusCode.INVALID_ARGUMENT),
        (PolicyNotSatisfied("no"), grpc.StatusCode.PERMISSION_DENIED),
        (IdentityError("who"), grpc.StatusCode.PERMISSION_DENIED),
        (InvalidSignature("sig"), grpc.StatusCode.PERMISSION_DENIED),
        (TimeoutError(), grpc.StatusCode.DEADLINE_EXCEEDED),
        (ChannelConfigError("x", path="/Channel"), grpc.StatusCode.FAILED_PRECONDITION),
        (ConfigError("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (MedledgerError("x"), grpc.StatusCode.UNAVAILABLE),
        (RuntimeError("bug"), grpc.StatusCode.UNKNOWN),
    ],
)
def test_every_exception_maps_to_one_code(
    error: Exception, code: grpc.StatusCode
) -> None:
    assert status_error_for(error).code is code


def test_a_status_error_is_answered_as_it_is() -> None:
    error = StatusError(grpc.StatusCode.NOT_FOUND, "no channel")
    assert status_error_for(error) is error


def response(
    status: int, *, payload: bytes = b"", message: str = ""
) -> proposal_response_pb2.ProposalResponse:
    return proposal_response_pb2.ProposalResponse(
        response=proposal_response_pb2.Response(status=status, message=message),
        payload=payload,
    )


def test_endorser_outcomes_are_sorted_as_fabric_sorts_them() -> None:
    ok = classify(PEER, response(200, payload=b"p"))
    assert (ok.ok, ok.retry) == (True, False)
    chaincode = classify(PEER, response(404, payload=b"p", message="not found"))
    assert (chaincode.code, chaincode.retry, chaincode.message) == (
        grpc.StatusCode.UNKNOWN,
        False,
        "chaincode response 404, not found",
    )
    refused = classify(PEER, response(500, message="chaincode asset not installed"))
    assert (refused.code, refused.retry, refused.peer_down) == (
        grpc.StatusCode.ABORTED,
        True,
        False,
    )
    assert refused.detail() == ErrorDetail(
        "peer0:7051", "HospitalAMSP", "chaincode asset not installed"
    )
    failed_chaincode = classify(PEER, response(500, payload=b"p", message="panic"))
    assert failed_chaincode.code is grpc.StatusCode.UNKNOWN


class _RpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, "")


def test_a_failed_call_is_a_peer_down_but_a_refusal_is_the_clients_fault() -> None:
    down = classify(
        PEER, None, _RpcError(grpc.StatusCode.UNAVAILABLE, "connect failed")
    )
    assert (down.code, down.retry, down.peer_down) == (
        grpc.StatusCode.UNAVAILABLE,
        True,
        True,
    )
    assert down.message == "rpc error: code = Unavailable desc = connect failed"
    refused = classify(PEER, None, _RpcError(grpc.StatusCode.PERMISSION_DENIED, "no"))
    assert (refused.code, refused.retry, refused.peer_down) == (
        grpc.StatusCode.PERMISSION_DENIED,
        False,
        False,
    )


def payload(
    *,
    status: int = 200,
    reads: dict[str, int] | None = None,
    writes: dict[str, bytes] | None = None,
    event: bytes = b"",
) -> bytes:
    kv = kv_rwset_pb2.KVRWSet(
        reads=[
            kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=v))
            for k, v in (reads or {}).items()
        ],
        writes=[
            kv_rwset_pb2.KVWrite(key=k, value=v) for k, v in (writes or {}).items()
        ],
    )
    results = rwset_pb2.TxReadWriteSet(
        ns_rwset=[
            rwset_pb2.NsReadWriteSet(namespace="asset", rwset=kv.SerializeToString())
        ]
    )
    action = proposal_pb2.ChaincodeAction(
        results=results.SerializeToString(),
        events=event,
        response=proposal_response_pb2.Response(status=status),
    )
    return proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=b"h", extension=action.SerializeToString()
    ).SerializeToString()


def test_payload_differences_are_named() -> None:
    base = payload(reads={"a1": 3}, writes={"a1": b"x"})
    assert describe_payload_difference(
        base, payload(reads={"a1": 4}, writes={"a1": b"x"})
    ) == ("read of 'a1' in asset differs")
    assert describe_payload_difference(
        base, payload(reads={"a1": 3}, writes={"a1": b"y"})
    ) == ("write of 'a1' in asset differs")
    assert (
        describe_payload_difference(
            base, payload(status=201, reads={"a1": 3}, writes={"a1": b"x"}, event=b"e")
        )
        == "chaincode response status differs (200 vs 201); chaincode event differs"
    )
    assert describe_payload_difference(base, b"\xff") == (
        "a proposal response payload does not decode"
    )
