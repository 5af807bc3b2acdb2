"""ChaincodeEvents: the events one chaincode emitted, block by block, from a position.

The signed request is checked like CommitStatus's (signature and the
`gateway/ChaincodeEvents` ACL, Readers by default). The stream starts at

- the block of `after_transaction_id` when the ledger knows that transaction, skipping
  that block's transactions up to and including it (a resumed checkpoint);
- otherwise the `start_position`: a specified block, or the current height for
  `next_commit` (and when unset). Other positions are INVALID_ARGUMENT.

From there the gateway reads blocks from a peer's Deliver service (its own
organisation's first) and sends one response per block holding the chaincode's events
from valid transactions, in transaction order, ascending by block; blocks without such
events are skipped. When the peer fails the stream resumes at the next block on
another peer; when none is left the call ends UNAVAILABLE.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from common.errors import MedledgerError
from common.policies import SignedData
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from gateway.blocks import block_events
from gateway.channels import ChannelView
from gateway.connections import PeerClient
from gateway.context import GatewayContext
from gateway.errors import StatusError
from gateway.ledger import find_transaction
from gateway.registry import MAX_BLOCK
from protos.gateway import gateway_pb2
from protos.peer import events_pb2

__all__ = ["RESOURCE", "chaincode_events"]

_LOG = logging.getLogger(__name__)

RESOURCE = "gateway/ChaincodeEvents"
_MAX_PEER_ROUNDS = 2


@dataclass(slots=True)
class _Position:
    """The next block to read, and a tx id whose block's earlier events are skipped."""

    block: int
    skip_through: str = ""
    skip_block: int = -1


async def chaincode_events(
    signed: gateway_pb2.SignedChaincodeEventsRequest, ctx: GatewayContext
) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
    """Answer one ChaincodeEvents call (see the module docstring).

    Raises:
        StatusError: the request is refused, or no peer can deliver blocks.
    """
    request = _decode(signed)
    view = await ctx.ready_view(request.channel_id, missing=grpc.StatusCode.NOT_FOUND)
    ctx.check_acl(
        view,
        RESOURCE,
        SignedData(
            data=signed.request, identity=request.identity, signature=signed.signature
        ),
    )
    position = await _start(request, view, ctx)
    rounds = 0
    while rounds < _MAX_PEER_ROUNDS:
        rounds += 1
        for peer in ctx.registry.evaluation_order(view.channel_id):
            before = position.block
            try:
                async for response in _events_from(peer, request, position, ctx):
                    yield response
            except (
                grpc.aio.AioRpcError,
                MedledgerError,
                ConnectionError,
                DecodeError,
            ) as error:
                _LOG.info(
                    "chaincode events stream from peer ended peer=%s error=%s",
                    peer.address,
                    error,
                )
            if position.block > before:
                rounds = 0
    raise StatusError(
        grpc.StatusCode.UNAVAILABLE,
        f"no peer could deliver blocks of channel {view.channel_id}",
    )


async def _events_from(
    peer: PeerClient,
    request: gateway_pb2.ChaincodeEventsRequest,
    position: _Position,
    ctx: GatewayContext,
) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
    seek = create_seek_envelope(
        channel_id=request.channel_id,
        start=SeekPosition.specified(position.block),
        stop=SeekPosition.specified(MAX_BLOCK),
        behavior=BLOCK_UNTIL_READY,
        creator=ctx.creator,
        signer=ctx.signer,
    )
    stream = peer.open_deliver("Deliver")
    try:
        await stream.write(seek.SerializeToString())
        async for data in stream:
            response = events_pb2.DeliverResponse.FromString(data)
            if not response.HasField("block"):
                raise ConnectionError(f"Deliver answered status {response.status}")
            block = response.block
            number = block.header.number
            skip = position.skip_through if number == position.skip_block else ""
            events = block_events(
                block, chaincode=request.chaincode_id, after_tx_id=skip
            )
            position.block = number + 1
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(
                    events=events, block_number=number
                )
    finally:
        stream.cancel()


async def _start(
    request: gateway_pb2.ChaincodeEventsRequest, view: ChannelView, ctx: GatewayContext
) -> _Position:
    after = request.after_transaction_id
    if after:
        found = view.commits.lookup(after) or await find_transaction(
            ctx, view.channel_id, after
        )
        if found is not None:
            return _Position(found.block_number, after, found.block_number)
    start = request.start_position
    kind = start.WhichOneof("Type")
    if kind == "specified":
        number = start.specified.number
        return _Position(number, after, number)
    if kind in (None, "next_commit"):
        return _Position(view.height)
    raise StatusError(
        grpc.StatusCode.INVALID_ARGUMENT, f"invalid start position type: {kind}"
    )


def _decode(
    signed: gateway_pb2.SignedChaincodeEventsRequest,
) -> gateway_pb2.ChaincodeEventsRequest:
    if not signed.request:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT, "a chaincode events request is required"
        )
    request = gateway_pb2.ChaincodeEventsRequest()
    try:
        request.ParseFromString(signed.request)
    except DecodeError as error:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid chaincode events request: {error}",
        ) from None
    if not request.chaincode_id:
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, "no chaincode ID provided")
    return request
