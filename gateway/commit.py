"""Commit tracking: which transactions committed, with which code, in which block.

One `CommitTracker` per channel is fed every block the gateway's channel follower
receives from a peer. It resolves `CommitStatus` waits by transaction id and keeps a
bounded index of recent commits (the first occurrence of a tx id is the one that
counts: later ones are duplicates). A transaction that committed before the index's
`complete_from` block may have been evicted (or never seen); `CommitStatus` then asks
the ledger through qscc (see `commit_status.py`), but only when `may_be_older` says it
could be: blocks the tracker never saw, or a tx id the filter of evicted ids (a Bloom
filter over the tx id's hex digits) may hold. Without the filter every CommitStatus
arriving before its commit would cost a qscc query once the index is full.
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
        self._unseen_before = 0
        self._evicted = _EvictedIds()

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
            self._unseen_before = number
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
            evicted_id, evicted = self._index.popitem(last=False)
            self._evicted.add(evicted_id)
            self._complete_from = max(self._complete_from, evicted.block_number + 1)

    def may_be_older(self, tx_id: str) -> bool:
        """Whether `tx_id`, not in the index, may have committed before it (ask the
        ledger), rather than not yet."""
        if tx_id in self._index:
            return False
        return self._unseen_before > 0 or self._evicted.may_hold(tx_id)

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


class _EvictedIds:
    """A Bloom filter of the tx ids evicted from the index (no false negatives).

    Tx ids are hex SHA-256 digests, so three 32-bit slices of the hex text serve as
    the three hash values. Anything else is reported as possibly held. The bit array
    (8 MiB) is made at the first eviction; at 4 million evicted ids about 0.5 % of the
    other ids are false positives, which only cost a ledger query.
    """

    _BITS = 1 << 26

    def __init__(self) -> None:
        self._bits: bytearray | None = None
        self._holds_any = False
        """An id that is not hex was evicted: every id may have been."""

    def add(self, tx_id: str) -> None:
        positions = _positions(tx_id)
        if positions is None:
            self._holds_any = True
            return
        if self._bits is None:
            self._bits = bytearray(self._BITS // 8)
        bits = self._bits
        for position in positions:
            bits[position >> 3] |= 1 << (position & 7)

    def may_hold(self, tx_id: str) -> bool:
        if self._holds_any:
            return True
        bits = self._bits
        if bits is None:
            return False
        positions = _positions(tx_id)
        if positions is None:
            return True
        return all(
            bits[position >> 3] & (1 << (position & 7)) for position in positions
        )


def _positions(tx_id: str) -> tuple[int, int, int] | None:
    if len(tx_id) < 24:
        return None
    mask = _EvictedIds._BITS - 1
    try:
        return (
            int(tx_id[0:8], 16) & mask,
            int(tx_id[8:16], 16) & mask,
            int(tx_id[16:24], 16) & mask,
        )
    except ValueError:
        return None
