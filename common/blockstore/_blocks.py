"""What the block store needs to know about a block: hashes, links and tx ids.

Hashing follows Fabric: the data hash is SHA-256 over the concatenated envelope
bytes, the header hash is SHA-256 over DER SEQUENCE{INTEGER number, OCTET STRING
previous_hash, OCTET STRING data_hash}. Transaction ids come from each envelope's
ChannelHeader; validation codes from the block's TRANSACTIONS_FILTER metadata (one
byte per transaction).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.errors import WireError
from protos.common import common_pb2
from protos.peer import transaction_pb2

_TRANSACTIONS_FILTER = common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER
_VALID = transaction_pb2.TxValidationCode.VALID


@dataclass(frozen=True, slots=True)
class TxEntry:
    """One transaction of a block as the tx-id index records it."""

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


def inspect_block(block: common_pb2.Block) -> BlockFacts:
    """Hash a block and list its transactions.

    Raises:
        WireError: the TRANSACTIONS_FILTER is present but not one byte per tx.
    """
    header = block.header
    envelopes = block.data.data
    codes = validation_codes(block)
    txs = tuple(
        TxEntry(tx_id, position, codes[position])
        for position, tx_id in enumerate(map(tx_id_of, envelopes))
        if tx_id
    )
    return BlockFacts(
        number=header.number,
        previous_hash=header.previous_hash,
        data_hash=header.data_hash,
        header_hash=header_hash(header),
        computed_data_hash=data_hash(envelopes),
        txs=txs,
    )


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """SHA-256 of the DER encoding of a block header."""
    encoded = header_bytes(
        header.number, previous_hash=header.previous_hash, data_hash=header.data_hash
    )
    return hashlib.sha256(encoded).digest()


def header_bytes(number: int, *, previous_hash: bytes, data_hash: bytes) -> bytes:
    """DER SEQUENCE{INTEGER number, OCTET STRING prev_hash, OCTET STRING data_hash}."""
    integer = number.to_bytes(number.bit_length() // 8 + 1, "big")
    body = _der(0x02, integer) + _der(0x04, previous_hash) + _der(0x04, data_hash)
    return _der(0x30, body)


def data_hash(envelopes: Sequence[bytes]) -> bytes:
    """SHA-256 over the envelope bytes, concatenated in block order."""
    digest = hashlib.sha256()
    for envelope in envelopes:
        digest.update(envelope)
    return digest.digest()


def validation_codes(block: common_pb2.Block) -> bytes:
    """One code per transaction; an absent filter means every transaction is VALID.

    Orderers write blocks before any validation, so their filter is empty.
    """
    count = len(block.data.data)
    metadata = block.metadata.metadata
    stored = (
        metadata[_TRANSACTIONS_FILTER] if len(metadata) > _TRANSACTIONS_FILTER else b""
    )
    if not stored:
        return bytes([_VALID]) * count
    if len(stored) != count:
        raise WireError(
            f"block {block.header.number}: transactions filter has {len(stored)} "
            f"entries for {count} transactions"
        )
    return stored


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


def _der(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content
