"""Asking a peer's ledger about a transaction the gateway has not seen commit.

The commit tracker only knows blocks the gateway followed and keeps a bounded number
of recent transactions. For anything older, the gateway asks a peer's query system
chaincode, `qscc GetBlockByTxID`, signing the query with its own identity (a channel
reader), and reads the code from the block's transaction filter.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.message import DecodeError

from common.errors import WireError
from gateway.blocks import block_transactions
from gateway.commit import TxStatus
from gateway.context import GatewayContext
from protos.common import common_pb2

__all__ = ["find_transaction"]

_LOG = logging.getLogger(__name__)

_GET_BLOCK_BY_TX_ID = b"GetBlockByTxID"
_PEERS_TO_ASK = 2
_OK = 200


async def find_transaction(
    ctx: GatewayContext, channel: str, tx_id: str
) -> TxStatus | None:
    """Where `tx_id` committed according to a peer's ledger; None when it has not."""
    for peer in ctx.registry.evaluation_order(channel)[:_PEERS_TO_ASK]:
        try:
            response = await peer.query_system_chaincode(
                channel,
                [_GET_BLOCK_BY_TX_ID, channel.encode(), tx_id.encode()],
                creator=ctx.creator,
                signer=ctx.signer,
                deadline_s=ctx.timeouts.endorse_s,
            )
        except grpc.aio.AioRpcError as error:
            _LOG.debug(
                "ledger query failed peer=%s error=%s", peer.address, error.code()
            )
            continue
        if response.response.status != _OK:
            return None
        return _status_in(response.response.payload, tx_id)
    return None


def _status_in(block_bytes: bytes, tx_id: str) -> TxStatus | None:
    try:
        block = common_pb2.Block.FromString(block_bytes)
        for tx in block_transactions(block):
            if tx.tx_id == tx_id:
                return TxStatus(tx.code, block.header.number)
    except (DecodeError, WireError):
        return None
    return None
