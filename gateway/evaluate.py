"""Evaluate: run a proposal on one peer and return the chaincode's result.

The peer is one of the gateway's own organisation's peers with the highest ledger
height, else another organisation's (`target_organizations` narrows the choice; with
transient data and no targets only the gateway's organisation is used, so private
input never leaves it). When a peer is down or refuses the proposal the next one is
tried; a chaincode error is final and comes back as a gRPC error — UNKNOWN with
`evaluate call to endorser returned error: chaincode response <status>, <message>` —
never as a status in the response body. The result is the chaincode response from the
signed ProposalResponsePayload.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.message import DecodeError

from common.errors import WireError
from common.protoutil import ParsedProposal, parse_signed_proposal
from gateway.connections import PeerClient
from gateway.context import GatewayContext, deadline
from gateway.endorsers import Outcome, call_endorser
from gateway.errors import ErrorDetail, StatusError
from protos.gateway import gateway_pb2
from protos.peer import proposal_pb2, proposal_response_pb2

__all__ = ["evaluate", "unpack_proposal"]

_LOG = logging.getLogger(__name__)


def unpack_proposal(
    signed: proposal_pb2.SignedProposal, *, prefix: str = ""
) -> ParsedProposal:
    """The proposal's layers, or INVALID_ARGUMENT naming the one that is wrong."""
    if not signed.proposal_bytes:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{prefix}the proposed transaction must contain a signed proposal",
        )
    try:
        parsed = parse_signed_proposal(signed)
    except WireError as error:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{prefix}{error}"
        ) from None
    if not parsed.channel_id:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{prefix}no channel id provided"
        )
    if not parsed.chaincode_id.name:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{prefix}no chaincode name is provided, channel id [{parsed.channel_id}]",
        )
    return parsed


async def evaluate(
    request: gateway_pb2.EvaluateRequest,
    ctx: GatewayContext,
    *,
    time_remaining: float | None,
) -> gateway_pb2.EvaluateResponse:
    """Answer one Evaluate call (see the module docstring).

    Raises:
        StatusError: the outcome to answer when no result could be obtained.
    """
    proposal = unpack_proposal(
        request.proposed_transaction, prefix="failed to unpack transaction proposal: "
    )
    channel = proposal.channel_id
    view = ctx.view(channel, missing=grpc.StatusCode.FAILED_PRECONDITION)
    targets: list[str] | None = list(request.target_organizations) or None
    protected = bool(proposal.transient_map) and targets is None
    if protected:
        targets = [ctx.local_mspid]
    await ctx.registry.recheck(channel)
    peers = ctx.registry.evaluation_order(channel, targets)
    if not peers:
        message = (
            f"no peers available to evaluate chaincode {proposal.chaincode_id.name} "
            f"in channel {channel}"
        )
        if protected:
            message = (
                "no endorsers found in the gateway's organization; retry specifying "
                f"target organization(s) to protect transient data: {message}"
            )
        raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, message)
    async with deadline(time_remaining, "evaluate timeout expired"):
        return await _evaluate_on(
            peers, request.proposed_transaction, ctx, proposal, view.height
        )


async def _evaluate_on(
    peers: list[PeerClient],
    signed: proposal_pb2.SignedProposal,
    ctx: GatewayContext,
    proposal: ParsedProposal,
    height: int,
) -> gateway_pb2.EvaluateResponse:
    details: list[ErrorDetail] = []
    last: Outcome | None = None
    for peer in peers:
        await ctx.registry.wait_for_height(
            proposal.channel_id, peer, height, limit_s=ctx.timeouts.catch_up_s
        )
        last = await call_endorser(
            peer, signed, deadline_s=ctx.timeouts.endorse_s, registry=ctx.registry
        )
        if last.ok and last.response is not None:
            return gateway_pb2.EvaluateResponse(result=_result(last.response))
        _LOG.debug(
            "evaluate failed on a peer tx_id=%s peer=%s error=%s",
            proposal.tx_id,
            peer.address,
            last.message,
        )
        details.append(last.detail())
        if not last.retry:
            raise StatusError(
                last.code,
                f"evaluate call to endorser returned error: {last.message}",
                details,
            )
    code = last.code if last is not None else grpc.StatusCode.UNAVAILABLE
    raise StatusError(
        code,
        "failed to evaluate transaction, see attached details for more info",
        details,
    )


def _result(
    response: proposal_response_pb2.ProposalResponse,
) -> proposal_response_pb2.Response:
    """The peer's Response with the payload from the signed chaincode action."""
    result = proposal_response_pb2.Response()
    result.CopyFrom(response.response)
    if response.payload:
        payload = proposal_response_pb2.ProposalResponsePayload()
        action = _chaincode_action(response.payload, payload)
        if action is not None:
            result.payload = action.response.payload
    return result


def _chaincode_action(
    data: bytes, payload: proposal_response_pb2.ProposalResponsePayload
) -> proposal_pb2.ChaincodeAction | None:
    action = proposal_pb2.ChaincodeAction()
    try:
        payload.ParseFromString(data)
        action.ParseFromString(payload.extension)
    except DecodeError:
        return None
    return action
