"""The orderer's Deliver stream: seek requests in, blocks and a status out.

Each request on the stream is answered by `common.deliver.deliver` (checks, blocks
from `start` to `stop`) followed by one status response; then the next request is
read. Blocks travel as their exact stored bytes inside an orderer.DeliverResponse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from common.deliver import DeliverChannel, DeliverSettings, deliver
from common.tls import peer_cert_hash

__all__ = ["block_response", "serve_deliver", "status_response"]

_STATUS_TAG = 0x08  # field 1, varint
_BLOCK_TAG = 0x12  # field 2, length-delimited


async def serve_deliver(
    context: grpc.aio.ServicerContext[Any, Any],
    *,
    channels: Callable[[str], DeliverChannel | None],
    settings: DeliverSettings,
) -> None:
    """Serve one Deliver call until the client half-closes (raw bytes in and out)."""
    tls_cert_hash = peer_cert_hash(context)

    async def send_block(data: bytes) -> None:
        await context.write(block_response(data))

    while True:
        request = await context.read()
        if not isinstance(request, bytes):  # grpc.aio.EOF: the client half-closed
            return
        status = await deliver(
            request,
            channels=channels,
            send_block=send_block,
            tls_cert_hash=tls_cert_hash,
            settings=settings,
        )
        await context.write(status_response(status))


def block_response(block: bytes) -> bytes:
    """orderer.DeliverResponse{block} around already-serialized block bytes."""
    return bytes([_BLOCK_TAG]) + _varint(len(block)) + block


def status_response(status: int) -> bytes:
    """orderer.DeliverResponse{status}."""
    return bytes([_STATUS_TAG]) + _varint(status)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
