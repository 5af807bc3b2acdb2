"""The peer's `protos.Deliver` streams: blocks, filtered blocks, blocks with private data.

Events, after commit. Each request on a stream is answered by `common.deliver.deliver`
(timestamp window, TLS binding, ACL, positions, waiting for new blocks) followed by
one status response; then the next request is read. What differs is the block form:

- Deliver: the exact stored bytes (TRANSACTIONS_FILTER set at commit), ACL `event/Block`;
- DeliverFiltered: a FilteredBlock — per transaction its id, header type, validation
  code and chaincode event without payload — ACL `event/FilteredBlock`;
- DeliverWithPrivateData: the block and, per transaction, the stored private write
  sets of the collections whose member organisations include the requester's, ACL
  `event/Block`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from common.deliver import DeliverChannel, DeliverSettings, deliver
from common.errors import WireError
from common.policies import role_mspids
from common.protoutil import (
    SignedData,
    length_delimited_field,
    parse_block,
    transaction_filter,
    varint,
)
from common.tls import peer_cert_hash
from peer.channels import PeerChannel
from peer.errors import ChaincodeDefinitionError
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtstore import get_block_private_data
from peer.lifecycle import read_definition
from peer.privdata.collections import IMPLICIT_COLLECTION_PREFIX
from protos.common import common_pb2, policies_pb2
from protos.ledger.rwset import rwset_pb2
from protos.peer import (
    chaincode_event_pb2,
    events_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

__all__ = [
    "BlockForm",
    "filtered_block",
    "member_orgs",
    "serve_deliver",
    "status_response",
]

_STATUS_TAG = 0x08  # DeliverResponse.status: field 1, varint
_BLOCK_FIELD = 2  # DeliverResponse.block, length-delimited

_Context = grpc.aio.ServicerContext[Any, Any]
ChannelLookup = Callable[[str], PeerChannel | None]


class BlockForm(enum.Enum):
    """Which of the three Deliver methods: what a block becomes on the stream."""

    BLOCK = "block"
    FILTERED = "filtered"
    PRIVATE = "private"

    @property
    def resource(self) -> str:
        """The ACL resource guarding this form."""
        return "event/FilteredBlock" if self is BlockForm.FILTERED else "event/Block"


async def serve_deliver(
    context: _Context,
    *,
    form: BlockForm,
    channels: ChannelLookup,
    settings: DeliverSettings,
) -> None:
    """Serve one Deliver call until the client half-closes (raw bytes in and out)."""
    tls_cert_hash = peer_cert_hash(context)
    while True:
        request = await context.read()
        if not isinstance(request, bytes):  # grpc.aio.EOF: the client half-closed
            return
        sender = _Sender(context, form, channels)
        status = await deliver(
            request,
            channels=sender.channel_view,
            send_block=sender.send,
            tls_cert_hash=tls_cert_hash,
            settings=settings,
        )
        await context.write(status_response(status))
        if status == common_pb2.SERVICE_UNAVAILABLE:
            return  # the channel's feed closed: the peer is stopping


def status_response(status: int) -> bytes:
    """protos.DeliverResponse{status}."""
    return bytes([_STATUS_TAG]) + varint(status)


def filtered_block(
    block: common_pb2.Block, channel_id: str
) -> events_pb2.FilteredBlock:
    """The FilteredBlock of a committed block: ids, types, codes, events sans payload."""
    try:
        codes = transaction_filter(block)
    except WireError:
        codes = ()
    result = events_pb2.FilteredBlock(channel_id=channel_id, number=block.header.number)
    for index, data in enumerate(block.data.data):
        code = codes[index] if index < len(codes) else transaction_pb2.NOT_VALIDATED
        result.filtered_transactions.append(_filtered_transaction(data, code))
    return result


def member_orgs(policy: policies_pb2.SignaturePolicyEnvelope) -> frozenset[str]:
    """The MSP ids a collection's member_orgs_policy names (its role principals)."""
    return role_mspids(policy)


class _Sender:
    """Turns stored block bytes into this form's DeliverResponse and writes it."""

    def __init__(
        self, context: _Context, form: BlockForm, channels: ChannelLookup
    ) -> None:
        self._context = context
        self._form = form
        self._channels = channels
        self.channel: PeerChannel | None = None
        self.requester_mspid = ""

    def channel_view(self, channel_id: str) -> DeliverChannel | None:
        """The requested channel under this form's ACL (remembered for `send`)."""
        channel = self._channels(channel_id)
        if channel is None:
            return None
        self.channel = channel
        return _ChannelView(channel, self._form, self)

    async def send(self, data: bytes) -> None:
        channel = self.channel
        assert channel is not None, "deliver sends blocks only for a found channel"
        if self._form is BlockForm.BLOCK:
            await self._context.write(_block_response(data))
            return
        block = parse_block(data)
        if self._form is BlockForm.FILTERED:
            filtered = filtered_block(block, channel.channel_id)
            response = events_pb2.DeliverResponse(filtered_block=filtered)
        else:
            private = await asyncio.to_thread(
                _private_data, channel, block, self.requester_mspid
            )
            response = events_pb2.DeliverResponse(
                block_and_private_data=events_pb2.BlockAndPrivateData(
                    block=block, private_data_map=private
                )
            )
        await self._context.write(response.SerializeToString())


class _ChannelView:
    """A PeerChannel as the Deliver core sees it, under one form's ACL resource."""

    def __init__(self, channel: PeerChannel, form: BlockForm, sender: _Sender) -> None:
        self._channel = channel
        self._form = form
        self._sender = sender

    def height(self) -> int:
        return self._channel.height()

    def config_sequence(self) -> int:
        return self._channel.config_sequence()

    def authorize(self, signed_data: SignedData) -> float:
        expires = self._channel.authorize_resource(self._form.resource, signed_data)
        identity = self._channel.config.msp_manager.deserialize_identity(
            signed_data.identity
        )
        self._sender.requester_mspid = identity.mspid
        return expires

    async def block_bytes(self, number: int) -> bytes:
        return await self._channel.block_bytes(number)

    async def wait_for_height(self, height: int) -> None:
        await self._channel.wait_for_height(height)


def _filtered_transaction(data: bytes, code: int) -> events_pb2.FilteredTransaction:
    try:
        envelope = common_pb2.Envelope.FromString(data)
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    except DecodeError:
        return events_pb2.FilteredTransaction(tx_validation_code=code)  # type: ignore[arg-type]
    result = events_pb2.FilteredTransaction(
        txid=header.tx_id,
        type=header.type,  # type: ignore[arg-type]
        tx_validation_code=code,  # type: ignore[arg-type]
    )
    if header.type == common_pb2.ENDORSER_TRANSACTION:
        actions = result.transaction_actions
        actions.SetInParent()
        for event in _chaincode_events(payload.data):
            actions.chaincode_actions.append(
                events_pb2.FilteredChaincodeAction(chaincode_event=event)
            )
    return result


def _chaincode_events(
    transaction_bytes: bytes,
) -> list[chaincode_event_pb2.ChaincodeEvent]:
    """Each action's event without its payload (actions that do not decode: none)."""
    events: list[chaincode_event_pb2.ChaincodeEvent] = []
    try:
        transaction = transaction_pb2.Transaction.FromString(transaction_bytes)
        for action in transaction.actions:
            payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            if not payload.HasField("action"):
                continue
            response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
                payload.action.proposal_response_payload
            )
            chaincode_action = proposal_pb2.ChaincodeAction.FromString(
                response_payload.extension
            )
            event = chaincode_event_pb2.ChaincodeEvent.FromString(
                chaincode_action.events
            )
            if event.chaincode_id:
                events.append(
                    chaincode_event_pb2.ChaincodeEvent(
                        chaincode_id=event.chaincode_id,
                        tx_id=event.tx_id,
                        event_name=event.event_name,
                    )
                )
    except DecodeError:
        return events
    return events


def _private_data(
    channel: PeerChannel, block: common_pb2.Block, mspid: str
) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
    """The block's stored private write sets of collections `mspid` is a member of."""
    ledger = channel.ledger
    members: dict[tuple[str, str], frozenset[str]] = {}

    def eligible(namespace: str, collection: str) -> bool:
        key = (namespace, collection)
        if key not in members:
            members[key] = _collection_members(ledger, namespace, collection)
        return mspid in members[key]

    return get_block_private_data(ledger.reader(), block.header.number, eligible)


def _collection_members(
    ledger: ChannelLedger, namespace: str, collection: str
) -> frozenset[str]:
    if collection.startswith(IMPLICIT_COLLECTION_PREFIX):
        return frozenset({collection.removeprefix(IMPLICIT_COLLECTION_PREFIX)})
    try:
        definition = read_definition(ledger, namespace)
        configs = () if definition is None else definition.collection_configs()
    except ChaincodeDefinitionError:
        return frozenset()
    for config in configs:
        if config.name == collection:
            return member_orgs(config.member_orgs_policy.signature_policy)
    return frozenset()


def _block_response(block: bytes) -> bytes:
    return length_delimited_field(_BLOCK_FIELD, block)
