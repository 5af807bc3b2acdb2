"""The peer's gRPC services, wired to their domain objects; status mapping in one place.

- `protos.Endorser/ProcessProposal` → `Endorser.process_proposal`;
- `protos.Deliver/{Deliver,DeliverFiltered,DeliverWithPrivateData}` → `peer.deliver`;
- `medledger.peer.v1.AdminService/{JoinChannel,ListChannels,ListPurges}` →
  `peer.admin` checks, then the node's join, the channel list or the purge records.

Requests arrive as raw bytes and are parsed by the domain code, so malformed input is
a domain error, never a crash of the server. `status_of` maps every error the peer
raises on purpose to a gRPC status: request fields first (INVALID_ARGUMENT), then
access (PERMISSION_DENIED), then the state of the peer (NOT_FOUND, ALREADY_EXISTS,
FAILED_PRECONDITION).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from common.deliver import DeliverSettings
from common.errors import ConfigError, MedledgerError, WireError
from common.msp import Msp
from peer.admin import CommandKind, check_command, purge_records
from peer.channels import Channels, PeerChannel
from peer.deliver import BlockForm, serve_deliver
from peer.endorser import Endorser
from peer.errors import (
    AccessDenied,
    ChannelExists,
    ChannelNotJoined,
    DuplicateTransaction,
    JoinRejected,
    MalformedProposal,
)
from peer.metrics import PROPOSALS_RECEIVED, SUCCESSFUL_PROPOSALS
from protos.common import common_pb2
from protos.medledger.peer import admin_pb2
from protos.peer import proposal_response_pb2

__all__ = [
    "ADMIN_SERVICE",
    "DELIVER_SERVICE",
    "ENDORSER_SERVICE",
    "AdminService",
    "DeliverService",
    "EndorserService",
    "status_of",
]

_LOG = logging.getLogger(__name__)

ENDORSER_SERVICE = "protos.Endorser"
DELIVER_SERVICE = "protos.Deliver"
ADMIN_SERVICE = "medledger.peer.v1.AdminService"

_Context = grpc.aio.ServicerContext[Any, Any]
JoinChannel = Callable[[common_pb2.Block], Awaitable[PeerChannel]]

_STATUS = (
    (MalformedProposal, grpc.StatusCode.INVALID_ARGUMENT),
    (WireError, grpc.StatusCode.INVALID_ARGUMENT),
    (JoinRejected, grpc.StatusCode.INVALID_ARGUMENT),
    (AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (DuplicateTransaction, grpc.StatusCode.ALREADY_EXISTS),
    (ChannelExists, grpc.StatusCode.ALREADY_EXISTS),
    (ChannelNotJoined, grpc.StatusCode.NOT_FOUND),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_of(error: MedledgerError) -> grpc.StatusCode:
    """The gRPC status for an error the peer raised on purpose (INTERNAL otherwise)."""
    for kind, code in _STATUS:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


async def _abort(context: _Context, error: MedledgerError) -> NoReturn:
    code = status_of(error)
    if code is grpc.StatusCode.INTERNAL:
        _LOG.error("request failed: %s", error)
    await context.abort(code, str(error))


class EndorserService:
    """`protos.Endorser`: one unary method."""

    def __init__(self, endorser: Endorser) -> None:
        self._endorser = endorser
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no ProcessProposal call is running (for an orderly stop)."""
        await self._idle.wait()

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            ENDORSER_SERVICE,
            {
                "ProcessProposal": grpc.unary_unary_rpc_method_handler(
                    self.process_proposal,
                    response_serializer=_serialize_proposal_response,
                )
            },
        )

    async def process_proposal(
        self, request: bytes, context: _Context
    ) -> proposal_response_pb2.ProposalResponse:
        self._in_flight += 1
        self._idle.clear()
        PROPOSALS_RECEIVED.inc()
        try:
            response = await self._endorser.process_proposal(request)
            if response.response.status < 400:
                SUCCESSFUL_PROPOSALS.inc()
            return response
        except MedledgerError as error:
            await _abort(context, error)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()


class DeliverService:
    """`protos.Deliver`: the three block streams of the peer's channels."""

    def __init__(self, channels: Channels, *, settings: DeliverSettings) -> None:
        self._channels = channels
        self._settings = settings

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            DELIVER_SERVICE,
            {
                "Deliver": grpc.stream_stream_rpc_method_handler(self.deliver),
                "DeliverFiltered": grpc.stream_stream_rpc_method_handler(
                    self.deliver_filtered
                ),
                "DeliverWithPrivateData": grpc.stream_stream_rpc_method_handler(
                    self.deliver_with_private_data
                ),
            },
        )

    async def deliver(self, _requests: object, context: _Context) -> None:
        await self._serve(context, BlockForm.BLOCK)

    async def deliver_filtered(self, _requests: object, context: _Context) -> None:
        await self._serve(context, BlockForm.FILTERED)

    async def deliver_with_private_data(
        self, _requests: object, context: _Context
    ) -> None:
        await self._serve(context, BlockForm.PRIVATE)

    async def _serve(self, context: _Context, form: BlockForm) -> None:
        await serve_deliver(
            context, form=form, channels=self._channels.get, settings=self._settings
        )


class AdminService:
    """`medledger.peer.v1.AdminService`: signed commands of the peer's admins."""

    def __init__(
        self,
        channels: Channels,
        *,
        msp: Msp,
        join: JoinChannel,
        time_window_s: float,
    ) -> None:
        self._channels = channels
        self._msp = msp
        self._join = join
        self._time_window_s = time_window_s

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            ADMIN_SERVICE,
            {
                "JoinChannel": grpc.unary_unary_rpc_method_handler(
                    self.join_channel,
                    request_deserializer=admin_pb2.JoinChannelRequest.FromString,
                    response_serializer=admin_pb2.JoinChannelResponse.SerializeToString,
                ),
                "ListChannels": grpc.unary_unary_rpc_method_handler(
                    self.list_channels,
                    request_deserializer=admin_pb2.ListChannelsRequest.FromString,
                    response_serializer=admin_pb2.ListChannelsResponse.SerializeToString,
                ),
                "ListPurges": grpc.unary_unary_rpc_method_handler(
                    self.list_purges,
                    request_deserializer=admin_pb2.ListPurgesRequest.FromString,
                    response_serializer=admin_pb2.ListPurgesResponse.SerializeToString,
                ),
            },
        )

    async def join_channel(
        self, request: admin_pb2.JoinChannelRequest, context: _Context
    ) -> admin_pb2.JoinChannelResponse:
        try:
            command = self._check(request, "join_channel")
            block = _decode_block(command.join_channel.genesis_block)
            channel = await self._join(block)
        except MedledgerError as error:
            await _abort(context, error)
        return admin_pb2.JoinChannelResponse(
            channel_id=channel.channel_id, height=channel.height()
        )

    async def list_channels(
        self, request: admin_pb2.ListChannelsRequest, context: _Context
    ) -> admin_pb2.ListChannelsResponse:
        try:
            self._check(request, "list_channels")
        except MedledgerError as error:
            await _abort(context, error)
        return admin_pb2.ListChannelsResponse(
            channels=[
                admin_pb2.ChannelSummary(channel_id=c.channel_id, height=c.height())
                for c in self._channels.all()
            ]
        )

    async def list_purges(
        self, request: admin_pb2.ListPurgesRequest, context: _Context
    ) -> admin_pb2.ListPurgesResponse:
        try:
            command = self._check(request, "list_purges").list_purges
            channel = self._channels.require(command.channel_id)
            records = await asyncio.to_thread(purge_records, channel.ledger, command)
        except MedledgerError as error:
            await _abort(context, error)
        return admin_pb2.ListPurgesResponse(purges=records)

    def _check(
        self,
        request: admin_pb2.JoinChannelRequest
        | admin_pb2.ListChannelsRequest
        | admin_pb2.ListPurgesRequest,
        kind: CommandKind,
    ) -> admin_pb2.AdminCommand:
        return check_command(
            request.payload,
            request.signature,
            kind=kind,
            msp=self._msp,
            time_window_s=self._time_window_s,
        )


def _decode_block(data: bytes) -> common_pb2.Block:
    try:
        return common_pb2.Block.FromString(data)
    except DecodeError as error:
        raise JoinRejected(f"the genesis block does not decode: {error}") from None


def _serialize_proposal_response(
    response: proposal_response_pb2.ProposalResponse,
) -> bytes:
    return response.SerializeToString()
