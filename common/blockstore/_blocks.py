"""What the block store needs to know about a block: hashes, links and tx ids.

Hashes come from common.protoutil (Fabric's data hash and DER header hash). Tx ids
come from each envelope's ChannelHeader, read with three plain decodes because this
runs for every transaction of every appended block; validation codes come from the
block's TRANSACTIONS_FILTER metadata (one byte per transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import (  # type: ignore[import-not-found]
    UnknownFieldSet,  # not in the protobuf stubs
)

from common.errors import WireError
from common.protoutil import (
    block_data_hash,
    block_header_hash,
    length_delimited_head,
    transaction_filter,
)
from protos.common import common_pb2
from protos.peer import transaction_pb2

_VALID = transaction_pb2.TxValidationCode.VALID


class TxEntry(NamedTuple):
    """One transaction of a block as the tx-id index records it (one per transaction)."""

    tx_id: str
    position: int
    validation_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockFacts:
    """The header fields of a block, its hashes, and the transactions to index."""

    number: int
    previous_hash: bytes
    data_hash: bytes
    header_hash: bytes
    computed_data_hash: bytes
    txs: tuple[TxEntry, ...]


def inspect_block(
    block: common_pb2.Block, *, tx_ids: Sequence[str] | None = None
) -> BlockFacts:
    """Hash a block and list its transactions.

    `tx_ids`, when given, holds each envelope's tx id as `tx_id_of` reads it (""
    for none), from a caller that decoded the envelopes already; they are not
    decoded again.

    Raises:
        WireError: the TRANSACTIONS_FILTER is present but not one byte per tx, or
            `tx_ids` does not have one entry per transaction.
    """
    header = block.header
    envelopes = block.data.data
    codes = validation_codes(block)
    if tx_ids is None:
        tx_ids = [tx_id_of(envelope) for envelope in envelopes]
    elif len(tx_ids) != len(envelopes):
        raise WireError(
            f"{len(tx_ids)} tx ids given for a block of {len(envelopes)} transactions"
        )
    txs = tuple(
        TxEntry(tx_id, position, codes[position])
        for position, tx_id in enumerate(tx_ids)
        if tx_id
    )
    return BlockFacts(
        number=header.number,
        previous_hash=header.previous_hash,
        data_hash=header.data_hash,
        header_hash=block_header_hash(header),
        computed_data_hash=block_data_hash(envelopes),
        txs=txs,
    )


def validation_codes(block: common_pb2.Block) -> bytes:
    """One code per transaction; an absent filter means every transaction is VALID.

    Orderers write blocks before any validation, so their filter is empty.

    Raises:
        WireError: the filter is present but not one byte per transaction.
    """
    codes = transaction_filter(block)
    return bytes(codes) if codes else bytes([_VALID]) * len(block.data.data)


def tx_id_of(envelope: bytes) -> str:
    """The ChannelHeader tx id of an envelope; "" if it has none or does not parse."""
    try:
        payload = common_pb2.Payload.FromString(
            common_pb2.Envelope.FromString(envelope).payload
        )
        channel_header = common_pb2.ChannelHeader.FromString(
            payload.header.channel_header
        )
    except DecodeError:
        return ""
    return channel_header.tx_id


def serialized_parts(block: common_pb2.Block) -> list[bytes]:
    """`block.SerializeToString()` as pieces whose concatenation is those bytes.

    A block of a few hundred transactions is megabytes; serializing it whole
    grows and copies buffers that size (page faults on every append), while
    its envelopes are already separate byte strings. The Block and BlockData
    frames are written here, field by field in number order as the protobuf
    runtime does; a block or data carrying unknown fields is serialized whole.
    """
    if _has_unknown_fields(block) or _has_unknown_fields(block.data):
        return [block.SerializeToString()]
    parts: list[bytes] = []
    if block.HasField("header"):
        header = block.header.SerializeToString()
        parts.append(length_delimited_head(1, len(header)))
        parts.append(header)
    if block.HasField("data"):
        envelopes = list(block.data.data)
        heads = [length_delimited_head(1, len(envelope)) for envelope in envelopes]
        size = sum(len(head) for head in heads) + sum(map(len, envelopes))
        parts.append(length_delimited_head(2, size))
        for head, envelope in zip(heads, envelopes, strict=True):
            parts.append(head)
            parts.append(envelope)
    if block.HasField("metadata"):
        metadata = block.metadata.SerializeToString()
        parts.append(length_delimited_head(3, len(metadata)))
        parts.append(metadata)
    return parts


def _has_unknown_fields(message: Message) -> bool:
    return len(UnknownFieldSet(message)) > 0
