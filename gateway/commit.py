"""Commit tracking: which transactions committed, with which code, in which block.

One `CommitTracker` per channel is fed every block the gateway's channel follower
receives from a peer. It resolves `CommitStatus` waits by transaction id and keeps a
bounded index of recent commits (the first occurrence of a tx id is the one that
counts: later ones are duplicates). A transaction that committed before the index's
`complete_from` block may have been evicted (or never seen); `CommitStatus` then asks
the ledger through qscc (see `commit_status.py`).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_CAPACITY", "CommitTracker", "TxStatus"]

DEFAULT_CAPACITY = 200_000
"""Transactions kept in the recent-commit index."""


@dataclass(frozen=True, slots=True)
class TxStatus:
    """A committed transaction's validation code and block number."""

    code: int
    block_number: int


class CommitTracker:
    """Commit outcomes of one channel, and the CommitStatus calls waiting for them."""

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._index: collections.OrderedDict[str, TxStatus] = collections.OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[TxStatus]]] = {}
        self._next_block = 0
        self._complete_from = 0

    @property
    def next_block(self) -> int:
        """The number of the next block to be recorded (the height seen so far)."""
        return self._next_block

    @property
    def complete_from(self) -> int:
        """Every transaction in blocks from this number on is in the index."""
        return self._complete_from

    def record_block(
        self, number: int, transactions: Iterable[tuple[str, int]]
    ) -> None:
        """Record block `number`'s (tx id, code) pairs and wake their waiters."""
        if number < self._next_block:
            return
        if number > self._next_block:
            self._complete_from = number
        self._next_block = number + 1
        for tx_id, code in transactions:
            if not tx_id or tx_id in self._index:
                continue
            status = TxStatus(code, number)
            self._index[tx_id] = status
            for waiter in self._waiters.pop(tx_id, ()):
                if not waiter.done():
                    waiter.set_result(status)
        while len(self._index) > self._capacity:
            _, evicted = self._index.popitem(last=False)
            self._complete_from = max(self._complete_from, evicted.block_number + 1)

    def lookup(self, tx_id: str) -> TxStatus | None:
        """The recorded outcome of `tx_id`, None when it is not in the index."""
        return self._index.get(tx_id)

    def register(self, tx_id: str) -> asyncio.Future[TxStatus]:
        """A future resolved when `tx_id` commits (at once if it already has).

        Call `unregister` when giving up on it.
        """
        future: asyncio.Future[TxStatus] = asyncio.get_running_loop().create_future()
        found = self._index.get(tx_id)
        if found is not None:
            future.set_result(found)
        else:
            self._waiters.setdefault(tx_id, []).append(future)
        return future

    def unregister(self, tx_id: str, future: asyncio.Future[TxStatus]) -> None:
        waiters = self._waiters.get(tx_id)
        if waiters is None:
            return
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            del self._waiters[tx_id]

    def resolve(self, tx_id: str, status: TxStatus) -> None:
        """Wake waiters with an outcome learnt elsewhere (the ledger)."""
        for waiter in self._waiters.pop(tx_id, ()):
            if not waiter.done():
                waiter.set_result(status)
