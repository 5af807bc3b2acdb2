"""Event streams: chaincode events, blocks and filtered blocks, with checkpoints.

All three are async iterators over one gRPC stream to the gateway; leaving the
iteration (break, or cancelling the task) closes the stream. Where to start: a
checkpoint that has a block wins, then `start_block`, else the next block to commit.
Chaincode events resume inside the checkpoint's block after its transaction.
Listeners record progress themselves with `checkpointer.checkpoint_event(...)` or
`checkpoint_block(...)` after processing, so a crash never skips an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from gateway.client._checkpoint import Checkpoint
from gateway.client._connection import Connection
from gateway.client._errors import ClientError, GatewayError, gateway_error
from protos.common import common_pb2
from protos.gateway import gateway_pb2
from protos.orderer import ab_pb2
from protos.peer import events_pb2

__all__ = [
    "ChaincodeEvent",
    "block_events",
    "chaincode_events",
    "chaincode_events_request",
    "filtered_block_events",
]

_MAX_BLOCK = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ChaincodeEvent:
    """One event a chaincode emitted in a committed, valid transaction."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


def chaincode_events_request(
    connection: Connection,
    channel_id: str,
    chaincode: str,
    *,
    start_block: int | None,
    checkpoint: Checkpoint | None,
) -> gateway_pb2.SignedChaincodeEventsRequest:
    """The unsigned request: start position and resume point as described above."""
    start, after = _start(start_block, checkpoint)
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_id,
        chaincode_id=chaincode,
        identity=connection.identity.serialized,
        start_position=_position_message(start),
        after_transaction_id=after,
    )
    return gateway_pb2.SignedChaincodeEventsRequest(request=request.SerializeToString())


async def chaincode_events(
    connection: Connection, signed: gateway_pb2.SignedChaincodeEventsRequest
) -> AsyncIterator[ChaincodeEvent]:
    """The events of a (signed, or signed here) ChaincodeEvents request.

    Raises:
        GatewayError: the gateway refused the request or the stream broke.
    """
    if not signed.signature:
        signed.signature = connection.sign(signed.request)
    call = connection.chaincode_events()(signed)
    try:
        async for response in call:
            for event in response.events:
                yield ChaincodeEvent(
                    block_number=response.block_number,
                    transaction_id=event.tx_id,
                    chaincode_name=event.chaincode_id,
                    event_name=event.event_name,
                    payload=event.payload,
                )
    except grpc.aio.AioRpcError as error:
        raise gateway_error(error, GatewayError) from None
    finally:
        call.cancel()


async def block_events(
    connection: Connection,
    channel_id: str,
    *,
    start_block: int | None = None,
    checkpoint: Checkpoint | None = None,
    tls_cert_hash: bytes = b"",
) -> AsyncIterator[common_pb2.Block]:
    """Committed blocks of the channel, in order."""
    async for response in _deliver(
        connection, "Deliver", channel_id, start_block, checkpoint, tls_cert_hash
    ):
        if response.HasField("block"):
            yield response.block


async def filtered_block_events(
    connection: Connection,
    channel_id: str,
    *,
    start_block: int | None = None,
    checkpoint: Checkpoint | None = None,
    tls_cert_hash: bytes = b"",
) -> AsyncIterator[events_pb2.FilteredBlock]:
    """Filtered blocks (tx ids, validation codes, events without payload), in order."""
    async for response in _deliver(
        connection,
        "DeliverFiltered",
        channel_id,
        start_block,
        checkpoint,
        tls_cert_hash,
    ):
        if response.HasField("filtered_block"):
            yield response.filtered_block


async def _deliver(
    connection: Connection,
    method: str,
    channel_id: str,
    start_block: int | None,
    checkpoint: Checkpoint | None,
    tls_cert_hash: bytes,
) -> AsyncIterator[events_pb2.DeliverResponse]:
    start, _ = _start(start_block, checkpoint)
    envelope = _seek_envelope(connection, channel_id, start, tls_cert_hash)
    call: Any = connection.deliver(method, events_pb2.DeliverResponse)()
    try:
        await call.write(envelope)
        async for response in call:
            if response.WhichOneof("Type") == "status":
                raise ClientError(
                    f"block events ended with status {_status_name(response.status)}"
                )
            yield response
    except grpc.aio.AioRpcError as error:
        raise gateway_error(error, GatewayError) from None
    finally:
        call.cancel()


def _start(
    start_block: int | None, checkpoint: Checkpoint | None
) -> tuple[SeekPosition, str]:
    if checkpoint is not None and checkpoint.block_number is not None:
        return (
            SeekPosition.specified(checkpoint.block_number),
            checkpoint.transaction_id or "",
        )
    if start_block is not None:
        return SeekPosition.specified(start_block), ""
    return SeekPosition.next_commit(), ""


def _position_message(position: SeekPosition) -> ab_pb2.SeekPosition:
    if position.kind == "specified":
        return ab_pb2.SeekPosition(
            specified=ab_pb2.SeekSpecified(number=position.number)
        )
    return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())


def _seek_envelope(
    connection: Connection,
    channel_id: str,
    start: SeekPosition,
    tls_cert_hash: bytes,
) -> common_pb2.Envelope:
    return create_seek_envelope(
        channel_id=channel_id,
        start=start,
        stop=SeekPosition.specified(_MAX_BLOCK),
        behavior=BLOCK_UNTIL_READY,
        creator=connection.identity.serialized,
        signer=connection.sign,
        tls_cert_hash=tls_cert_hash or None,
    )


def _status_name(status: int) -> str:
    try:
        return common_pb2.Status.Name(status)
    except ValueError:
        return str(status)
