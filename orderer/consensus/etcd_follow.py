"""Every orderer's side of the etcd backend: copy the chain in etcd into the local store.

`BlockFollower.follow` watches the channel's block keys from the revision after the
last one seen and appends each block to this orderer's store through
`ChainSupport.append_block`, in number order and exactly once (a block at or below our
height is skipped; a gap is filled by reading etcd first). After a watch error it
resumes from the same revision; when that revision was compacted it catches up with
range reads instead. Blocks etcd no longer has (below its `base`) come from the block
puller, i.e. another orderer's Deliver service, or the follower fails with
BlocksPruned. `report` records this orderer's height in etcd and, while it is the
cutter, prunes what every orderer has stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from common.protoutil import parse_block
from common.threads import in_thread_to_completion
from orderer.consensus.etcd_log import BlockLog, BlocksPruned, heights_floor
from orderer.consensus.etcd_pending import EnvelopeTable
from orderer.consensus.etcd_types import (
    EtcdError,
    EtcdRevisionCompacted,
    EtcdUnavailable,
)
from protos.common import common_pb2

_LOG = logging.getLogger(__name__)

BlockPuller = Callable[[str, int, int], AsyncIterator[common_pb2.Block]]
"""(channel id, first, end) -> blocks [first, end) from another orderer, in order."""
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 1.0
_CATCH_UP_ROUNDS = 5


class ChainDiverged(EtcdError):
    """This orderer's store and the chain in etcd disagree; the orderer must stop."""

    def __init__(self, message: str, *, channel_id: str) -> None:
        super().__init__(f"channel {channel_id}: {message}")
        self.channel_id = channel_id


class StoreSupport(Protocol):
    """The parts of ChainSupport the follower uses."""

    channel_id: str

    def height(self) -> int: ...

    def append_block(
        self,
        block: common_pb2.Block,
        *,
        tx_ids: Sequence[str] | None = None,
        serialized: bytes | None = None,
    ) -> None: ...


class BlockFollower:
    """Brings this orderer's store up to the chain in etcd, and keeps it there."""

    def __init__(
        self,
        *,
        support: StoreSupport,
        log: BlockLog,
        table: EnvelopeTable,
        puller: BlockPuller | None,
    ) -> None:
        self.support = support
        self.log = log
        self.table = table
        self.puller = puller
        self._lock = asyncio.Lock()
        self._stored = asyncio.Condition()
        self._written: dict[int, _Written] = {}
        """Blocks this orderer (as cutter) wrote to etcd and has not stored yet: the
        watch brings them back as bytes, which need not be parsed again."""

    async def catch_up(self, *, initialise: bool = True) -> int:
        """Append every block etcd has beyond our height; returns the revision read at.

        With `initialise` (the cutter) an unstarted log is started at our height.
        Blocks below etcd's base come from the block puller; if pruning overtakes the
        catch-up, it starts over (a few times).

        Raises:
            ChainDiverged: our store is ahead of etcd.
            BlocksPruned: etcd no longer has blocks we need and no puller got them.
        """
        for _ in range(_CATCH_UP_ROUNDS - 1):
            try:
                return await self._catch_up_once(initialise=initialise)
            except BlocksPruned:
                if self.puller is None:
                    raise
        return await self._catch_up_once(initialise=initialise)

    async def _catch_up_once(self, *, initialise: bool) -> int:
        # Our height first: blocks reach our store only after etcd has them, so this
        # height cannot exceed the one read next unless the store and etcd disagree.
        local = self.support.height()
        state = await self.log.state()
        if not state.started:
            if not initialise:
                return state.revision
            state = await self.log.initialise(local)
        if local > state.height:
            raise ChainDiverged(
                f"this orderer's store holds {local} blocks, etcd only {state.height}",
                channel_id=self.support.channel_id,
            )
        if local < state.base:
            await self._pull(local, state.base)
        async for block in self.log.read_blocks(max(local, state.base), state.height):
            await self.apply(block.number, block.value)
        return state.revision

    async def apply(self, number: int, value: bytes) -> None:
        """Append block `number` unless stored already; fetch any gap before it first.

        A block this orderer wrote (`store_later`) is taken as written, not parsed
        from `value`.
        """
        async with self._lock:
            height = self.support.height()
            if number < height:
                self._written.pop(number, None)
                return
            if number > height:
                async for missing in self.log.read_blocks(height, number):
                    await self._append_value(missing.number, missing.value)
            await self._append_value(number, value)

    async def reach_etcd_height(self, *, timeout_s: float) -> bool:
        """Wait until our store holds every block etcd holds now (False: not in time)."""
        try:
            async with asyncio.timeout(timeout_s):
                height = (await self.log.state()).height
                async with self._stored:
                    await self._stored.wait_for(lambda: self.support.height() >= height)
        except (TimeoutError, EtcdError):
            return False
        return True

    def store_later(
        self,
        number: int,
        block: common_pb2.Block,
        digests: list[bytes],
        tx_ids: list[str] | None = None,
        value: bytes | None = None,
    ) -> asyncio.Task[None]:
        """Store a block the cutter just wrote to etcd, after those stored before it.

        `digests` and `tx_ids` (when known) are its envelopes' digests and tx ids;
        `value` the bytes written (`block.SerializeToString()`).
        Whichever comes first — this or the watch bringing the block back — stores
        this block object. The lock is fair, so blocks handed over in number order are
        stored in that order.
        """
        self._written[number] = _Written(block, digests, tx_ids, value)
        return asyncio.ensure_future(self.apply(number, b""))

    async def follow(self) -> None:
        """Watch etcd and apply every block, for as long as the chain runs."""
        revision: int | None = None
        backoff = Backoff()
        while True:
            try:
                if revision is None:
                    revision = await self.catch_up(initialise=False)
                async for resume, blocks in self.log.watch_blocks(revision + 1):
                    for block in blocks:
                        await self.apply(block.number, block.value)
                    revision = resume
                    backoff.reset()
            except EtcdRevisionCompacted:
                revision = None
            except EtcdUnavailable as error:
                _LOG.info(
                    "block watch interrupted channel=%s: %s", self._channel, error
                )
                await backoff.sleep()

    async def report(
        self,
        *,
        orderer_name: str,
        address: str,
        interval_s: float,
        is_cutter: Callable[[], bool],
        prune_interval_s: float,
        retention_blocks: int,
    ) -> None:
        """Record our height now and every `interval_s` it changed; prune while cutter.

        Recording at once keeps a newly started orderer's blocks from being pruned.
        The Deliver `address` is recorded once, for orderers that pull blocks.
        """
        reported = -1
        address_recorded = not address
        pruned_at = time.monotonic()
        while True:
            height = self.support.height()
            try:
                if not address_recorded:
                    await self.log.record_orderer_address(orderer_name, address)
                    address_recorded = True
                if height != reported:
                    await self.log.record_orderer_height(orderer_name, height)
                    reported = height
                if is_cutter() and time.monotonic() - pruned_at >= prune_interval_s:
                    pruned_at = time.monotonic()
                    heights = await self.log.orderer_heights()
                    floor = heights_floor(heights, retention_blocks=retention_blocks)
                    await self.log.prune(below=floor)
            except EtcdError as error:
                _LOG.info(
                    "height report or pruning failed channel=%s: %s",
                    self._channel,
                    error,
                )
            await asyncio.sleep(interval_s)

    @property
    def _channel(self) -> str:
        return self.support.channel_id

    async def _append_value(self, number: int, value: bytes) -> None:
        written = self._written.pop(number, None)
        if written is None:
            await self._append(number, parse_block(value), serialized=value)
        else:
            await self._append(
                number,
                written.block,
                written.digests,
                tx_ids=written.tx_ids,
                serialized=written.value,
            )

    async def _append(
        self,
        number: int,
        block: common_pb2.Block,
        digests: list[bytes] | None = None,
        *,
        tx_ids: list[str] | None = None,
        serialized: bytes | None = None,
    ) -> None:
        """Store one block (fsync in a worker thread; the lock keeps one writer, and a
        cancellation waits for the thread so the lock is not released mid-append)."""
        assert self._lock.locked()
        assert block.header.number == number, (block.header.number, number)
        append = functools.partial(
            self.support.append_block, block, tx_ids=tx_ids, serialized=serialized
        )
        await in_thread_to_completion(append)
        self.table.block_stored(number, block.data.data, digests)
        async with self._stored:
            self._stored.notify_all()

    async def _pull(self, start: int, end: int) -> None:
        if self.puller is None:
            raise BlocksPruned("no block puller configured", needed=start, base=end)
        async for block in self.puller(self._channel, start, end):
            async with self._lock:
                if block.header.number == self.support.height():
                    await self._append(block.header.number, block)
        height = self.support.height()
        if height < end:
            raise BlocksPruned(
                "the block puller stopped early", needed=height, base=end
            )


@dataclass(frozen=True, slots=True)
class _Written:
    block: common_pb2.Block
    digests: list[bytes]
    tx_ids: list[str] | None
    value: bytes | None


class Backoff:
    """Doubling delays between retries, from 0.1 s up to 1 s."""

    def __init__(self) -> None:
        self.delay_s = _BACKOFF_FIRST_S

    def reset(self) -> None:
        self.delay_s = _BACKOFF_FIRST_S

    async def sleep(self) -> None:
        await asyncio.sleep(self.delay_s)
        self.delay_s = min(2 * self.delay_s, _BACKOFF_MAX_S)
