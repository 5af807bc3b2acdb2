"""Reading one stored block back, with the checks its record passed when written."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.blockstore._files import BlockFileReader
from common.blockstore._index import BlockLocation, IndexedBlock
from common.blockstore._records import HEADER_SIZE, Damage, read_record
from common.errors import CorruptBlockStore
from common.protoutil import block_header_hash
from protos.common import common_pb2


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTx:
    """A stored transaction: envelope bytes, validation code, place in the chain."""

    envelope: bytes
    validation_code: int
    block_number: int
    position: int


def read_block(reader: BlockFileReader, row: IndexedBlock) -> common_pb2.Block:
    """The block an index row points at, checked to be the block that was appended.

    The pair of the checks `append` made: same number, same previous hash, and a
    header that hashes to the hash the index recorded.

    Raises:
        CorruptBlockStore: the record is damaged or holds a different header.
    """
    data = read_block_bytes(reader, row.location, row.number)
    path = str(reader.path(row.location.file_number))
    try:
        block = common_pb2.Block.FromString(data)
    except DecodeError as error:
        raise CorruptBlockStore(
            f"block {row.number} does not parse: {error}",
            path=path,
            offset=row.location.offset,
        ) from error
    header = block.header
    if (header.number, header.previous_hash) != (row.number, row.previous_hash) or (
        block_header_hash(header) != row.header_hash
    ):
        raise CorruptBlockStore(
            f"block {row.number} header differs from the one appended",
            path=path,
            offset=row.location.offset,
        )
    return block


def read_block_bytes(
    reader: BlockFileReader, location: BlockLocation, number: int
) -> bytes:
    """The payload of the record at `location`, checked intact and holding `number`.

    Raises:
        CorruptBlockStore: the record is short, fails a checksum or holds another block.
    """
    data = reader.read(
        location.file_number, location.offset, HEADER_SIZE + location.length
    )
    record = read_record(data, 0, check_payload=True)
    path = str(reader.path(location.file_number))
    if isinstance(record, Damage):
        raise CorruptBlockStore(record.reason, path=path, offset=location.offset)
    if record.block_number != number or record.length != location.length:
        raise CorruptBlockStore(
            f"record holds block {record.block_number}, index says {number}",
            path=path,
            offset=location.offset,
        )
    return data[HEADER_SIZE:]
