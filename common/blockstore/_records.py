"""The on-disk record that frames one block in a block file, and its scanner.

A record is a fixed 24-byte header followed by the block's serialized bytes, unchanged:

    magic        4 bytes  b"MLBK"
    length       u32      payload length in bytes
    block_number u64      the number in the block's header
    payload_crc  u32      zlib CRC-32 of the payload
    header_crc   u32      zlib CRC-32 of the 20 bytes above

Big-endian throughout. The header has its own checksum so that a damaged length field is
reported as damage instead of being trusted to skip over valid records.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAGIC = b"MLBK"
_HEADER = struct.Struct(">4sIQI")
_HEADER_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size
PAYLOAD_MAX = 2**32 - 1

Buffer = bytes | mmap.mmap
"""Block file contents: read into memory, or mapped."""


@dataclass(frozen=True, slots=True)
class Record:
    """A record whose header (and, when checked, payload) passed its checksum."""

    offset: int
    block_number: int
    length: int

    @property
    def payload_offset(self) -> int:
        """Where the block bytes start."""
        return self.offset + HEADER_SIZE

    @property
    def end(self) -> int:
        """The offset just past this record, where the next one starts."""
        return self.offset + HEADER_SIZE + self.length


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes at `offset` that are not a whole, intact record; `reason` says why."""

    offset: int
    reason: str


def encode_record(block_number: int, payload: bytes) -> bytes:
    """The header and payload of one record, as one byte string."""
    return record_header(block_number, [payload]) + payload


def record_header(block_number: int, payload_parts: Sequence[bytes]) -> bytes:
    """The 24-byte header of the record framing the concatenated `payload_parts`.

    Appending writes the header and the parts without joining them: a block
    is megabytes, and a fresh buffer that size costs page faults on every append.
    """
    length = sum(len(part) for part in payload_parts)
    if length > PAYLOAD_MAX:
        raise ValueError(f"block {block_number} is {length} bytes, over 4 GiB")
    crc = 0
    for part in payload_parts:
        crc = zlib.crc32(part, crc)
    head = _HEADER.pack(MAGIC, length, block_number, crc)
    return head + _HEADER_CRC.pack(zlib.crc32(head))


def read_record(buffer: Buffer, offset: int, *, check_payload: bool) -> Record | Damage:
    """Decode the record at `offset`; damage if it is short or a checksum fails."""
    if len(buffer) - offset < HEADER_SIZE:
        return Damage(offset, "short record header")
    with memoryview(buffer) as view:
        magic, length, number, payload_crc = _HEADER.unpack_from(view, offset)
        (header_crc,) = _HEADER_CRC.unpack_from(view, offset + _HEADER.size)
        head_ok = zlib.crc32(view[offset : offset + _HEADER.size]) == header_crc
        if magic != MAGIC or not head_ok:
            return Damage(offset, "bad record header")
        record = Record(offset, number, length)
        if record.end > len(buffer):
            return Damage(offset, "short record payload")
        payload = view[record.payload_offset : record.end]
        if check_payload and zlib.crc32(payload) != payload_crc:
            return Damage(offset, "payload checksum mismatch")
    return record


def iter_records(
    buffer: Buffer, start: int, *, check_payload: bool
) -> Iterator[Record | Damage]:
    """Records from `start` to the end of `buffer`; stops after the first damage."""
    offset = start
    while offset < len(buffer):
        item = read_record(buffer, offset, check_payload=check_payload)
        yield item
        if isinstance(item, Damage):
            return
        offset = item.end


def find_intact_record(buffer: Buffer, start: int) -> int | None:
    """The offset of the first intact record that begins after `start`, if any.

    Used after damage: if an intact record follows, the damage is in the middle of the
    store (corruption); if none does, it is a torn tail left by an interrupted append.
    """
    position = buffer.find(MAGIC, start + 1)
    while position != -1:
        if isinstance(read_record(buffer, position, check_payload=True), Record):
            return position
        position = buffer.find(MAGIC, position + 1)
    return None
