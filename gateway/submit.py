"""Submit: hand a client-signed transaction to the channel's ordering service.

The envelope goes to the channel's orderers in random order until one accepts it
(SUCCESS). A gRPC failure or a 5xx status moves on to the next orderer; a 4xx status
(the envelope is wrong: bad signature, not a writer, too big) is final and answered
ABORTED without retrying. When every orderer failed: UNAVAILABLE "no orderers could
successfully process transaction" with one ErrorDetail per orderer. Acceptance by an
orderer does not mean the transaction will commit valid; CommitStatus says that.
"""

from __future__ import annotations

import logging
import random

import grpc

from common.errors import WireError
from common.protoutil import parse_envelope
from gateway.connections import OrdererClient
from gateway.context import GatewayContext, deadline
from gateway.errors import ErrorDetail, StatusError, describe_rpc_error
from protos.common import common_pb2
from protos.gateway import gateway_pb2

__all__ = ["submit"]

_LOG = logging.getLogger(__name__)


async def submit(
    request: gateway_pb2.SubmitRequest,
    ctx: GatewayContext,
    *,
    time_remaining: float | None,
) -> gateway_pb2.SubmitResponse:
    """Answer one Submit call (see the module docstring).

    Raises:
        StatusError: the outcome to answer when no orderer accepted the transaction.
    """
    if not request.HasField("prepared_transaction"):
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, "a prepared transaction is required"
        )
    envelope = request.prepared_transaction
    if not envelope.signature:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed"
        )
    channel = request.channel_id or _channel_of(envelope)
    async with deadline(
        time_remaining, "submit timeout expired while broadcasting to ordering service"
    ):
        view = await ctx.ready_view(
            channel, missing=grpc.StatusCode.FAILED_PRECONDITION
        )
        orderers = ctx.orderers.clients(view.config)
        if not orderers:
            raise StatusError(grpc.StatusCode.UNAVAILABLE, "no orderer nodes available")
        await _broadcast(envelope, random.sample(orderers, len(orderers)), ctx, request)
    return gateway_pb2.SubmitResponse()


async def _broadcast(
    envelope: common_pb2.Envelope,
    orderers: list[OrdererClient],
    ctx: GatewayContext,
    request: gateway_pb2.SubmitRequest,
) -> None:
    details: list[ErrorDetail] = []
    for orderer in orderers:
        try:
            response = await orderer.broadcast(
                envelope, deadline_s=ctx.timeouts.broadcast_s
            )
        except (grpc.aio.AioRpcError, ConnectionError) as error:
            message = (
                describe_rpc_error(error)
                if isinstance(error, grpc.aio.AioRpcError)
                else str(error)
            )
            details.append(ErrorDetail(orderer.address, orderer.mspid, message))
            _LOG.warning(
                "broadcast failed tx_id=%s orderer=%s error=%s",
                request.transaction_id,
                orderer.address,
                message,
            )
            continue
        if response.status == common_pb2.SUCCESS:
            return
        message = (
            f"received unsuccessful response from orderer: "
            f"status={_status_name(response.status)}, info={response.info}"
        )
        details.append(ErrorDetail(orderer.address, orderer.mspid, message))
        if 400 <= response.status < 500:
            raise StatusError(grpc.StatusCode.ABORTED, message, details)
    raise StatusError(
        grpc.StatusCode.UNAVAILABLE,
        "no orderers could successfully process transaction",
        details,
    )


def _channel_of(envelope: common_pb2.Envelope) -> str:
    try:
        return parse_envelope(envelope).channel_id
    except WireError as error:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid prepared transaction: {error}"
        ) from None


def _status_name(status: int) -> str:
    try:
        return common_pb2.Status.Name(status)
    except ValueError:
        return str(status)
