"""The orderer's Deliver stream: seek requests in, blocks and a status out.

Each request on the stream is answered by `common.deliver.deliver` (checks, blocks
from `start` to `stop`) followed by one status response; then the next request is
read. Blocks travel as their exact stored bytes inside an orderer.DeliverResponse;
the response of each recent block is built once and shared by every subscriber that
sends it (the block feed hands them the same bytes object).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import grpc

from common.deliver import DeliverChannel, DeliverSettings, deliver
from common.protoutil import length_delimited_field, varint
from common.tls import peer_cert_hash

__all__ = ["block_response", "serve_deliver", "status_response"]

_STATUS_TAG = 0x08  # field 1, varint
_BLOCK_FIELD = 2  # length-delimited
_SHARED_RESPONSES = 8


async def serve_deliver(
    context: grpc.aio.ServicerContext[Any, Any],
    *,
    channels: Callable[[str], DeliverChannel | None],
    settings: DeliverSettings,
) -> None:
    """Serve one Deliver call until the client half-closes (raw bytes in and out)."""
    tls_cert_hash = peer_cert_hash(context)

    async def send_block(data: bytes) -> None:
        await context.write(_shared_block_response(data))

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
    return length_delimited_field(_BLOCK_FIELD, block)


_recent: collections.OrderedDict[int, tuple[bytes, bytes]] = collections.OrderedDict()
"""id(block bytes) -> (those bytes, kept so the id stays theirs; the response)."""


def _shared_block_response(block: bytes) -> bytes:
    """`block_response`, built once per recent block object."""
    found = _recent.get(id(block))
    if found is not None and found[0] is block:
        return found[1]
    response = block_response(block)
    _recent[id(block)] = (block, response)
    while len(_recent) > _SHARED_RESPONSES:
        _recent.popitem(last=False)
    return response


def status_response(status: int) -> bytes:
    """orderer.DeliverResponse{status}."""
    return bytes([_STATUS_TAG]) + varint(status)
