"""One ProcessProposal call to one peer, and how the gateway reads its outcome.

Fabric's gateway sorts every endorser outcome into four facts, and so do we:

    outcome                                     code                retry  peer down
    the call failed (unreachable, timed out,    UNAVAILABLE         yes    yes
      internal error)
    the peer refused the proposal with a gRPC   the peer's code     no     no
      status (malformed, bad signature, not
      authorised, duplicate tx id)
    status 500 without payload (peer refused,   ABORTED             yes    no
      chaincode could not run)
    other status < 200 or ≥ 400 (the chaincode  UNKNOWN             no     no
      answered with an error)
    anything else                               OK

A refusal is the client's fault and would be the same on every peer, so it is final
and its code (INVALID_ARGUMENT, PERMISSION_DENIED, ALREADY_EXISTS, ...) reaches the
client. The message of a chaincode error reads `chaincode response <status>,
<message>`; each failure becomes an `ErrorDetail` naming the peer.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from gateway.connections import PeerClient
from gateway.errors import ErrorDetail, describe_rpc_error
from gateway.registry import Registry
from protos.peer import proposal_pb2, proposal_response_pb2

__all__ = ["REFUSALS", "Outcome", "call_endorser", "classify"]

_PEER_FAILURE_STATUS = 500

REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""gRPC codes with which a peer refuses a proposal (the request is at fault)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one peer answered; `response` is None when the call itself failed."""

    peer: PeerClient
    response: proposal_response_pb2.ProposalResponse | None
    code: grpc.StatusCode
    message: str
    retry: bool
    peer_down: bool

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    def detail(self) -> ErrorDetail:
        return ErrorDetail(self.peer.address, self.peer.mspid, self.message)


def classify(
    peer: PeerClient,
    response: proposal_response_pb2.ProposalResponse | None,
    error: grpc.aio.AioRpcError | None = None,
) -> Outcome:
    """Sort a ProcessProposal result (see the module docstring)."""
    if response is None:
        message = describe_rpc_error(error) if error is not None else "no response"
        code = error.code() if error is not None else None
        if code in REFUSALS:
            assert code is not None
            return Outcome(peer, None, code, message, False, False)
        return Outcome(peer, None, grpc.StatusCode.UNAVAILABLE, message, True, True)
    status = response.response.status
    if 200 <= status < 400:
        return Outcome(peer, response, grpc.StatusCode.OK, "", False, False)
    if status == _PEER_FAILURE_STATUS and not response.payload:
        message = response.response.message or f"endorser returned status {status}"
        return Outcome(peer, response, grpc.StatusCode.ABORTED, message, True, False)
    message = f"chaincode response {status}, {response.response.message}"
    return Outcome(peer, response, grpc.StatusCode.UNKNOWN, message, False, False)


async def call_endorser(
    peer: PeerClient,
    signed: proposal_pb2.SignedProposal,
    *,
    deadline_s: float,
    registry: Registry,
) -> Outcome:
    """Send the proposal to `peer` and classify the result; marks peers that are down."""
    try:
        response = await peer.process_proposal(signed, deadline_s=deadline_s)
    except grpc.aio.AioRpcError as error:
        outcome = classify(peer, None, error)
        if outcome.peer_down:
            registry.mark_failed(peer)
        return outcome
    registry.mark_reachable(peer)
    return classify(peer, response)
