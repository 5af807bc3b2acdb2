"""The block files of one store: naming, appending with fsync, rolling over, reading.

Files are `blockfile_000000`, `blockfile_000001`, ... in one folder; only the last
one is ever written, and only at its end. A new file is started when a record would
take the current one past the size limit (a larger record gets a file of its own).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.blockstore._records import Buffer
from common.errors import CorruptBlockStore

_NAME = re.compile(r"blockfile_(\d{6})")
_IOV_MAX = 1024
"""Buffers per `writev` call (Linux's limit)."""


def file_name(file_number: int) -> str:
    """The name of block file `file_number`."""
    return f"blockfile_{file_number:06d}"


def list_block_files(directory: Path) -> list[int]:
    """The numbers of the block files in `directory`, checked to run 0, 1, 2, ...

    Raises:
        CorruptBlockStore: a file in the sequence is missing.
    """
    numbers = sorted(
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _NAME.fullmatch(name)) is not None
    )
    for expected, number in enumerate(numbers):
        if number != expected:
            path = directory / file_name(expected)
            raise CorruptBlockStore("block file missing", path=str(path), offset=0)
    return numbers


@contextlib.contextmanager
def mapped(path: Path) -> Iterator[Buffer]:
    """The contents of a block file, mapped read-only (an empty file gives b"")."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as contents:
            yield contents


def fsync_directory(directory: Path) -> None:
    """Make file creations and truncations in `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def truncate_file(path: Path, size: int) -> None:
    """Cut a block file to `size` bytes and make that durable."""
    with open(path, "r+b") as file:
        file.truncate(size)
        os.fsync(file.fileno())


class BlockFileWriter:
    """Appends records to the last block file, one fsync each. Single writer only."""

    def __init__(
        self, directory: Path, *, file_number: int, file_size_max: int
    ) -> None:
        self.directory = directory
        self.file_size_max = file_size_max
        self.file_number = file_number
        self._descriptor = self._open(file_number)
        self.size = os.fstat(self._descriptor).st_size

    def append(self, *parts: bytes) -> tuple[int, int]:
        """Write one record (its `parts` back to back) durably; returns its
        (file number, offset).

        On a failed write the file is cut back to where the record started and the error
        propagates, so the file never keeps half a record from a write we saw fail.
        """
        length = sum(len(part) for part in parts)
        if self.size > 0 and self.size + length > self.file_size_max:
            self._roll_over()
        offset = self.size
        try:
            _write_all(self._descriptor, parts)
            _sync_data(self._descriptor)
        except OSError:
            os.ftruncate(self._descriptor, offset)
            raise
        self.size = offset + length
        return self.file_number, offset

    def close(self) -> None:
        """Close the file; further appends fail."""
        os.close(self._descriptor)

    def _roll_over(self) -> None:
        os.close(self._descriptor)
        self.file_number += 1
        self._descriptor = self._open(self.file_number)
        self.size = 0

    def _open(self, file_number: int) -> int:
        """Open a block file for appending; a new file's name is made durable first."""
        path = self.directory / file_name(file_number)
        created = not path.exists()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if created:
            fsync_directory(self.directory)
        return descriptor


class BlockFileReader:
    """Positional reads from any block file; safe to share between threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._descriptors: dict[int, int] = {}

    def read(self, file_number: int, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` of block file `file_number`."""
        return os.pread(self._descriptor(file_number), size, offset)

    def path(self, file_number: int) -> Path:
        """The path of block file `file_number`."""
        return self.directory / file_name(file_number)

    def close(self) -> None:
        """Close every open descriptor."""
        with self._lock:
            for descriptor in self._descriptors.values():
                os.close(descriptor)
            self._descriptors.clear()

    def _descriptor(self, file_number: int) -> int:
        with self._lock:
            descriptor = self._descriptors.get(file_number)
            if descriptor is None:
                descriptor = os.open(self.path(file_number), os.O_RDONLY)
                self._descriptors[file_number] = descriptor
            return descriptor


def _write_all(descriptor: int, parts: Sequence[bytes]) -> None:
    """Write `parts` in order, up to `_IOV_MAX` of them per system call."""
    pending = [memoryview(part) for part in parts if part]
    first = 0
    while first < len(pending):
        written = os.writev(descriptor, pending[first : first + _IOV_MAX])
        while first < len(pending) and written >= len(pending[first]):
            written -= len(pending[first])
            first += 1
        if written:
            pending[first] = pending[first][written:]


def _sync_data(descriptor: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(descriptor)
