"""Unit tests for common.blockstore: appends, queries, reopens, torn tails, corruption.

Blocks are real common.Block protos whose envelopes carry a ChannelHeader tx id. The
helpers at the top (`make_block`, `make_chain`, `record_offsets`) are shared with the
crash test.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest

from common.blockstore import INDEX_FILE, BlockStore, OpenCheck
from common.blockstore._blocks import serialized_parts
from common.blockstore._index import TX_FLUSH_BLOCKS, BlockIndex
from common.blockstore._records import HEADER_SIZE, encode_record
from common.errors import (
    BlockNotFound,
    BlockRejected,
    BlockStoreError,
    CorruptBlockStore,
    TxNotFound,
)
from common.protoutil import block_header_hash
from protos.common import common_pb2
from protos.peer import transaction_pb2

VALID = transaction_pb2.TxValidationCode.VALID
MVCC = transaction_pb2.TxValidationCode.MVCC_READ_CONFLICT
FIRST_FILE = "blockfile_000000"


def make_envelope(tx_id: str, *, data_size: int = 16) -> bytes:
    """An endorser-transaction envelope whose ChannelHeader carries `tx_id`."""
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION, channel_id="ward", tx_id=tx_id
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(), signature_header=b"creator"
    )
    payload = common_pb2.Payload(header=header, data=b"d" * data_size)
    return common_pb2.Envelope(
        payload=payload.SerializeToString(), signature=b"signature"
    ).SerializeToString()


def make_block(
    number: int,
    previous_hash: bytes,
    tx_ids: Sequence[str],
    *,
    codes: Sequence[int] | None = None,
    data_size: int = 16,
) -> common_pb2.Block:
    """A block of one envelope per tx id, a correct data hash and an optional filter."""
    envelopes = [make_envelope(tx_id, data_size=data_size) for tx_id in tx_ids]
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.header.data_hash = hashlib.sha256(b"".join(envelopes)).digest()
    block.data.data.extend(envelopes)
    metadata = [b""] * 5
    if codes is not None:
        metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER] = bytes(codes)
    block.metadata.metadata.extend(metadata)
    return block


def make_chain(
    count: int, *, txs_per_block: int = 3, start: int = 0, previous_hash: bytes = b""
) -> list[common_pb2.Block]:
    """`count` linked blocks from `start`, tx ids `tx-<block>-<position>`."""
    blocks = []
    for number in range(start, start + count):
        tx_ids = [f"tx-{number}-{position}" for position in range(txs_per_block)]
        block = make_block(number, previous_hash, tx_ids)
        previous_hash = block_header_hash(block.header)
        blocks.append(block)
    return blocks


def record_offsets(blocks: Sequence[common_pb2.Block]) -> list[int]:
    """Where each block's record starts in a single block file."""
    offsets, position = [], 0
    for block in blocks:
        offsets.append(position)
        position += HEADER_SIZE + len(block.SerializeToString())
    return offsets


def store_with(path: Path, blocks: Sequence[common_pb2.Block], **options: int) -> None:
    """Append `blocks` to a fresh store in `path` and close it."""
    with BlockStore.open(path, **options) as store:  # type: ignore[arg-type]
        for block in blocks:
            store.append(block)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        value = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([value ^ 0x40]))


# Appending and reading


def test_append_then_read_by_number_hash_and_tx_id(tmp_path: Path) -> None:
    """Every query finds the block it should, decoded from the exact appended bytes."""
    blocks = make_chain(3)
    with BlockStore.open(tmp_path) as store:
        for block in blocks:
            store.append(block)
        assert store.height == 3
        assert store.block_by_number(1) == blocks[1]
        assert store.block_bytes(2) == blocks[2].SerializeToString()
        assert store.block_by_hash(block_header_hash(blocks[2].header)) == blocks[2]
        assert store.block_by_tx_id("tx-1-2") == blocks[1]


def test_tx_by_id_returns_envelope_code_and_place(tmp_path: Path) -> None:
    """The tx index records the TRANSACTIONS_FILTER code the block was appended with."""
    block = make_block(0, b"", ["a", "b"], codes=[VALID, MVCC])
    with BlockStore.open(tmp_path) as store:
        store.append(block)
        stored = store.tx_by_id("b")
        assert stored.envelope == block.data.data[1]
        assert (stored.validation_code, stored.block_number, stored.position) == (
            MVCC,
            0,
            1,
        )
        assert store.tx_validation_code("a") == VALID
        assert store.has_tx("a")
        assert not store.has_tx("c")


def test_append_indexes_tx_ids_the_caller_decoded(tmp_path: Path) -> None:
    """Given tx ids are indexed as given ("" skipped); a wrong count is refused."""
    block = make_block(0, b"", ["a", "b"], codes=[VALID, MVCC])
    with BlockStore.open(tmp_path) as store:
        with pytest.raises(BlockRejected, match="1 tx ids given for a block of 2"):
            store.append(block, tx_ids=["a"])
        store.append(block, tx_ids=["a", ""])
        assert store.tx_validation_code("a") == VALID
        assert not store.has_tx("b")
        assert store.height == 1


def test_stored_tx_ids_finds_many_at_once(tmp_path: Path) -> None:
    """Valid or not, stored tx ids are found; more than one statement's worth too."""
    with BlockStore.open(tmp_path) as store:
        store.append(make_block(0, b"", ["a", "b"], codes=[VALID, MVCC]))
        asked = ["b", "nope", "a", "b", *(f"x{i}" for i in range(1200))]
        assert store.stored_tx_ids(asked) == {"a", "b"}
        assert store.stored_tx_ids([]) == set()


def test_block_without_filter_indexes_every_tx_as_valid(tmp_path: Path) -> None:
    """Orderer blocks carry no filter yet; their transactions count as VALID."""
    with BlockStore.open(tmp_path) as store:
        store.append(make_block(0, b"", ["a"]))
        assert store.tx_validation_code("a") == VALID


def test_envelopes_without_tx_id_are_not_indexed(tmp_path: Path) -> None:
    """Envelopes without a tx id, and bytes that are no envelope, are skipped."""
    block = make_block(0, b"", ["", "real"])
    block.data.data.append(b"\xff\xff not an envelope")
    block.header.data_hash = hashlib.sha256(b"".join(block.data.data)).digest()
    with BlockStore.open(tmp_path) as store:
        store.append(block)
        assert store.tx_by_id("real").position == 1
        assert not store.has_tx("")


def test_duplicate_tx_id_keeps_first_occurrence(tmp_path: Path) -> None:
    """A tx id repeated in the same or a later block stays at its first place."""
    first = make_block(0, b"", ["dup", "dup"], codes=[VALID, MVCC])
    second = make_block(1, block_header_hash(first.header), ["dup"], codes=[MVCC])
    with BlockStore.open(tmp_path) as store:
        store.append(first)
        store.append(second)
        stored = store.tx_by_id("dup")
        assert (stored.block_number, stored.position, stored.validation_code) == (
            0,
            0,
            VALID,
        )


def test_blockchain_info_tracks_the_last_two_headers(tmp_path: Path) -> None:
    blocks = make_chain(2)
    with BlockStore.open(tmp_path) as store:
        assert store.blockchain_info().height == 0
        assert store.blockchain_info().currentBlockHash == b""
        for block in blocks:
            store.append(block)
        info = store.blockchain_info()
    assert info.height == 2
    assert info.currentBlockHash == block_header_hash(blocks[1].header)
    assert info.previousBlockHash == block_header_hash(blocks[0].header)


def test_missing_block_and_tx_raise_not_found(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path) as store:
        store.append(make_chain(1)[0])
        with pytest.raises(BlockNotFound):
            store.block_by_number(1)
        with pytest.raises(BlockNotFound):
            store.block_by_number(-1)
        with pytest.raises(BlockNotFound):
            store.block_by_hash(b"\x00" * 32)
        with pytest.raises(TxNotFound) as raised:
            store.tx_by_id("nope")
        assert raised.value.tx_id == "nope"


# Rejected appends: one field wrong at a time


def _wrong_number(block: common_pb2.Block) -> None:
    block.header.number = 3


def _stale_number(block: common_pb2.Block) -> None:
    block.header.number = 0


def _wrong_previous_hash(block: common_pb2.Block) -> None:
    block.header.previous_hash = b"\x01" * 32


def _wrong_data_hash(block: common_pb2.Block) -> None:
    block.header.data_hash = b"\x02" * 32


def _short_filter(block: common_pb2.Block) -> None:
    block.metadata.metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER] = b"\x00"


@pytest.mark.parametrize(
    "spoil",
    [
        _wrong_number,
        _stale_number,
        _wrong_previous_hash,
        _wrong_data_hash,
        _short_filter,
    ],
)
def test_append_rejects_a_block_that_does_not_extend_the_chain(
    tmp_path: Path, spoil: Callable[[common_pb2.Block], None]
) -> None:
    """Each check rejects its spoiled field; the store is unchanged and still works."""
    blocks = make_chain(3)
    with BlockStore.open(tmp_path) as store:
        store.append(blocks[0])
        store.append(blocks[1])
        bad = common_pb2.Block()
        bad.CopyFrom(blocks[2])
        spoil(bad)
        with pytest.raises(BlockRejected):
            store.append(bad)
        assert store.height == 2
        store.append(blocks[2])
    with BlockStore.open(tmp_path) as store:
        assert store.height == 3


def test_rejection_carries_expected_and_actual(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path) as store, pytest.raises(BlockRejected) as raised:
        store.append(make_chain(1, start=5)[0])
    assert (raised.value.expected, raised.value.actual) == (0, 5)


def test_genesis_block_must_have_empty_previous_hash(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path) as store, pytest.raises(BlockRejected):
        store.append(make_block(0, b"\x03" * 32, ["a"]))


def test_closed_store_refuses_appends_and_reads(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path)
    store.append(make_chain(1)[0])
    store.close()
    with pytest.raises(BlockStoreError, match="closed"):
        store.append(make_chain(2)[1])
    with pytest.raises(BlockStoreError, match="closed"):
        store.block_by_number(0)
    with pytest.raises(BlockStoreError, match="closed"):
        store.has_tx("tx-0-0")


# Reopening and recovery


def test_reopen_keeps_blocks_index_and_chain(tmp_path: Path) -> None:
    """After reopening, queries answer as before and the next block links on."""
    blocks = make_chain(4)
    store_with(tmp_path, blocks[:3])
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.torn_tail is None
        assert store.recovery.blocks_indexed == 0
        assert store.recovery.records_checked == 3
        assert store.height == 3
        assert store.tx_by_id("tx-2-1").block_number == 2
        assert store.blockchain_info().currentBlockHash == block_header_hash(
            blocks[2].header
        )
        store.append(blocks[3])
        assert store.verify_all() == 4


def test_partial_record_at_tail_is_truncated_and_reported(tmp_path: Path) -> None:
    """A torn write (part of an unacknowledged record) is cut off at its offset."""
    blocks = make_chain(3)
    store_with(tmp_path, blocks[:2])
    path = tmp_path / FIRST_FILE
    size = path.stat().st_size
    record = encode_record(2, blocks[2].SerializeToString())
    with open(path, "ab") as file:
        file.write(record[: len(record) // 2])
    with BlockStore.open(tmp_path) as store:
        torn = store.recovery.torn_tail
        assert torn is not None
        assert (torn.path, torn.offset, torn.dropped_bytes) == (
            path,
            size,
            len(record) // 2,
        )
        assert store.height == 2
        store.append(blocks[2])
    assert path.stat().st_size == size + len(record)
    with BlockStore.open(tmp_path, check=OpenCheck.FULL) as store:
        assert store.height == 3
        assert store.recovery.torn_tail is None


@pytest.mark.parametrize("garbage", [b"\x00" * 100, b"MLBK" + b"\x07" * 50, b"x"])
def test_garbage_at_tail_is_truncated_and_logged(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    blocks = make_chain(2)
    store_with(tmp_path, blocks[:1])
    path = tmp_path / FIRST_FILE
    size = path.stat().st_size
    with open(path, "ab") as file:
        file.write(garbage)
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.torn_tail is not None
        assert store.recovery.torn_tail.offset == size
        store.append(blocks[1])
    assert f"offset={size}" in caplog.text
    assert str(path) in caplog.text


def test_unindexed_complete_record_is_indexed_on_open(tmp_path: Path) -> None:
    """A crash between fsync and index commit leaves a block that opening indexes."""
    blocks = make_chain(3)
    store_with(tmp_path, blocks[:2])
    with open(tmp_path / FIRST_FILE, "ab") as file:
        file.write(encode_record(2, blocks[2].SerializeToString()))
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.blocks_indexed == 1
        assert store.recovery.torn_tail is None
        assert store.tx_by_id("tx-2-0").block_number == 2


def test_flipped_byte_in_middle_block_names_file_and_offset(tmp_path: Path) -> None:
    """Acceptance: a flipped byte inside a stored block is reported at open."""
    blocks = make_chain(5)
    store_with(tmp_path, blocks)
    offsets = record_offsets(blocks)
    path = tmp_path / FIRST_FILE
    flip_byte(path, offsets[2] + HEADER_SIZE + 30)
    with pytest.raises(CorruptBlockStore) as raised:
        BlockStore.open(tmp_path)
    assert (raised.value.path, raised.value.offset) == (str(path), offsets[2])


@pytest.mark.parametrize("where", ["header", "last block"])
def test_damage_to_an_acknowledged_block_is_never_truncated(
    tmp_path: Path, where: str
) -> None:
    """A damaged header mid-file, or a damaged last block the index holds, raises."""
    blocks = make_chain(3)
    store_with(tmp_path, blocks)
    offsets = record_offsets(blocks)
    block_number = 1 if where == "header" else 2
    byte = 6 if where == "header" else HEADER_SIZE + 10
    flip_byte(tmp_path / FIRST_FILE, offsets[block_number] + byte)
    with pytest.raises(CorruptBlockStore) as raised:
        BlockStore.open(tmp_path)
    assert raised.value.offset == offsets[block_number]


def test_truncating_an_acknowledged_block_is_corruption(tmp_path: Path) -> None:
    """Blocks the index holds were fsynced; losing one is not a torn tail."""
    blocks = make_chain(3)
    store_with(tmp_path, blocks)
    path = tmp_path / FIRST_FILE
    offsets = record_offsets(blocks)
    os.truncate(path, path.stat().st_size - 5)
    with pytest.raises(CorruptBlockStore) as raised:
        BlockStore.open(tmp_path)
    assert (raised.value.path, raised.value.offset) == (str(path), offsets[2])


def test_tail_check_skips_old_records_and_verify_all_finds_them(tmp_path: Path) -> None:
    blocks = make_chain(4)
    store_with(tmp_path, blocks)
    offsets = record_offsets(blocks)
    flip_byte(tmp_path / FIRST_FILE, offsets[1] + HEADER_SIZE + 3)
    with BlockStore.open(tmp_path, check=OpenCheck.TAIL) as store:
        assert store.recovery.records_checked == 1
        with pytest.raises(CorruptBlockStore) as raised:
            store.verify_all()
        assert raised.value.offset == offsets[1]
        with pytest.raises(CorruptBlockStore):
            store.block_by_number(1)


def test_record_with_valid_checksum_but_broken_chain_is_corruption(
    tmp_path: Path,
) -> None:
    """A well-formed record that does not link to its predecessor is never indexed."""
    blocks = make_chain(2)
    store_with(tmp_path, blocks[:1])
    rogue = make_block(1, b"\x09" * 32, ["rogue"])
    with open(tmp_path / FIRST_FILE, "ab") as file:
        file.write(encode_record(1, rogue.SerializeToString()))
    with pytest.raises(CorruptBlockStore, match="previous hash"):
        BlockStore.open(tmp_path)


# Failures while appending


def test_failed_write_is_cut_back_and_the_store_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails halfway (disk full) leaves no partial record behind."""
    blocks = make_chain(2)
    real_write = os.write

    def write_half_then_fail(descriptor: int, parts: Sequence[bytes]) -> int:
        data = b"".join(parts)
        real_write(descriptor, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    with BlockStore.open(tmp_path) as store:
        store.append(blocks[0])
        size = (tmp_path / FIRST_FILE).stat().st_size
        monkeypatch.setattr(os, "writev", write_half_then_fail)
        with pytest.raises(BlockStoreError, match="could not write block 1"):
            store.append(blocks[1])
        monkeypatch.undo()
        assert (tmp_path / FIRST_FILE).stat().st_size == size
        store.append(blocks[1])
        assert store.verify_all() == 2


def test_short_writes_are_continued_until_the_record_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel may write less than asked (here 100 bytes a call); the append
    writes the rest."""
    blocks = make_chain(3)
    real_writev = os.writev

    def write_at_most_100_bytes(descriptor: int, parts: Sequence[bytes]) -> int:
        return real_writev(descriptor, [b"".join(bytes(part) for part in parts)[:100]])

    with BlockStore.open(tmp_path) as store:
        monkeypatch.setattr(os, "writev", write_at_most_100_bytes)
        for block in blocks:
            store.append(block)
        monkeypatch.undo()
        assert store.verify_all() == 3
        assert store.block_by_number(2) == blocks[2]


def test_failed_index_update_needs_a_reopen_which_indexes_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block is durable once written; the index catches up when the store reopens."""
    blocks = make_chain(3)
    store = BlockStore.open(tmp_path)
    store.append(blocks[0])
    with monkeypatch.context() as patch:
        patch.setattr(BlockIndex, "add_blocks", _raise_disk_io_error)
        with pytest.raises(sqlite3.OperationalError):
            store.append(blocks[1])
    with pytest.raises(BlockStoreError, match="reopened"):
        store.append(blocks[2])
    store.close()
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.blocks_indexed == 1
        store.append(blocks[2])
        assert store.tx_by_id("tx-1-0").block_number == 1


def _raise_disk_io_error(*_: object, **__: object) -> None:
    raise sqlite3.OperationalError("disk I/O error")


def test_read_back_checks_the_header_against_the_index(tmp_path: Path) -> None:
    """A block whose index row no longer matches it is reported, not returned."""
    store_with(tmp_path, make_chain(3))
    with sqlite3.connect(tmp_path / INDEX_FILE) as db:
        db.execute("UPDATE blocks SET previous_hash = x'00' WHERE number = 1")
    with BlockStore.open(tmp_path) as store:
        with pytest.raises(CorruptBlockStore, match="header differs"):
            store.block_by_number(1)
        with pytest.raises(CorruptBlockStore, match="index row"):
            store.verify_all()


# The index


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_lost_index_is_rebuilt_from_the_files(tmp_path: Path, damage: str) -> None:
    blocks = make_chain(3)
    store_with(tmp_path, blocks)
    index = tmp_path / INDEX_FILE
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    if damage == "deleted":
        index.unlink()
    else:
        index.write_bytes(b"this is not a database" * 100)
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.index_rebuilt
        assert store.recovery.blocks_indexed == 3
        assert store.block_by_hash(block_header_hash(blocks[1].header)) == blocks[1]
        assert store.tx_by_id("tx-2-2").position == 2


def test_index_behind_the_files_catches_up(tmp_path: Path) -> None:
    blocks = make_chain(3)
    store_with(tmp_path, blocks)
    with sqlite3.connect(tmp_path / INDEX_FILE) as db:
        db.execute("DELETE FROM blocks WHERE number = 2")
        db.execute("DELETE FROM txs WHERE block_number = 2")
    with BlockStore.open(tmp_path) as store:
        assert store.recovery.blocks_indexed == 1
        assert store.has_tx("tx-2-0")


def _tx_rows(path: Path) -> set[str]:
    with closing(sqlite3.connect(path / INDEX_FILE)) as db:
        return {tx_id for (tx_id,) in db.execute("SELECT tx_id FROM txs")}


def _copy_store(source: Path, target: Path) -> None:
    """The files as a SIGKILL would leave them (committed WAL frames included)."""
    target.mkdir()
    for path in source.iterdir():
        shutil.copyfile(path, target / path.name)


@pytest.mark.parametrize("check", [OpenCheck.TAIL, OpenCheck.CHECKSUMS])
def test_waiting_tx_rows_are_found_and_rebuilt_after_a_crash(
    tmp_path: Path, check: OpenCheck
) -> None:
    """Tx rows wait in memory, are found meanwhile, and a crash loses none of them."""
    blocks = make_chain(TX_FLUSH_BLOCKS + 3)
    # The same tx id in a waiting block and a later one keeps its first place.
    blocks[-1] = make_block(
        len(blocks) - 1,
        block_header_hash(blocks[-2].header),
        [f"tx-{TX_FLUSH_BLOCKS + 1}-0"],
        codes=[MVCC],
    )
    store = BlockStore.open(tmp_path / "live")
    for block in blocks:
        store.append(block)
    written = _tx_rows(tmp_path / "live")
    assert "tx-0-0" in written
    assert f"tx-{TX_FLUSH_BLOCKS + 1}-0" not in written  # still waiting
    assert store.tx_by_id(f"tx-{TX_FLUSH_BLOCKS + 1}-0").block_number == (
        TX_FLUSH_BLOCKS + 1
    )
    assert store.stored_tx_ids(["tx-0-1", f"tx-{TX_FLUSH_BLOCKS}-2", "nope"]) == {
        "tx-0-1",
        f"tx-{TX_FLUSH_BLOCKS}-2",
    }
    _copy_store(tmp_path / "live", tmp_path / "crashed")
    store.close()

    with BlockStore.open(tmp_path / "crashed", check=check) as reopened:
        assert reopened.recovery.blocks_indexed == 0
        found = _tx_rows(tmp_path / "crashed")
        for number, block in enumerate(blocks):
            for position, tx_id in enumerate(_tx_ids_of(block)):
                located = reopened.tx_by_id(tx_id)
                if (number, position) != (len(blocks) - 1, 0):
                    assert (located.block_number, located.position) == (
                        number,
                        position,
                    )
                assert tx_id in found
        repeated = reopened.tx_by_id(f"tx-{TX_FLUSH_BLOCKS + 1}-0")
        assert (repeated.block_number, repeated.validation_code) == (
            TX_FLUSH_BLOCKS + 1,
            VALID,
        )
    assert _tx_rows(tmp_path / "live") == found  # a clean close writes them too


def _tx_ids_of(block: common_pb2.Block) -> list[str]:
    return [
        common_pb2.ChannelHeader.FromString(
            common_pb2.Payload.FromString(
                common_pb2.Envelope.FromString(envelope).payload
            ).header.channel_header
        ).tx_id
        for envelope in block.data.data
    ]


def test_index_ahead_of_the_files_is_corruption(tmp_path: Path) -> None:
    """With a tiny file limit each block gets a file; losing the last one raises."""
    store_with(tmp_path, make_chain(3), file_size_max=1)
    (tmp_path / "blockfile_000002").unlink()
    with pytest.raises(CorruptBlockStore, match="index holds block 2") as raised:
        BlockStore.open(tmp_path)
    assert raised.value.path == str(tmp_path / "blockfile_000002")


# Block files


def test_rolls_over_to_new_files_and_reads_across_them(tmp_path: Path) -> None:
    blocks = make_chain(6)
    size = HEADER_SIZE + max(len(block.SerializeToString()) for block in blocks)
    store_with(tmp_path, blocks, file_size_max=2 * size + 10)
    names = sorted(path.name for path in tmp_path.glob("blockfile_*"))
    assert names == ["blockfile_000000", "blockfile_000001", "blockfile_000002"]
    with BlockStore.open(tmp_path, check=OpenCheck.FULL) as store:
        assert [block.header.number for block in store.iter_blocks()] == list(range(6))
        assert store.block_by_tx_id("tx-5-0") == blocks[5]


def test_damage_at_the_end_of_an_earlier_file_is_corruption(tmp_path: Path) -> None:
    """Only the last file can have a torn tail; later files prove the damage is old."""
    store_with(tmp_path, make_chain(3), file_size_max=1)
    path = tmp_path / FIRST_FILE
    with open(path, "ab") as file:
        file.write(b"\x00" * 10)
    with pytest.raises(CorruptBlockStore) as raised:
        BlockStore.open(tmp_path)
    assert raised.value.path == str(path)


def test_missing_block_file_in_the_middle_is_corruption(tmp_path: Path) -> None:
    store_with(tmp_path, make_chain(3), file_size_max=1)
    (tmp_path / "blockfile_000001").unlink()
    with pytest.raises(CorruptBlockStore, match="missing"):
        BlockStore.open(tmp_path)


# Waiting for blocks


def test_iter_blocks_from_a_number(tmp_path: Path) -> None:
    store_with(tmp_path, make_chain(4))
    with BlockStore.open(tmp_path) as store:
        assert [block.header.number for block in store.iter_blocks(2)] == [2, 3]
        assert list(store.iter_blocks(9)) == []


def test_wait_for_height_wakes_when_another_thread_appends(tmp_path: Path) -> None:
    blocks = make_chain(2)
    seen: list[int] = []
    with BlockStore.open(tmp_path) as store:
        remove = store.add_listener(lambda block: seen.append(block.header.number))
        store.append(blocks[0])
        writer = threading.Thread(target=store.append, args=(blocks[1],))
        writer.start()
        assert store.wait_for_height(2, timeout_s=10) == 2
        writer.join()
        remove()
        assert store.wait_for_height(3, timeout_s=0) == 2
    assert seen == [0, 1]


# Seeded model test and a small crash test


def test_random_appends_reopens_and_torn_writes_match_a_model(
    tmp_path: Path, seed: int
) -> None:
    """Random batches, open checks and torn tails; the store always equals the model."""
    rng = random.Random(seed)
    model: list[common_pb2.Block] = []
    for _ in range(6):
        options = {
            "check": rng.choice(list(OpenCheck)),
            "file_size_max": rng.choice([1, 700, 4096]),
        }
        with BlockStore.open(tmp_path, **options) as store:  # type: ignore[arg-type]
            assert store.height == len(model)
            previous = block_header_hash(model[-1].header) if model else b""
            for block in make_chain(
                rng.randrange(4),
                start=len(model),
                previous_hash=previous,
                txs_per_block=rng.randrange(1, 4),
            ):
                store.append(block)
                model.append(block)
        if model and rng.random() < 0.5:
            _write_torn_tail(tmp_path, rng)
    with BlockStore.open(tmp_path) as store:
        assert store.verify_all() == len(model)
        assert list(store.iter_blocks()) == model


def _write_torn_tail(directory: Path, rng: random.Random) -> None:
    last = sorted(directory.glob("blockfile_*"))[-1]
    with open(last, "ab") as file:
        file.write(rng.randbytes(rng.randrange(1, 60)))


WRITER = """
import sys
from common.blockstore import BlockStore
from common.protoutil import block_header_hash
from tests.unit.common.test_blockstore import make_chain

directory, file_size_max, txs_per_block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with BlockStore.open(directory, file_size_max=file_size_max) as store:
    info = store.blockchain_info()
    previous, number = info.currentBlockHash, info.height
    while True:
        block = make_chain(
            1, start=number, previous_hash=previous, txs_per_block=txs_per_block
        )[0]
        store.append(block)
        print(number, flush=True)
        previous, number = block_header_hash(block.header), number + 1
"""


def kill_writer_after(
    directory: Path,
    acknowledgements: int,
    *,
    file_size_max: int,
    txs_per_block: int = 20,
) -> int:
    """Run a writer subprocess, SIGKILL it after that many appends; the last acked.

    Returns -1 when it was killed before acknowledging anything.
    """
    arguments = [str(directory), str(file_size_max), str(txs_per_block)]
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    ) as writer:
        assert writer.stdout is not None
        assert writer.stderr is not None
        acknowledged = -1
        for _ in range(acknowledgements):
            line = writer.stdout.readline()
            if not line:
                pytest.fail(f"writer exited early: {writer.stderr.read()}")
            acknowledged = int(line)
        writer.kill()
    return acknowledged


def test_killed_writer_loses_no_acknowledged_block(tmp_path: Path, seed: int) -> None:
    """SIGKILL a writer mid-stream a few times; every acknowledged block survives."""
    rng = random.Random(seed)
    for _ in range(3):
        acknowledged = kill_writer_after(
            tmp_path, rng.randrange(1, 30), file_size_max=20_000
        )
        with BlockStore.open(tmp_path) as store:
            assert store.height > acknowledged
            assert store.verify_all() == store.height


# Serialization in parts


@pytest.mark.parametrize(
    "block",
    [
        common_pb2.Block(),
        common_pb2.Block(header=common_pb2.BlockHeader(number=7)),
        common_pb2.Block(data=common_pb2.BlockData()),
        common_pb2.Block(
            data=common_pb2.BlockData(data=[b"", b"x" * 200, b"y" * 5, b"w" * 20_000])
        ),
        common_pb2.Block.FromString(
            common_pb2.Block(data=common_pb2.BlockData(data=[b"z"])).SerializeToString()
            + b"\x22\x01a"  # an unknown field 4
        ),
    ],
    ids=["empty", "header-only", "empty-data", "envelopes", "unknown-field"],
)
def test_serialized_parts_join_to_the_serialized_block(
    block: common_pb2.Block,
) -> None:
    assert b"".join(serialized_parts(block)) == block.SerializeToString()


def test_serialized_parts_of_a_chain_join_to_the_serialized_blocks() -> None:
    for block in make_chain(3):
        assert b"".join(serialized_parts(block)) == block.SerializeToString()
