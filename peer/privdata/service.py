"""`medledger.peer.v1.PrivateDataService`: Push and Pull, served to other peers.

Push: the payload decodes, its timestamp is within the time window, the channel is
joined, the sender is a peer of the channel whose signature verifies, and for every
collection in it the sender's organisation is a member (committed definition). The
collections this peer's organisation is a member of go to the transient store; the
answer is an ack signed by this peer naming them.

Pull: the same checks of the requester; for each digest of a collection both
organisations are members of, the write set from the private data store (committed)
or else the transient store (not committed yet). Digests of other collections, or
data this peer lacks, are left out of the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc

from common.errors import MedledgerError, WireError
from common.msp import Identity, SigningIdentity
from peer.channels import PeerChannel
from peer.errors import AccessDenied, ChannelNotJoined, MalformedProposal
from peer.ledger import transient
from peer.ledger.pvtdata import get_collection_private_data
from peer.ledger.pvtrwset import decode, filter_with_config
from peer.lifecycle import DefinitionReader
from peer.privdata.members import (
    check_timestamp,
    collection_config,
    member_mspids,
    names,
    verify_peer,
)
from peer.privdata.messages import (
    collections_in,
    decode_with_config,
    sign_ack,
)
from peer.service import status_of
from protos.medledger.peer import privdata_pb2

__all__ = ["PRIVATE_DATA_SERVICE", "PrivateDataService"]

_LOG = logging.getLogger(__name__)

PRIVATE_DATA_SERVICE = "medledger.peer.v1.PrivateDataService"

_Context = grpc.aio.ServicerContext[Any, Any]
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
ChannelLookup = Callable[[str], PeerChannel | None]


class PrivateDataService:
    """The servicer (see the module docstring)."""

    def __init__(
        self,
        channels: ChannelLookup,
        *,
        signer: SigningIdentity,
        time_window_s: float,
    ) -> None:
        self._channels = channels
        self._signer = signer
        self._window_s = time_window_s

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            PRIVATE_DATA_SERVICE,
            {
                "Push": grpc.unary_unary_rpc_method_handler(
                    self.push,
                    request_deserializer=privdata_pb2.PushRequest.FromString,
                    response_serializer=privdata_pb2.PushResponse.SerializeToString,
                ),
                "Pull": grpc.unary_unary_rpc_method_handler(
                    self.pull,
                    request_deserializer=privdata_pb2.PullRequest.FromString,
                    response_serializer=privdata_pb2.PullResponse.SerializeToString,
                ),
            },
        )

    async def push(
        self, request: privdata_pb2.PushRequest, context: _Context
    ) -> privdata_pb2.PushResponse:
        return await _answer(self.handle_push, request, context)

    async def pull(
        self, request: privdata_pb2.PullRequest, context: _Context
    ) -> privdata_pb2.PullResponse:
        return await _answer(self.handle_pull, request, context)

    def handle_push(
        self, request: privdata_pb2.PushRequest
    ) -> privdata_pb2.PushResponse:
        """Check and store a push (worker thread); the signed ack.

        Raises:
            MalformedProposal, AccessDenied, ChannelNotJoined: see the module docstring.
        """
        payload = _decode(privdata_pb2.PushPayload, request.payload, "push")
        channel, sender = self._verify(payload, payload.sender, request)
        if not payload.tx_id:
            raise MalformedProposal("the push has no tx id")
        try:
            message = decode_with_config(payload.private_data)
        except WireError as error:
            raise MalformedProposal(str(error)) from None
        mine: list[tuple[str, str]] = []
        refused: list[tuple[str, str]] = []
        for ns, coll in collections_in(message):
            members = _members(channel.ledger, ns, coll)
            if sender.mspid not in members:
                refused.append((ns, coll))
            elif self._signer.mspid in members:
                mine.append((ns, coll))
        if refused:
            raise AccessDenied(
                f"peer of {sender.mspid} is not a member of {names(refused)}"
            )
        if mine:
            kept = filter_with_config(message, lambda ns, coll: (ns, coll) in mine)
            channel.store_private_data(
                payload.tx_id,
                payload.endorsed_at,
                kept.SerializeToString(deterministic=True),
            )
        _LOG.debug(
            "private data pushed channel=%s tx_id=%s sender=%s stored=%s",
            payload.channel_id,
            payload.tx_id,
            sender.mspid,
            names(mine) or "-",
        )
        return sign_ack(
            self._signer, payload=payload, payload_bytes=request.payload, stored=mine
        )

    def handle_pull(
        self, request: privdata_pb2.PullRequest
    ) -> privdata_pb2.PullResponse:
        """Check a pull and answer what this peer may give (worker thread).

        Raises:
            MalformedProposal, AccessDenied, ChannelNotJoined: see the module docstring.
        """
        payload = _decode(privdata_pb2.PullPayload, request.payload, "pull")
        channel, requester = self._verify(payload, payload.requester, request)
        ledger = channel.ledger
        reader = ledger.reader()
        members: dict[tuple[str, str], frozenset[str]] = {}
        response = privdata_pb2.PullResponse()
        for digest in payload.digests:
            key = (digest.namespace, digest.collection)
            if key not in members:
                members[key] = _members(ledger, *key)
            allowed = members[key]
            if requester.mspid not in allowed or self._signer.mspid not in allowed:
                continue
            rwset = get_collection_private_data(
                reader, digest.block_num, digest.tx_num, *key
            )
            if rwset is None and digest.tx_id:
                rwset = _from_transient(channel, digest.tx_id, *key)
            if rwset is not None:
                response.elements.add(digest=digest, rwset=rwset)
        return response

    def _verify(
        self,
        payload: privdata_pb2.PushPayload | privdata_pb2.PullPayload,
        peer: bytes,
        request: privdata_pb2.PushRequest | privdata_pb2.PullRequest,
    ) -> tuple[PeerChannel, Identity]:
        """The payload's channel and `peer` (its sender or requester), verified as the
        channel's peer that signed the request, once the timestamp is checked."""
        channel = self._channel(payload.channel_id)
        check_timestamp(payload.timestamp, window_s=self._window_s)
        identity = verify_peer(channel.config, peer, request.payload, request.signature)
        return channel, identity

    def _channel(self, channel_id: str) -> PeerChannel:
        channel = self._channels(channel_id)
        if channel is None:
            raise ChannelNotJoined(
                f"channel '{channel_id}' not found", channel_id=channel_id
            )
        return channel


def _members(ledger: DefinitionReader, ns: str, coll: str) -> frozenset[str]:
    """The organisations that are members of the collection (none if it is unknown)."""
    config = collection_config(ledger, ns, coll)
    return frozenset() if config is None else member_mspids(config)


def _from_transient(
    channel: PeerChannel, tx_id: str, ns: str, coll: str
) -> bytes | None:
    for entry in transient.get_by_tx_id(channel.ledger.reader(), tx_id):
        for ns_rwset in entry.pvt_rwset.pvt_rwset.ns_pvt_rwset:
            if ns_rwset.namespace != ns:
                continue
            for collection in ns_rwset.collection_pvt_rwset:
                if collection.collection_name == coll:
                    return collection.rwset
    return None


def _decode(message_type: Any, data: bytes, what: str) -> Any:
    try:
        return decode(message_type, data, what=f"the {what} payload")
    except WireError as error:
        raise MalformedProposal(str(error)) from None


async def _answer(
    handle: Callable[[_Request], _Response], request: _Request, context: _Context
) -> _Response:
    """`handle` the request in a worker thread; its MedledgerError aborts the call."""
    try:
        return await asyncio.to_thread(handle, request)
    except MedledgerError as error:
        await _abort(context, error)


async def _abort(context: _Context, error: MedledgerError) -> NoReturn:
    code = status_of(error)
    if code is grpc.StatusCode.INTERNAL:
        _LOG.error("private data request failed: %s", error)
    else:
        _LOG.info("private data request refused: %s", error)
    await context.abort(code, str(error))
