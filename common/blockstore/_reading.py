"""Reading one stored block back, with the checks its record passed when written."""

from __future__ import annotations

from dataclasses import dataclass

from common.blockstore._files import BlockFileReader
from common.blockstore._index import BlockLocation
from common.blockstore._records import HEADER_SIZE, Damage, read_record
from common.errors import CorruptBlockStore


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTx:
    """A stored transaction: envelope bytes, validation code, place in the chain."""

    envelope: bytes
    validation_code: int
    block_number: int
    position: int


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
