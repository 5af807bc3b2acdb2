"""The gRPC service `gateway.Gateway`: each method decodes, calls its module, encodes.

Evaluate, Endorse, Submit, CommitStatus and ChaincodeEvents live in their own modules;
this one only wires them to grpc.aio, passes the client's remaining deadline down and
turns any failure into a status with details through `gateway.errors.abort`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc

from gateway.chaincode_events import chaincode_events
from gateway.commit_status import commit_status
from gateway.context import GatewayContext
from gateway.endorse import endorse
from gateway.errors import abort, status_error_for
from gateway.evaluate import evaluate
from gateway.submit import submit
from protos.gateway import gateway_pb2

__all__ = ["SERVICE_NAME", "GatewayService"]

SERVICE_NAME = "gateway.Gateway"

_Context = grpc.aio.ServicerContext[Any, Any]
_R = TypeVar("_R")


class GatewayService:
    """Evaluate, Endorse, Submit, CommitStatus and ChaincodeEvents over one context."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Evaluate": _unary(self.evaluate, gateway_pb2.EvaluateRequest),
                "Endorse": _unary(self.endorse, gateway_pb2.EndorseRequest),
                "Submit": _unary(self.submit, gateway_pb2.SubmitRequest),
                "CommitStatus": _unary(
                    self.commit_status, gateway_pb2.SignedCommitStatusRequest
                ),
                "ChaincodeEvents": grpc.unary_stream_rpc_method_handler(
                    self.chaincode_events,
                    request_deserializer=gateway_pb2.SignedChaincodeEventsRequest.FromString,
                    response_serializer=gateway_pb2.ChaincodeEventsResponse.SerializeToString,
                ),
            },
        )

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, context: _Context
    ) -> gateway_pb2.EvaluateResponse:
        return await _answer(
            context,
            evaluate(request, self._ctx, time_remaining=context.time_remaining()),
        )

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, context: _Context
    ) -> gateway_pb2.EndorseResponse:
        return await _answer(
            context,
            endorse(request, self._ctx, time_remaining=context.time_remaining()),
        )

    async def submit(
        self, request: gateway_pb2.SubmitRequest, context: _Context
    ) -> gateway_pb2.SubmitResponse:
        return await _answer(
            context, submit(request, self._ctx, time_remaining=context.time_remaining())
        )

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, context: _Context
    ) -> gateway_pb2.CommitStatusResponse:
        return await _answer(
            context,
            commit_status(request, self._ctx, time_remaining=context.time_remaining()),
        )

    async def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, context: _Context
    ) -> None:
        try:
            async for response in chaincode_events(request, self._ctx):
                await context.write(response)
        except Exception as error:  # every failure becomes a status
            await abort(context, status_error_for(error))


async def _answer(context: _Context, call: Awaitable[_R]) -> _R:
    try:
        return await call
    except Exception as error:  # every failure becomes a status
        await abort(context, status_error_for(error))


def _unary(method: Any, request_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        method,
        request_deserializer=request_type.FromString,
        response_serializer=lambda response: response.SerializeToString(),
    )
