"""Reading committed blocks: per transaction its id, validation code, events and writes.

The gateway reads blocks a peer delivers (with the peer's TRANSACTIONS_FILTER) for
three things: commit status (tx id → code and block number), chaincode events of valid
transactions, and the `_lifecycle` writes that change chaincode definitions. Config
blocks carry the channel's new configuration. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.errors import WireError
from common.protoutil import (
    ParsedTransaction,
    parse_envelope,
    parse_transaction,
    transaction_filter,
)
from gateway.definitions import LIFECYCLE_NAMESPACE, is_definition_key
from protos.common import common_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import chaincode_event_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "BlockTx",
    "block_events",
    "block_transactions",
    "config_of",
    "lifecycle_writes",
]

VALID = TxValidationCode.VALID


@dataclass(frozen=True, slots=True)
class BlockTx:
    """One transaction of a committed block; `tx_id` is empty when its header is unreadable."""

    index: int
    tx_id: str
    header_type: int
    code: int
    envelope: bytes


def block_transactions(block: common_pb2.Block) -> Iterator[BlockTx]:
    """The block's transactions, in order, with their validation codes.

    A block without a filter (not validated) reports NOT_VALIDATED for each.

    Raises:
        WireError: the filter's length does not match the transactions.
    """
    codes = transaction_filter(block) or (TxValidationCode.NOT_VALIDATED,) * len(
        block.data.data
    )
    for index, (envelope, code) in enumerate(zip(block.data.data, codes, strict=True)):
        try:
            parsed = parse_envelope(envelope)
        except WireError:
            yield BlockTx(index, "", -1, code, envelope)
            continue
        yield BlockTx(index, parsed.tx_id, parsed.header_type, code, envelope)


def config_of(block: common_pb2.Block) -> ChannelConfig | None:
    """The channel configuration a config block carries, None for other blocks.

    Raises:
        ChannelConfigError: a config block whose config is malformed.
    """
    if len(block.data.data) != 1:
        return None
    try:
        envelope = parse_envelope(block.data.data[0])
    except WireError:
        return None
    if envelope.header_type != common_pb2.CONFIG:
        return None
    return ChannelConfig.from_block(block)


def _valid_transaction(tx: BlockTx) -> ParsedTransaction | None:
    if tx.code != VALID or tx.header_type != common_pb2.ENDORSER_TRANSACTION:
        return None
    try:
        return parse_transaction(tx.envelope)
    except WireError:
        return None


def block_events(
    block: common_pb2.Block, *, chaincode: str, after_tx_id: str = ""
) -> list[chaincode_event_pb2.ChaincodeEvent]:
    """The events `chaincode` emitted from valid transactions of the block, in order.

    With `after_tx_id`, transactions up to and including that one are skipped when it
    is in this block (a resumed stream); otherwise nothing is skipped.

    Raises:
        WireError: the block's transaction filter is malformed.
    """
    transactions = list(block_transactions(block))
    if after_tx_id:
        for tx in transactions:
            if tx.tx_id == after_tx_id:
                transactions = transactions[tx.index + 1 :]
                break
    events: list[chaincode_event_pb2.ChaincodeEvent] = []
    for tx in transactions:
        parsed = _valid_transaction(tx)
        if parsed is None or not parsed.chaincode_action.events:
            continue
        event = chaincode_event_pb2.ChaincodeEvent()
        try:
            event.ParseFromString(parsed.chaincode_action.events)
        except DecodeError:
            continue
        if event.chaincode_id != chaincode:
            continue
        if not event.tx_id:
            event.tx_id = tx.tx_id
        events.append(event)
    return events


def lifecycle_writes(tx: BlockTx) -> list[tuple[str, bytes | None]]:
    """The public `_lifecycle` definition writes of a valid transaction (None: delete)."""
    parsed = _valid_transaction(tx)
    if parsed is None:
        return []
    writes: list[tuple[str, bytes | None]] = []
    for ns in parsed.rwset.ns_rwsets:
        if ns.namespace != LIFECYCLE_NAMESPACE:
            continue
        kv = kv_rwset_pb2.KVRWSet()
        try:
            kv.ParseFromString(ns.rwset)
        except DecodeError:
            continue
        writes.extend(
            (write.key, None if write.is_delete else write.value)
            for write in kv.writes
            if is_definition_key(write.key)
        )
    return writes
