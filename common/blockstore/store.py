"""The block store: an append-only chain of blocks on disk, for peer and orderer.

Blocks go to `blockfile_NNNNNN` files in one folder, each framed by a checksummed
record and fsynced once; an SQLite index (`index.sqlite`, WAL) finds them by
number, header hash and tx id. The files are the truth: the index is rebuilt from
them when it is missing or behind. The caller sets the TRANSACTIONS_FILTER before
appending (the peer validates first); the store indexes the codes it is given.

Threads: one writer (append) at a time; any number of threads may read while it
writes. Readers only see blocks whose append has completed.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from common.blockstore import _recovery
from common.blockstore._blocks import BlockFacts, inspect_block, serialized_parts
from common.blockstore._files import BlockFileReader, BlockFileWriter, list_block_files
from common.blockstore._index import BlockIndex, BlockLocation, IndexedBlock, TxLocation
from common.blockstore._reading import StoredTx, read_block, read_block_bytes
from common.blockstore._records import record_header
from common.blockstore._recovery import OpenCheck, RecoveryReport
from common.errors import (
    BlockNotFound,
    BlockRejected,
    BlockStoreError,
    TxNotFound,
    WireError,
)
from protos.common import common_pb2, ledger_pb2

_LOG = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite"
FILE_SIZE_MAX = 64 * 1024 * 1024

BlockListener = Callable[[common_pb2.Block], None]
"""Called in the writer's thread after each append, with the block just stored."""


class BlockStore:
    """One chain of blocks in one folder. Open with `BlockStore.open`."""

    def __init__(
        self,
        directory: Path,
        *,
        index: BlockIndex,
        writer: BlockFileWriter,
        last: IndexedBlock | None,
        recovery: RecoveryReport,
    ) -> None:
        self.directory = directory
        self.recovery = recovery
        self._index = index
        self._writer = writer
        self._reader = BlockFileReader(directory)
        self._last = last
        self._tip_changed = threading.Condition()
        self._writing = threading.Lock()
        """One append (or close) at a time: two threads appending the same block
        would both pass the height check and write it twice."""
        self._listeners: list[BlockListener] = []
        self._broken: str | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: Path | str,
        *,
        check: OpenCheck = OpenCheck.CHECKSUMS,
        file_size_max: int = FILE_SIZE_MAX,
    ) -> BlockStore:
        """Open (or create) the store in `directory`, recovering from a crash if needed.

        A torn last record is cut off and reported in `recovery.torn_tail` (and logged).

        Raises:
            CorruptBlockStore: a damaged record that is not a torn tail, a broken hash
                chain, or an index that claims blocks the files do not hold.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        files = list_block_files(folder)
        index, rebuilt = _open_index(folder / INDEX_FILE)
        try:
            found = _recovery.recover(folder, files, index, check=check)
        except BaseException:
            index.close()
            raise
        writer = BlockFileWriter(
            folder, file_number=found.tip.file_number, file_size_max=file_size_max
        )
        report = RecoveryReport(
            torn_tail=found.torn_tail,
            blocks_indexed=found.blocks_indexed,
            index_rebuilt=rebuilt,
            records_checked=found.records_checked,
        )
        return cls(
            folder, index=index, writer=writer, last=found.tip.last, recovery=report
        )

    # Writing

    def append(
        self, block: common_pb2.Block, *, tx_ids: Sequence[str] | None = None
    ) -> None:
        """Store `block` durably (one fsync) and index it.

        `tx_ids` may give each envelope's ChannelHeader tx id ("" when it has
        none or does not decode), when the caller has decoded them already; the
        index then trusts them instead of decoding every envelope again.

        Raises:
            BlockRejected: the number is not the height, the previous hash is not the
                last block's header hash, the data hash does not match the data, or
                the transactions filter or `tx_ids` does not have one entry per
                transaction.
            BlockStoreError: the store is closed, or an earlier append failed halfway.
        """
        facts = _inspect(block, tx_ids)
        with self._writing:
            self._check_writable()
            self._check_extends_chain(facts)
            location = self._write(facts.number, serialized_parts(block))
            self._index_or_break(facts, location)
            self._advance(facts, location)
        for listener in list(self._listeners):
            listener(block)

    def add_listener(self, listener: BlockListener) -> Callable[[], None]:
        """Call `listener` after every later append; returns a function removing it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # Reading

    @property
    def height(self) -> int:
        """The number of blocks stored (the next block's number)."""
        last = self._last
        return 0 if last is None else last.number + 1

    def blockchain_info(self) -> ledger_pb2.BlockchainInfo:
        """Height plus the header hashes of the last block and the one before it."""
        last = self._last
        if last is None:
            return ledger_pb2.BlockchainInfo(height=0)
        return ledger_pb2.BlockchainInfo(
            height=last.number + 1,
            currentBlockHash=last.header_hash,
            previousBlockHash=last.previous_hash,
        )

    def block_bytes(self, number: int) -> bytes:
        """The exact stored bytes of block `number`.

        Raises:
            BlockNotFound: no such block.
            CorruptBlockStore: the stored record fails its checksum.
        """
        row = self._row(number)
        return read_block_bytes(self._reader, row.location, number)

    def block_by_number(self, number: int) -> common_pb2.Block:
        """Block `number`, decoded from its stored bytes and checked against its index row.

        Raises:
            BlockNotFound: no such block.
            CorruptBlockStore: the record fails its checksum, or its header is not the
                one appended (number, previous hash and header hash are re-checked).
        """
        return read_block(self._reader, self._row(number))

    def block_by_hash(self, header_hash: bytes) -> common_pb2.Block:
        """The block whose header hashes to `header_hash` (raises BlockNotFound)."""
        number = self._index.number_by_hash(header_hash)
        if number is None:
            raise BlockNotFound(f"no block with header hash {header_hash.hex()}")
        return self.block_by_number(number)

    def block_by_tx_id(self, tx_id: str) -> common_pb2.Block:
        """The block holding the first transaction `tx_id` (raises TxNotFound)."""
        return self.block_by_number(self._tx_location(tx_id).block_number)

    def tx_by_id(self, tx_id: str) -> StoredTx:
        """The envelope, validation code and block of `tx_id` (raises TxNotFound)."""
        location = self._tx_location(tx_id)
        block = self.block_by_number(location.block_number)
        return StoredTx(
            envelope=block.data.data[location.position],
            validation_code=location.validation_code,
            block_number=location.block_number,
            position=location.position,
        )

    def tx_validation_code(self, tx_id: str) -> int:
        """The TxValidationCode recorded for transaction `tx_id` (raises TxNotFound)."""
        return self._tx_location(tx_id).validation_code

    def has_tx(self, tx_id: str) -> bool:
        """Whether a transaction with id `tx_id` is stored (valid or not)."""
        return self._index.tx(tx_id) is not None

    def stored_tx_ids(self, tx_ids: Iterable[str]) -> set[str]:
        """Those of `tx_ids` that are stored (valid or not), in one look-up."""
        return self._index.stored_tx_ids(tx_ids)

    def iter_blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        """Blocks from `start` to the height, including blocks appended meanwhile."""
        number = start
        while number < self.height:
            yield self.block_by_number(number)
            number += 1

    def wait_for_height(self, height: int, *, timeout_s: float | None = None) -> int:
        """Block until at least `height` blocks are stored or the timeout passes.

        Returns the height reached, which is below `height` only after a timeout.
        """
        with self._tip_changed:
            self._tip_changed.wait_for(lambda: self.height >= height, timeout=timeout_s)
            return self.height

    def verify_all(self) -> int:
        """Re-read every block; check checksums, chain, data hashes and index rows.

        Returns the number of blocks checked. Safe to run while another thread appends.

        Raises:
            CorruptBlockStore: the first record that fails, with its file and offset.
        """
        return _recovery.verify(
            self.directory, list_block_files(self.directory), self._index
        )

    # Lifecycle

    def close(self) -> None:
        """Close files and index; the store must not be used afterwards."""
        with self._writing:  # after an append running in another thread
            if self._closed:
                return
            self._closed = True
            self._writer.close()
            self._reader.close()
            self._index.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Helpers

    def _check_writable(self) -> None:
        if self._closed:
            raise BlockStoreError("block store is closed")
        if self._broken is not None:
            raise BlockStoreError(f"block store must be reopened: {self._broken}")

    def _check_extends_chain(self, facts: BlockFacts) -> None:
        last = self._last
        expected_previous = b"" if last is None else last.header_hash
        if facts.number != self.height:
            raise BlockRejected(
                "number is not the height",
                block_number=facts.number,
                expected=self.height,
                actual=facts.number,
            )
        if facts.previous_hash != expected_previous:
            raise BlockRejected(
                "previous hash is not the last block's header hash",
                block_number=facts.number,
                expected=expected_previous,
                actual=facts.previous_hash,
            )
        if facts.data_hash != facts.computed_data_hash:
            raise BlockRejected(
                "data hash does not match the data",
                block_number=facts.number,
                expected=facts.computed_data_hash,
                actual=facts.data_hash,
            )

    def _write(self, number: int, payload: Sequence[bytes]) -> BlockLocation:
        """Append the record of a block serialized as `payload` (its parts in order)."""
        try:
            file_number, offset = self._writer.append(
                record_header(number, payload), *payload
            )
        except OSError as error:
            raise BlockStoreError(f"could not write block {number}: {error}") from error
        return BlockLocation(file_number, offset, sum(len(part) for part in payload))

    def _index_or_break(self, facts: BlockFacts, location: BlockLocation) -> None:
        """Index a durable block; if that fails, refuse appends until reopened.

        Reopening indexes the block from the files.
        """
        try:
            self._index.add_blocks([(facts, location)], wait=True)
        except BaseException as error:
            self._broken = f"indexing block {facts.number} failed: {error}"
            raise

    def _advance(self, facts: BlockFacts, location: BlockLocation) -> None:
        last = IndexedBlock(
            number=facts.number,
            location=location,
            header_hash=facts.header_hash,
            previous_hash=facts.previous_hash,
        )
        with self._tip_changed:
            self._last = last
            self._tip_changed.notify_all()

    def _row(self, number: int) -> IndexedBlock:
        row = self._index.block(number) if 0 <= number < self.height else None
        if row is None:
            raise BlockNotFound(f"no block {number}; height is {self.height}")
        return row

    def _tx_location(self, tx_id: str) -> TxLocation:
        location = self._index.tx(tx_id)
        if location is None:
            raise TxNotFound(f"no transaction {tx_id!r}", tx_id=tx_id)
        return location


def _inspect(block: common_pb2.Block, tx_ids: Sequence[str] | None) -> BlockFacts:
    try:
        return inspect_block(block, tx_ids=tx_ids)
    except WireError as error:
        raise BlockRejected(
            str(error), block_number=block.header.number, expected=None, actual=None
        ) from error


def _open_index(path: Path) -> tuple[BlockIndex, bool]:
    """Open the index, afresh if missing or unreadable; returns (index, rebuilt)."""
    existed = path.exists()
    try:
        return BlockIndex(path), not existed
    except sqlite3.DatabaseError as error:
        _LOG.warning("block index unreadable, rebuilding path=%s error=%s", path, error)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    return BlockIndex(path), True
