"""`protos.Deliver` on the gateway's endpoint, served by a peer behind it.

The official clients ask the gateway's own address for block events (Deliver,
DeliverFiltered, DeliverWithPrivateData). Each call is relayed to a peer of the
channel — the gateway's organisation's best peer first — as raw bytes both ways: the
client's signed seek envelopes go to the peer unchanged (the peer checks the
signature, the Readers ACL and the time window) and the peer's responses come back
unchanged. If a peer cannot be reached before it answered anything, the next one is
tried; a peer lost mid-stream ends the call with a SERVICE_UNAVAILABLE status
response, which the clients report as an error.

Limit: a request bound to the client's TLS certificate (`tls_cert_hash`) cannot be
relayed under mutual TLS, since the peer sees the gateway's certificate instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from common.errors import WireError
from common.protoutil import parse_seek_envelope
from gateway.connections import DeliverMethod, PeerClient
from gateway.registry import Registry
from protos.common import common_pb2
from protos.peer import events_pb2

__all__ = ["SERVICE_NAME", "DeliverProxy"]

_LOG = logging.getLogger(__name__)

SERVICE_NAME = "protos.Deliver"
_METHODS: tuple[DeliverMethod, ...] = (
    "Deliver",
    "DeliverFiltered",
    "DeliverWithPrivateData",
)
_Context = grpc.aio.ServicerContext[Any, Any]


class DeliverProxy:
    """Relays Deliver-family calls to the channel's peers."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                method: grpc.stream_stream_rpc_method_handler(self._handler(method))
                for method in _METHODS
            },
        )

    def _handler(self, method: DeliverMethod) -> Any:
        async def handle(_requests: object, context: _Context) -> None:
            await self.relay(method, context)

        return handle

    async def relay(self, method: DeliverMethod, context: _Context) -> None:
        """Serve one call until the client or the peer ends it."""
        first = await context.read()
        if not isinstance(first, bytes):
            return
        try:
            channel = parse_seek_envelope(first).envelope.channel_id
        except WireError as error:
            _LOG.info("deliver request does not decode error=%s", error)
            await context.write(_status(common_pb2.BAD_REQUEST))
            return
        for peer in self._registry.evaluation_order(channel):
            answered = await self._relay_to(peer, method, first, context)
            if answered:
                return
        await context.write(_status(common_pb2.SERVICE_UNAVAILABLE))

    async def _relay_to(
        self, peer: PeerClient, method: DeliverMethod, first: bytes, context: _Context
    ) -> bool:
        """Relay through `peer`; False when it failed before answering anything."""
        upstream = peer.open_deliver(method)
        answered = False
        forwarder = asyncio.create_task(_forward_requests(context, upstream, first))
        try:
            async for response in upstream:
                answered = True
                await context.write(response)
        except grpc.aio.AioRpcError as error:
            _LOG.info(
                "deliver relay failed peer=%s code=%s answered=%s",
                peer.address,
                error.code(),
                answered,
            )
            self._registry.mark_failed(peer)
            if answered:
                await context.write(_status(common_pb2.SERVICE_UNAVAILABLE))
            return answered
        finally:
            forwarder.cancel()
            upstream.cancel()
            await asyncio.gather(forwarder, return_exceptions=True)
        return True


async def _forward_requests(
    context: _Context, upstream: grpc.aio.StreamStreamCall[bytes, bytes], first: bytes
) -> None:
    await upstream.write(first)
    while True:
        request = await context.read()
        if not isinstance(request, bytes):
            await upstream.done_writing()
            return
        await upstream.write(request)


def _status(status: int) -> bytes:
    response = events_pb2.DeliverResponse(status=status)  # type: ignore[arg-type]
    return response.SerializeToString()
