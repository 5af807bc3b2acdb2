"""Running one invocation: decode the peer's message, call the chaincode, reply.

`Chaincode` is the low-level interface the shim serves (the contract API implements
it). `execute` turns a TRANSACTION or INIT message into the message that ends it:
COMPLETED with the chaincode's response and event, or ERROR when the message cannot be
decoded or the chaincode raised instead of returning a response.
"""

from __future__ import annotations

import logging
from typing import Protocol

from chaincode.shim import messages
from chaincode.shim.requester import PeerRequester
from chaincode.shim.stub import ChaincodeStub
from chaincode.shim.transaction import transaction_info
from common.errors import MedledgerError
from common.protoutil import ChaincodeResponse
from common.protoutil.chaincode import response_message
from protos.peer import chaincode_shim_pb2

_log = logging.getLogger(__name__)


class Chaincode(Protocol):
    """What the shim runs for each invocation.

    Return a response for every outcome (status ≥ 400 for failures, as Fabric's shims
    do); an exception is reported to the peer as an ERROR message.
    """

    async def init(self, stub: ChaincodeStub) -> ChaincodeResponse:
        """Handle an INIT message (Fabric 2 peers send TRANSACTION with is_init instead)."""
        ...

    async def invoke(self, stub: ChaincodeStub) -> ChaincodeResponse:
        """Handle a TRANSACTION message."""
        ...


async def execute(
    chaincode: Chaincode,
    message: chaincode_shim_pb2.ChaincodeMessage,
    requester: PeerRequester,
) -> chaincode_shim_pb2.ChaincodeMessage:
    """Run the chaincode for one TRANSACTION/INIT message; the COMPLETED or ERROR reply."""
    key = messages.tx_key(message)
    try:
        stub = ChaincodeStub(requester, transaction_info(message))
    except MedledgerError as error:
        _log.warning("undecodable invocation tx_id=%s: %s", message.txid, error)
        return messages.error_message(f"cannot decode the invocation: {error}", key=key)
    try:
        if message.type == messages.INIT:
            response = await chaincode.init(stub)
        else:
            response = await chaincode.invoke(stub)
    except Exception as error:
        _log.exception(
            "chaincode raised tx_id=%s channel=%s", message.txid, message.channel_id
        )
        return messages.error_message(f"chaincode failed: {error}", key=key)
    payload = response_message(response).SerializeToString()
    return messages.completed_message(payload, key=key, event=stub.event)
