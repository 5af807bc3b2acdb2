"""Builders for the ChaincodeMessages a chaincode sends on its stream to the peer.

Every message of a transaction carries that transaction's `txid` and `channel_id`;
the peer matches its answers by the same pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from protos.peer import chaincode_event_pb2, chaincode_pb2, chaincode_shim_pb2

ChaincodeMessage = chaincode_shim_pb2.ChaincodeMessage
MessageType = chaincode_shim_pb2.ChaincodeMessage.Type

REGISTER = ChaincodeMessage.REGISTER
REGISTERED = ChaincodeMessage.REGISTERED
READY = ChaincodeMessage.READY
INIT = ChaincodeMessage.INIT
TRANSACTION = ChaincodeMessage.TRANSACTION
COMPLETED = ChaincodeMessage.COMPLETED
ERROR = ChaincodeMessage.ERROR
RESPONSE = ChaincodeMessage.RESPONSE
KEEPALIVE = ChaincodeMessage.KEEPALIVE

M = TypeVar("M", bound=Message)

TxKey = tuple[str, str]
"""A transaction context on the stream: (channel_id, txid)."""


def tx_key(message: chaincode_shim_pb2.ChaincodeMessage) -> TxKey:
    """The transaction context a message belongs to."""
    return (message.channel_id, message.txid)


def type_name(message_type: int) -> str:
    """The enum name of a message type, or its number when unknown."""
    try:
        return ChaincodeMessage.Type.Name(message_type)
    except ValueError:
        return str(message_type)


def register_message(chaincode_id: str) -> chaincode_shim_pb2.ChaincodeMessage:
    """REGISTER, the first message: payload = ChaincodeID{name = package id}."""
    payload = chaincode_pb2.ChaincodeID(name=chaincode_id).SerializeToString()
    return ChaincodeMessage(type=REGISTER, payload=payload)


def request_message(
    message_type: int, payload: bytes, *, key: TxKey
) -> chaincode_shim_pb2.ChaincodeMessage:
    """A state request (GET_STATE, PUT_STATE, ...) of the transaction `key`."""
    channel_id, txid = key
    return ChaincodeMessage(
        type=message_type,  # type: ignore[arg-type]
        payload=payload,
        txid=txid,
        channel_id=channel_id,
    )


def completed_message(
    response_bytes: bytes,
    *,
    key: TxKey,
    event: chaincode_event_pb2.ChaincodeEvent | None = None,
) -> chaincode_shim_pb2.ChaincodeMessage:
    """COMPLETED with a marshaled protos.Response and the transaction's event, if any."""
    channel_id, txid = key
    message = ChaincodeMessage(
        type=COMPLETED, payload=response_bytes, txid=txid, channel_id=channel_id
    )
    if event is not None:
        message.chaincode_event.CopyFrom(event)
    return message


def error_message(text: str, *, key: TxKey) -> chaincode_shim_pb2.ChaincodeMessage:
    """ERROR with a UTF-8 explanation, tagged with the transaction it concerns."""
    channel_id, txid = key
    return ChaincodeMessage(
        type=ERROR, payload=text.encode(), txid=txid, channel_id=channel_id
    )


def event_message(name: str, payload: bytes) -> chaincode_event_pb2.ChaincodeEvent:
    """The chaincode event of a transaction; the peer fills chaincode id and tx id."""
    return chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=payload)


def input_message(
    args: list[bytes], *, decorations: Mapping[str, bytes] | None = None
) -> chaincode_pb2.ChaincodeInput:
    """A ChaincodeInput with `args` (args[0] is the function name)."""
    return chaincode_pb2.ChaincodeInput(args=args, decorations=dict(decorations or {}))


def parse(message_type: type[M], data: bytes, *, what: str) -> M:
    """Decode `data` as `message_type`.

    Raises:
        WireError: the bytes do not decode; the message names `what`.
    """
    try:
        return message_type.FromString(data)
    except (DecodeError, ValueError, RecursionError) as error:
        raise WireError(f"{what} does not decode: {error}") from None
