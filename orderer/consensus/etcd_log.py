"""One channel's chain of blocks kept in etcd: write-once slots fenced by the height.

Layout under `<prefix>/<channel>/` (the prefix is `/medledger` unless configured):

    blocks/<n>                block n as stored (n zero-padded to 20 digits, so key order
                              is block order)
    height                    decimal: the number of the next block to write
    base                      decimal: blocks below this number are not (or no longer) in
                              etcd; fetch them from another orderer's Deliver service
    cutter                    the election record (see etcd_election)
    orderers/<name>/height    decimal: how many blocks that orderer has stored

Block n is written in one transaction that succeeds only if slot n is empty, the height
is n and the writer's election key is the one it created; it also sets the height to
n + 1. A cutter that was deposed (its lease expired while it was paused, say) can
therefore never write a block: the chain in etcd has no forks and no gaps.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_types import (
    CreatedAt,
    DeleteRange,
    EtcdError,
    Get,
    KeyMissing,
    KeyValue,
    Put,
    ValueEquals,
    prefix_end,
)

ROOT = b"/medledger/"
_NUMBER_DIGITS = 20
READ_PAGE_BLOCKS = 16
"""Blocks per range read: 16 blocks of at most 1.5 MiB stay under the 64 MiB message cap."""


class BlocksPruned(EtcdError):
    """Blocks the caller needs were deleted from etcd (or never written there).

    They are below `base`; another orderer's block store (Deliver) has them.
    """

    def __init__(self, message: str, *, needed: int, base: int) -> None:
        super().__init__(
            f"{message}: need block {needed}, etcd keeps blocks from {base}"
        )
        self.needed = needed
        self.base = base


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """The etcd keys of one channel, under the ordering service's `root` prefix."""

    channel_id: str
    root: bytes = ROOT

    @classmethod
    def under(cls, prefix: str, channel_id: str) -> ChannelKeys:
        """The keys of `channel_id` below a configured prefix such as "/medledger"."""
        return cls(channel_id, root=prefix.rstrip("/").encode() + b"/")

    @property
    def prefix(self) -> bytes:
        return self.root + self.channel_id.encode() + b"/"

    @property
    def blocks_prefix(self) -> bytes:
        return self.prefix + b"blocks/"

    @property
    def height(self) -> bytes:
        return self.prefix + b"height"

    @property
    def base(self) -> bytes:
        return self.prefix + b"base"

    @property
    def cutter(self) -> bytes:
        return self.prefix + b"cutter"

    @property
    def orderers_prefix(self) -> bytes:
        return self.prefix + b"orderers/"

    def block(self, number: int) -> bytes:
        return self.blocks_prefix + str(number).zfill(_NUMBER_DIGITS).encode()

    def orderer_height(self, name: str) -> bytes:
        return self.orderers_prefix + name.encode() + b"/height"

    def orderer_address(self, name: str) -> bytes:
        return self.orderers_prefix + name.encode() + b"/address"

    def block_number(self, key: bytes) -> int:
        """The block number in a `blocks/<n>` key.

        Raises:
            ValueError: the key is not a block key of this channel.
        """
        if not key.startswith(self.blocks_prefix):
            raise ValueError(f"{key!r} is not a block key of channel {self.channel_id}")
        digits = key[len(self.blocks_prefix) :]
        if len(digits) != _NUMBER_DIGITS or not digits.isdigit():
            raise ValueError(f"malformed block key {key!r}")
        return int(digits)


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    """The block is in etcd (by this call, or by an earlier attempt of the same bytes)."""
    NOT_CUTTER = "not cutter"
    """The writer's election key is gone or was re-created by someone else."""
    CHAIN_MOVED = "chain moved"
    """Slot n is taken by another block, or the height is no longer n."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    outcome: WriteOutcome
    revision: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LogBlock:
    """A block as found in etcd: its number, stored bytes and the revision of the write."""

    number: int
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LogState:
    """The chain in etcd at `revision`: blocks [base, height) are stored.

    `started` is False until the first cutter has set the height (then both are 0).
    """

    height: int
    base: int
    revision: int
    started: bool = True


class BlockLog:
    """Reads and writes one channel's blocks in etcd."""

    def __init__(self, client: EtcdClient, keys: ChannelKeys) -> None:
        self.client = client
        self.keys = keys

    async def state(self) -> LogState:
        """Height and base now, in one linearizable read."""
        result = await self.client.txn([], [Get(self.keys.height), Get(self.keys.base)])
        height, base = (_first(rows.kvs) for rows in result.ranges)
        if height is None:
            return LogState(height=0, base=0, revision=result.revision, started=False)
        return LogState(
            height=_decimal(height),
            base=0 if base is None else _decimal(base),
            revision=result.revision,
        )

    async def initialise(self, height: int) -> LogState:
        """Start the log at `height` (the first cutter's own height) unless it exists.

        Blocks below `height` stay in the orderers' stores only (they joined the channel
        with them), so `base` is set to `height` as well.
        """
        height_text = str(height).encode()
        result = await self.client.txn(
            [KeyMissing(self.keys.height)],
            [Put(self.keys.height, height_text), Put(self.keys.base, height_text)],
            [Get(self.keys.height), Get(self.keys.base)],
        )
        if result.succeeded:
            return LogState(height=height, base=height, revision=result.revision)
        current, base = (_first(rows.kvs) for rows in result.ranges)
        assert current is not None, "the height key exists when creating it failed"
        return LogState(
            height=_decimal(current),
            base=0 if base is None else _decimal(base),
            revision=result.revision,
        )

    async def write_block(
        self, number: int, value: bytes, *, cutter_revision: int
    ) -> WriteResult:
        """Write block `number` if the chain in etcd ends just before it and we are cutter."""
        slot = self.keys.block(number)
        result = await self.client.txn(
            [
                KeyMissing(slot),
                ValueEquals(self.keys.height, str(number).encode()),
                CreatedAt(self.keys.cutter, cutter_revision),
            ],
            [Put(slot, value), Put(self.keys.height, str(number + 1).encode())],
            [Get(slot), Get(self.keys.height), Get(self.keys.cutter)],
        )
        if result.succeeded:
            return WriteResult(
                outcome=WriteOutcome.WRITTEN,
                revision=result.revision,
                height=number + 1,
            )
        existing, height, cutter = (_first(rows.kvs) for rows in result.ranges)
        current = 0 if height is None else _decimal(height)
        if existing is not None and existing.value == value:
            # An earlier attempt of this very block landed before its answer was lost.
            return WriteResult(
                outcome=WriteOutcome.WRITTEN,
                revision=existing.mod_revision,
                height=current,
            )
        if cutter is None or cutter.create_revision != cutter_revision:
            outcome = WriteOutcome.NOT_CUTTER
        else:
            outcome = WriteOutcome.CHAIN_MOVED
        return WriteResult(outcome=outcome, revision=result.revision, height=current)

    async def read_blocks(self, start: int, end: int) -> AsyncIterator[LogBlock]:
        """Blocks [start, end) in order, a page at a time.

        Raises:
            BlocksPruned: a block in the range is not in etcd (below the base).
        """
        number = start
        while number < end:
            last = min(end, number + READ_PAGE_BLOCKS)
            page = await self.client.get_range(
                self.keys.block(number), self.keys.block(last)
            )
            for kv in page.kvs:
                found = self.keys.block_number(kv.key)
                if found != number:
                    await self._raise_pruned(number)
                yield LogBlock(number=found, value=kv.value, revision=kv.mod_revision)
                number += 1
            if number < last:
                await self._raise_pruned(number)

    async def watch_blocks(
        self, start_revision: int
    ) -> AsyncIterator[tuple[int, list[LogBlock]]]:
        """(resume revision, blocks written) per watch response from `start_revision` on.

        Watch again from resume revision + 1 to miss nothing: it is the revision of the
        last event received, or the store revision of a progress notification (which
        promises that nothing older is still to come). Deletions (pruning) are skipped.
        See EtcdClient.watch for the errors.
        """
        prefix = self.keys.blocks_prefix
        resume = start_revision - 1
        watch = self.client.watch(
            prefix, prefix_end(prefix), start_revision=start_revision
        )
        async for batch in watch:
            if not batch.events:
                resume = max(resume, batch.revision)
                yield resume, []
                continue
            resume = max(resume, max(event.kv.mod_revision for event in batch.events))
            blocks = [
                LogBlock(
                    number=self.keys.block_number(event.kv.key),
                    value=event.kv.value,
                    revision=event.kv.mod_revision,
                )
                for event in batch.events
                if not event.is_delete
            ]
            yield resume, blocks

    async def record_orderer_height(self, name: str, height: int) -> None:
        await self.client.put(self.keys.orderer_height(name), str(height).encode())

    async def orderer_heights(self) -> dict[str, int]:
        heights: dict[str, int] = {}
        for name, kv in await self._orderer_records(b"/height"):
            heights[name] = _decimal(kv)
        return heights

    async def record_orderer_address(self, name: str, address: str) -> None:
        """Where this orderer serves Deliver (host:port), for orderers pulling blocks."""
        await self.client.put(self.keys.orderer_address(name), address.encode())

    async def orderer_addresses(self) -> dict[str, str]:
        return {
            name: kv.value.decode(errors="replace")
            for name, kv in await self._orderer_records(b"/address")
        }

    async def _orderer_records(self, suffix: bytes) -> list[tuple[str, KeyValue]]:
        """(orderer name, record) of each `orderers/<name><suffix>` key."""
        prefix = self.keys.orderers_prefix
        result = await self.client.get_range(prefix, prefix_end(prefix))
        return [
            (kv.key[len(prefix) : -len(suffix)].decode(errors="replace"), kv)
            for kv in result.kvs
            if kv.key.endswith(suffix)
        ]

    async def prune(self, *, below: int) -> int | None:
        """Delete blocks under `below` from etcd, raise the base, compact the history.

        Returns the compaction revision, or None when the base was already there.
        """
        state = await self.state()
        if not state.started or below <= state.base:
            return None
        below = min(below, state.height)
        result = await self.client.txn(
            [ValueEquals(self.keys.base, str(state.base).encode())],
            [
                DeleteRange(self.keys.block(state.base), self.keys.block(below)),
                Put(self.keys.base, str(below).encode()),
            ],
        )
        if not result.succeeded:
            return None  # another pruner moved the base; it compacts too
        await self.client.compact(result.revision)
        return result.revision

    async def _raise_pruned(self, number: int) -> None:
        state = await self.state()
        raise BlocksPruned("block missing from etcd", needed=number, base=state.base)


def heights_floor(heights: Mapping[str, int], *, retention_blocks: int) -> int:
    """The block number below which every orderer has stored, minus the retention window.

    Pruning below it loses nothing any registered orderer still needs, and keeps
    `retention_blocks` more for orderers that restart from a slightly older store.
    """
    if not heights:
        return 0
    return max(0, min(heights.values()) - retention_blocks)


def _first(kvs: tuple[KeyValue, ...]) -> KeyValue | None:
    return kvs[0] if kvs else None


def _decimal(kv: KeyValue) -> int:
    try:
        return int(kv.value.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as error:
        raise EtcdError(
            f"etcd key {kv.key!r} holds {kv.value!r}, not a number"
        ) from error
