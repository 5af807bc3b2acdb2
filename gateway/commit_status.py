"""CommitStatus: wait until a transaction commits; answer its code and block number.

The request is signed by the client; the gateway checks that signature and the
channel's `gateway/CommitStatus` ACL (Readers by default) before anything else.
An already committed transaction is answered at once — from the commit tracker, or
from a peer's ledger when the tracker cannot be sure it saw every block — otherwise
the call waits for the block that commits it, until the client's deadline.

Codes: INVALID_ARGUMENT (empty or undecodable request, missing identity, channel or
tx id), FAILED_PRECONDITION (channel not served), PERMISSION_DENIED (signature or
ACL), DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from common.policies import SignedData
from gateway.context import GatewayContext, deadline
from gateway.errors import StatusError
from gateway.ledger import find_transaction
from protos.gateway import gateway_pb2

__all__ = ["RESOURCE", "commit_status"]

RESOURCE = "gateway/CommitStatus"


async def commit_status(
    signed: gateway_pb2.SignedCommitStatusRequest,
    ctx: GatewayContext,
    *,
    time_remaining: float | None,
) -> gateway_pb2.CommitStatusResponse:
    """Answer one CommitStatus call (see the module docstring).

    Raises:
        StatusError: the outcome to answer when no status can be given.
    """
    request = _decode(signed)
    async with deadline(time_remaining, "commit status wait timed out"):
        view = await ctx.ready_view(
            request.channel_id, missing=grpc.StatusCode.FAILED_PRECONDITION
        )
        ctx.check_acl(
            view,
            RESOURCE,
            SignedData(
                data=signed.request,
                identity=request.identity,
                signature=signed.signature,
            ),
        )
        tracker = view.commits
        waiter = tracker.register(request.transaction_id)
        try:
            if not waiter.done() and tracker.may_be_older(request.transaction_id):
                found = await find_transaction(
                    ctx, view.channel_id, request.transaction_id
                )
                if found is not None:
                    tracker.resolve(request.transaction_id, found)
            status = await waiter
        finally:
            tracker.unregister(request.transaction_id, waiter)
    return gateway_pb2.CommitStatusResponse(
        result=status.code,  # type: ignore[arg-type]
        block_number=status.block_number,
    )


def _decode(
    signed: gateway_pb2.SignedCommitStatusRequest,
) -> gateway_pb2.CommitStatusRequest:
    if not signed.request:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, "a commit status request is required"
        )
    request = gateway_pb2.CommitStatusRequest()
    try:
        request.ParseFromString(signed.request)
    except DecodeError as error:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid status request: {error}"
        ) from None
    if not request.identity:
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, "no identity provided")
    if not request.channel_id:
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, "no channel ID provided")
    if not request.transaction_id:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, "transaction ID should not be empty"
        )
    return request
