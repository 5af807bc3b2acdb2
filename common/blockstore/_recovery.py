"""Opening a block store: walk the block files, check them, index what the index lacks.

Every record is checked against its CRC (unless the caller asks for a tail-only check),
every record the index does not yet hold is parsed and checked against the hash chain,
and the last indexed record is compared with its index row. Indexed blocks above the
index's `txs_through` (their tx rows were still waiting in memory when the process
stopped) are parsed again and their tx rows written. Damage is classified:

- a *torn tail* — damage in the last file, beyond every indexed (hence fsynced and
  acknowledged) record, with no intact record after it — is what an interrupted append
  leaves; it is cut off and reported;
- anything else is corruption and raises CorruptBlockStore with the file and offset.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from google.protobuf.message import DecodeError

from common.blockstore._blocks import BlockFacts, inspect_block
from common.blockstore._files import file_name, mapped, truncate_file
from common.blockstore._index import BlockIndex, BlockLocation, IndexedBlock
from common.blockstore._records import (
    Buffer,
    Damage,
    Record,
    find_intact_record,
    iter_records,
)
from common.errors import CorruptBlockStore, WireError
from protos.common import common_pb2

_LOG = logging.getLogger(__name__)
_INDEX_BATCH_BLOCKS = 256


class OpenCheck(enum.Enum):
    """How much of the store `BlockStore.open` checks before serving."""

    TAIL = "tail"
    """Only the last indexed record and everything after it: fastest."""
    CHECKSUMS = "checksums"
    """CRC of every record, plus the tail check; the default (about 4 GB/s)."""
    FULL = "full"
    """Parse every block and verify the whole hash chain, as `verify_all` does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TornTail:
    """The incomplete last record that was cut off while opening."""

    path: Path
    offset: int
    dropped_bytes: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryReport:
    """What opening the store found and did."""

    torn_tail: TornTail | None
    blocks_indexed: int
    index_rebuilt: bool
    records_checked: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tip:
    """The last stored block (None if empty) and the file the next record goes to."""

    last: IndexedBlock | None
    file_number: int
    file_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """The result of the open-time walk."""

    tip: Tip
    torn_tail: TornTail | None
    blocks_indexed: int
    records_checked: int


def recover(
    directory: Path, files: list[int], index: BlockIndex, *, check: OpenCheck
) -> Recovered:
    """Walk the block files from where `check` says, indexing and truncating as needed.

    Raises:
        CorruptBlockStore: damage that is not a torn tail, a broken hash chain, or an
            index that disagrees with the files.
    """
    return _Walk(directory, files, index, check=check).run()


def verify(directory: Path, files: list[int], index: BlockIndex) -> int:
    """Parse every indexed block; check the chain, data hashes and index rows.

    Stops at the last block indexed when called, so an append running meanwhile is not
    mistaken for damage. Returns the number of blocks checked.

    Raises:
        CorruptBlockStore: the first record that fails a check.
    """
    walk = _Walk(directory, files, index, check=OpenCheck.FULL, read_only=True)
    return walk.run().records_checked


class _Walk:
    """The state of one pass over the block files."""

    def __init__(
        self,
        directory: Path,
        files: list[int],
        index: BlockIndex,
        *,
        check: OpenCheck,
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.files = files
        self.index = index
        self.check = check
        self.indexed = index.last_block()
        self.limit = self._limit(read_only)
        self.expected_number = 0
        self.last: IndexedBlock | None = None
        self.read_only = read_only
        self.txs_through = index.txs_through
        self.pending: list[tuple[BlockFacts, BlockLocation]] = []
        self.pending_txs: list[BlockFacts] = []
        self.blocks_indexed = 0
        self.records_checked = 0
        self.torn_tail: TornTail | None = None

    def run(self) -> Recovered:
        start_file, start_offset = self._start()
        file_size = 0
        for file_number in self.files[start_file:]:
            file_size = self._walk_file(file_number, start_offset)
            start_offset = 0
        self._flush()
        self._check_index_reached()
        tip = Tip(
            last=self.last, file_number=max(len(self.files) - 1, 0), file_size=file_size
        )
        return Recovered(
            tip=tip,
            torn_tail=self.torn_tail,
            blocks_indexed=self.blocks_indexed,
            records_checked=self.records_checked,
        )

    def _limit(self, read_only: bool) -> int | None:
        """In read-only mode, the walk ends at the last indexed block."""
        if not read_only:
            return None
        return 0 if self.indexed is None else self.indexed.number + 1

    def _start(self) -> tuple[int, int]:
        if self.check is OpenCheck.TAIL and self.indexed is not None:
            first = self.indexed
            if self.txs_through < first.number and not self.read_only:
                first = self.index.block(self.txs_through + 1) or first
            self.expected_number = first.number
            return first.location.file_number, first.location.offset
        return 0, 0

    def _walk_file(self, file_number: int, start_offset: int) -> int:
        """Check the records of one file; returns its size after any truncation."""
        path = self.directory / file_name(file_number)
        with mapped(path) as contents:
            size = len(contents)
            for item in iter_records(contents, start_offset, check_payload=True):
                if self.expected_number == self.limit:
                    break
                if isinstance(item, Damage):
                    self.torn_tail = self._classify(item, file_number, contents)
                    break
                self._visit(item, file_number, contents)
        if self.torn_tail is not None:
            truncate_file(path, self.torn_tail.offset)
            _LOG.warning(
                "truncated torn block file tail path=%s offset=%d dropped_bytes=%d"
                " reason=%s",
                path,
                self.torn_tail.offset,
                self.torn_tail.dropped_bytes,
                self.torn_tail.reason,
            )
            return self.torn_tail.offset
        return size

    def _visit(self, record: Record, file_number: int, contents: Buffer) -> None:
        path = self.directory / file_name(file_number)
        self.records_checked += 1
        if record.block_number != self.expected_number:
            raise CorruptBlockStore(
                f"record holds block {record.block_number},"
                f" expected {self.expected_number}",
                path=str(path),
                offset=record.offset,
            )
        self.expected_number += 1
        indexed_number = -1 if self.indexed is None else self.indexed.number
        number = record.block_number
        lacks_txs = number > self.txs_through and not self.read_only
        if (
            number < indexed_number
            and not lacks_txs
            and self.check is not OpenCheck.FULL
        ):
            return
        facts = _parse(contents, record, path)
        stored = IndexedBlock(
            number=facts.number,
            location=BlockLocation(file_number, record.offset, record.length),
            header_hash=facts.header_hash,
            previous_hash=facts.previous_hash,
        )
        self._check_chain(facts, record, path)
        if record.block_number <= indexed_number:
            self._check_indexed(stored, path)
            if lacks_txs:
                self.pending_txs.append(facts)
        else:
            self._add(facts, stored.location)
        self.last = stored

    def _check_chain(self, facts: BlockFacts, record: Record, path: Path) -> None:
        """Number, data hash, and (when the previous block is known) the link to it."""
        if facts.number != record.block_number:
            _corrupt(f"block header says {facts.number}", path, record)
        if facts.data_hash != facts.computed_data_hash:
            _corrupt(
                f"block {facts.number} data hash does not match its data", path, record
            )
        expected_previous = self._previous_hash(facts.number)
        if expected_previous is not None and facts.previous_hash != expected_previous:
            _corrupt(
                f"block {facts.number} previous hash breaks the chain", path, record
            )

    def _previous_hash(self, number: int) -> bytes | None:
        if number == 0:
            return b""
        if self.last is not None and self.last.number == number - 1:
            return self.last.header_hash
        return None

    def _check_indexed(self, stored: IndexedBlock, path: Path) -> None:
        """An indexed block must sit where its index row says and hash as it says."""
        if self.index.block(stored.number) != stored:
            raise CorruptBlockStore(
                f"block {stored.number} disagrees with its index row",
                path=str(path),
                offset=stored.location.offset,
            )

    def _add(self, facts: BlockFacts, location: BlockLocation) -> None:
        self.pending.append((facts, location))
        if len(self.pending) >= _INDEX_BATCH_BLOCKS:
            self._flush()

    def _flush(self) -> None:
        if self.pending_txs:
            self.index.add_txs(self.pending_txs)
            self.pending_txs = []
        if self.pending:
            self.index.add_blocks(self.pending)
            self.blocks_indexed += len(self.pending)
            self.pending = []

    def _classify(self, damage: Damage, file_number: int, contents: Buffer) -> TornTail:
        """A torn tail; raise if damage precedes the indexed end or intact data."""
        path = self.directory / file_name(file_number)
        is_last_file = file_number == len(self.files) - 1
        if not is_last_file or self._is_indexed_position(file_number, damage.offset):
            raise CorruptBlockStore(damage.reason, path=str(path), offset=damage.offset)
        if find_intact_record(contents, damage.offset) is not None:
            raise CorruptBlockStore(damage.reason, path=str(path), offset=damage.offset)
        dropped = len(contents) - damage.offset
        return TornTail(
            path=path, offset=damage.offset, dropped_bytes=dropped, reason=damage.reason
        )

    def _is_indexed_position(self, file_number: int, offset: int) -> bool:
        if self.indexed is None:
            return False
        location = self.indexed.location
        return (file_number, offset) <= (location.file_number, location.offset)

    def _check_index_reached(self) -> None:
        """The files must hold every block the index knows (they were fsynced first)."""
        if self.indexed is not None and self.expected_number <= self.indexed.number:
            location = self.indexed.location
            raise CorruptBlockStore(
                f"index holds block {self.indexed.number}"
                " but the block files end before it",
                path=str(self.directory / file_name(location.file_number)),
                offset=location.offset,
            )


def _parse(contents: Buffer, record: Record, path: Path) -> BlockFacts:
    try:
        block = common_pb2.Block.FromString(
            contents[record.payload_offset : record.end]
        )
        return inspect_block(block)
    except (DecodeError, WireError) as error:
        raise CorruptBlockStore(
            f"block {record.block_number} does not parse: {error}",
            path=str(path),
            offset=record.offset,
        ) from error


def _corrupt(message: str, path: Path, record: Record) -> NoReturn:
    raise CorruptBlockStore(message, path=str(path), offset=record.offset)
