"""Checkpointers: where an event listener got to, so that it can resume without gaps.

A checkpoint is the next block to read and, inside it, the last transaction already
processed. `checkpoint_event` records an event as processed; `checkpoint_block`
records a whole block as processed (the next block starts fresh). Resuming asks the
gateway for that block with `after_transaction_id` set, so events already seen are not
delivered again. `FileCheckpointer` keeps the checkpoint in a JSON file (written
atomically: a temporary file renamed over the old one), `InMemoryCheckpointer` in memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from common.errors import ConfigError

__all__ = ["Checkpoint", "Checkpointer", "FileCheckpointer", "InMemoryCheckpointer"]


class Checkpoint(Protocol):
    """A position in the ledger that event streams resume from."""

    @property
    def block_number(self) -> int | None:
        """The next block to read; None before anything was checkpointed."""

    @property
    def transaction_id(self) -> str | None:
        """The last transaction processed within that block, if any."""


class Checkpointer(Checkpoint, Protocol):
    """A checkpoint that listeners move forward."""

    def checkpoint_block(self, block_number: int) -> None:
        """Block `block_number` is fully processed."""

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Transaction `transaction_id` of block `block_number` is processed."""


class InMemoryCheckpointer:
    """A checkpoint kept in memory (lost when the process ends)."""

    def __init__(self) -> None:
        self._block: int | None = None
        self._transaction: str | None = None

    @property
    def block_number(self) -> int | None:
        return self._block

    @property
    def transaction_id(self) -> str | None:
        return self._transaction

    def checkpoint_block(self, block_number: int) -> None:
        self._block = block_number + 1
        self._transaction = None

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        self._block = block_number
        self._transaction = transaction_id


class FileCheckpointer(InMemoryCheckpointer):
    """A checkpoint persisted as JSON `{"blockNumber": n, "transactionId": "…"}`.

    The file is created on the first checkpoint; a missing file means "from the start".
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        self._load()

    def checkpoint_block(self, block_number: int) -> None:
        super().checkpoint_block(block_number)
        self._save()

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        super().checkpoint_transaction(block_number, transaction_id)
        self._save()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as error:
            raise ConfigError(
                f"{self.path}: cannot read the checkpoint: {error}"
            ) from error
        try:
            document = json.loads(text)
            block = document.get("blockNumber")
            transaction = document.get("transactionId")
        except (ValueError, AttributeError) as error:
            raise ConfigError(f"{self.path}: not a checkpoint file: {error}") from error
        if block is not None and (
            isinstance(block, bool) or not isinstance(block, int)
        ):
            raise ConfigError(f"{self.path}: blockNumber is not an integer")
        if transaction is not None and not isinstance(transaction, str):
            raise ConfigError(f"{self.path}: transactionId is not text")
        self._block = block
        self._transaction = transaction or None

    def _save(self) -> None:
        document = {
            "blockNumber": self._block,
            "transactionId": self._transaction or "",
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, self.path)
