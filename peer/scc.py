"""System chaincodes answered through ProcessProposal: qscc (ledger queries) and cscc.

Execute phase, in process: a proposal for `qscc` or `cscc` reaches the endorser like
any other (headers, creator and signature checked, no `peer/Propose` ACL) and is
answered here instead of by a chaincode process. As in Fabric 2.5:

    qscc  GetChainInfo CHANNEL                 BlockchainInfo
          GetBlockByNumber CHANNEL NUMBER      Block (its stored bytes)
          GetBlockByHash CHANNEL HASH          Block (HASH: the raw header hash bytes)
          GetTransactionByID CHANNEL TXID      ProcessedTransaction
          GetBlockByTxID CHANNEL TXID          Block
    cscc  GetConfigBlock CHANNEL               the channel's last config Block
          GetChannelConfig CHANNEL             its Config
          GetChannels                          ChannelQueryResponse (channel-less)

Every qscc function and cscc's channel functions check the ACL `<scc>/<function>`
(default /Channel/Application/Readers) of the channel named in the arguments against
the signed proposal; GetChannels needs a member of the peer's own MSP. Failures are
chaincode errors: a response with status 500 and Fabric's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError

from common.errors import (
    BlockStoreError,
    CryptoError,
    IdentityError,
    MedledgerError,
    PolicyError,
    WireError,
)
from common.msp import Identity, MspManager
from common.protoutil import (
    ChaincodeResponse,
    ParsedProposal,
    last_config_index,
    proposal_signed_data,
)
from peer.channels import Channels, PeerChannel
from protos.common import common_pb2
from protos.peer import query_pb2, transaction_pb2

__all__ = [
    "CSCC",
    "QSCC",
    "ConfigurationSystemChaincode",
    "QuerySystemChaincode",
    "SccInvocation",
    "SystemChaincode",
]

QSCC = "qscc"
CSCC = "cscc"
STATUS_OK = 200
STATUS_ERROR = 500


@dataclass(frozen=True, slots=True)
class SccInvocation:
    """A proposal for a system chaincode, its creator already validated and verified."""

    proposal: ParsedProposal
    creator: Identity


class SystemChaincode(Protocol):
    """A chaincode the peer answers itself."""

    @property
    def name(self) -> str: ...

    async def invoke(self, invocation: SccInvocation) -> ChaincodeResponse:
        """The chaincode's response; failures are responses with status 500."""
        ...


_Query = Callable[[PeerChannel, bytes], Awaitable[bytes]]


class QuerySystemChaincode:
    """qscc: blocks, transactions and chain info of a joined channel."""

    name = QSCC

    def __init__(self, channels: Channels) -> None:
        self._channels = channels
        self._functions: dict[str, _Query] = {
            "GetChainInfo": _chain_info,
            "GetBlockByNumber": _block_by_number,
            "GetBlockByHash": _block_by_hash,
            "GetTransactionByID": _transaction_by_id,
            "GetBlockByTxID": _block_by_tx_id,
        }

    async def invoke(self, invocation: SccInvocation) -> ChaincodeResponse:
        args = invocation.proposal.args
        if len(args) < 2:
            return _error(f"Incorrect number of arguments, {len(args)}")
        function, channel_id = _text(args[0]), _text(args[1])
        if function != "GetChainInfo" and len(args) < 3:
            return _error(f"missing 3rd argument for {function}")
        channel = self._channels.get(channel_id)
        if channel is None:
            return _error(f"Invalid chain ID, {channel_id}")
        query = self._functions.get(function)
        resource = f"{QSCC}/{function}"
        if query is None:
            return _error(f"Requested function {function} not found.")
        problem = _check_acl(channel, resource, invocation.proposal)
        if problem:
            return _error(f"access denied for [{function}][{channel_id}]: [{problem}]")
        argument = args[2] if len(args) > 2 else b""
        try:
            return ChaincodeResponse(STATUS_OK, "", await query(channel, argument))
        except _QueryFailed as error:
            return _error(str(error))


class ConfigurationSystemChaincode:
    """cscc: the joined channels and their config (joining is the admin service's)."""

    name = CSCC

    def __init__(self, channels: Channels, *, local_msp: MspManager) -> None:
        self._channels = channels
        self._local_msp = local_msp

    async def invoke(self, invocation: SccInvocation) -> ChaincodeResponse:
        args = invocation.proposal.args
        if len(args) < 1:
            return _error(f"Incorrect number of arguments, {len(args)}")
        function = _text(args[0])
        if function == "GetChannels":
            return self._get_channels(invocation.creator)
        if function not in ("GetConfigBlock", "GetChannelConfig"):
            return _error(f"Requested function {function} not found.")
        if len(args) < 2:
            return _error(f"Incorrect number of arguments, {len(args)}")
        channel_id = _text(args[1])
        channel = self._channels.get(channel_id)
        if channel is None:
            return _error(f"Unknown channel ID, {channel_id}")
        problem = _check_acl(channel, f"{CSCC}/{function}", invocation.proposal)
        if problem:
            return _error(f"access denied for [{function}][{channel_id}]: {problem}")
        if function == "GetChannelConfig":
            return ChaincodeResponse(STATUS_OK, "", channel.config.config_bytes)
        try:
            return ChaincodeResponse(STATUS_OK, "", await _config_block(channel))
        except _QueryFailed as error:
            return _error(str(error))

    def _get_channels(self, creator: Identity) -> ChaincodeResponse:
        try:
            identity = self._local_msp.deserialize_identity(creator.serialized)
            self._local_msp.validate(identity)
        except IdentityError as error:
            return _error(f"access denied for [GetChannels]: {error}")
        response = query_pb2.ChannelQueryResponse(
            channels=[
                query_pb2.ChannelInfo(channel_id=name)
                for name in self._channels.names()
            ]
        )
        return ChaincodeResponse(
            STATUS_OK, "", response.SerializeToString(deterministic=True)
        )


class _QueryFailed(MedledgerError):
    """A query could not be answered; the message is the chaincode error text."""


def _check_acl(channel: PeerChannel, resource: str, proposal: ParsedProposal) -> str:
    """Why the proposal's creator may not use `resource` on the channel ("" if it may)."""
    try:
        channel.check_signed_acl(resource, proposal_signed_data(proposal))
    except (PolicyError, IdentityError, CryptoError) as error:
        return str(error)
    return ""


async def _chain_info(channel: PeerChannel, _argument: bytes) -> bytes:
    info = await asyncio.to_thread(channel.ledger.blockchain_info)
    return info.SerializeToString(deterministic=True)


async def _block_by_number(channel: PeerChannel, argument: bytes) -> bytes:
    text = _text(argument)
    if not text.isdigit() or int(text) >= 1 << 64:
        raise _QueryFailed(f"Failed to parse block number with error {text!r}")
    number = int(text)
    store = channel.ledger.block_store
    try:
        return await asyncio.to_thread(store.block_bytes, number)
    except BlockStoreError as error:
        raise _QueryFailed(
            f"Failed to get block number {number}, error {error}"
        ) from None


async def _block_by_hash(channel: PeerChannel, argument: bytes) -> bytes:
    store = channel.ledger.block_store
    try:
        block = await asyncio.to_thread(store.block_by_hash, argument)
    except BlockStoreError as error:
        raise _QueryFailed(
            f"Failed to get block hash {argument.hex()}, error {error}"
        ) from None
    return block.SerializeToString()


async def _transaction_by_id(channel: PeerChannel, argument: bytes) -> bytes:
    tx_id = _text(argument)
    if not tx_id:
        raise _QueryFailed("Transaction ID must not be nil.")
    store = channel.ledger.block_store
    try:
        stored = await asyncio.to_thread(store.tx_by_id, tx_id)
        envelope = common_pb2.Envelope.FromString(stored.envelope)
    except (BlockStoreError, DecodeError) as error:
        raise _QueryFailed(
            f"Failed to get transaction with id {tx_id}, error {error}"
        ) from None
    processed = transaction_pb2.ProcessedTransaction(
        transactionEnvelope=envelope, validationCode=stored.validation_code
    )
    return processed.SerializeToString()


async def _block_by_tx_id(channel: PeerChannel, argument: bytes) -> bytes:
    tx_id = _text(argument)
    store = channel.ledger.block_store
    try:
        block = await asyncio.to_thread(store.block_by_tx_id, tx_id)
    except BlockStoreError as error:
        raise _QueryFailed(
            f"Failed to get block for txID {tx_id}, error {error}"
        ) from None
    return block.SerializeToString()


async def _config_block(channel: PeerChannel) -> bytes:
    store = channel.ledger.block_store

    def read() -> bytes:
        last = store.block_by_number(store.height - 1)
        return store.block_bytes(last_config_index(last))

    try:
        return await asyncio.to_thread(read)
    except (BlockStoreError, WireError) as error:
        raise _QueryFailed(f"failed to get the config block: {error}") from None


def _error(message: str) -> ChaincodeResponse:
    return ChaincodeResponse(STATUS_ERROR, message, b"")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
