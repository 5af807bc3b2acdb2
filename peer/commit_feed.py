"""Committed blocks as asyncio sees them: the height Deliver and the puller go by.

Commit phase, last step. A block store listener fires when a block is appended, before
its state is written; `CommitFeed` moves only once `PeerChannel.commit` has committed
the block's state too, so a Deliver subscriber told of block n (and a client waiting
for its transaction) reads the state n wrote. It keeps the last blocks' stored bytes for
live subscribers.
"""

from __future__ import annotations

import asyncio

from common.deliver import FeedClosed
from peer.ledger.ledger import ChannelLedger

__all__ = ["CommitFeed"]


class CommitFeed:
    """Committed blocks seen from asyncio: height, recent bytes, waiting for more.

    Unlike a block store listener it moves only once a block's state is committed, so a
    Deliver subscriber told of block n can read the state n wrote.
    """

    def __init__(self, ledger: ChannelLedger, *, cached_blocks: int = 16) -> None:
        self._ledger = ledger
        self._height = ledger.height
        self._recent: dict[int, bytes] = {}
        self._cached_blocks = cached_blocks
        self._changed = asyncio.Event()
        self._closed = False

    def height(self) -> int:
        return self._height

    def committed(self, number: int, data: bytes) -> None:
        """Block `number` (stored as `data`) is committed; wake the waiters."""
        self._height = max(self._height, number + 1)
        self._recent[number] = data
        self._recent.pop(number - self._cached_blocks, None)
        self._wake()

    async def block_bytes(self, number: int) -> bytes:
        cached = self._recent.get(number)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self._ledger.block_store.block_bytes, number)

    async def wait_for_height(self, height: int) -> None:
        """Return once `height` blocks are committed (raises FeedClosed on close)."""
        while self._height < height:
            if self._closed:
                raise FeedClosed("block feed closed")
            await self._changed.wait()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
