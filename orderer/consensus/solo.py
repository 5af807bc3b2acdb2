"""The solo backend: one orderer cuts, signs and stores every block of a channel.

One task per channel takes envelopes from a bounded queue, feeds the block cutter and
writes each cut batch as a block: create, sign and append (one fsync) run together in a
worker thread, one block at a time, so the event loop keeps serving streams while the
disk works. The futures of a block's envelopes resolve only after its append, so
Broadcast's SUCCESS means "on disk". BatchTimeout is a deadline on the loop's clock,
started when a batch becomes pending. `stop()` writes what is pending, then ends.
A config envelope goes alone into its block; when the support can `process_config`,
the envelope is checked again against the config of that moment (all earlier blocks
written) and a refusal fails only that envelope's Broadcast. Likewise an envelope that
Broadcast checked against an older config than the one current when it reaches the
cutter is checked again (`Revalidator.process_normal`) and dropped with its refusal
if it no longer passes, as Fabric re-validates messages of an older config sequence.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, cast, runtime_checkable

from common.errors import MedledgerError
from orderer.consensus.base import ChainSupport, Revalidator
from orderer.errors import BackendUnavailable, BroadcastRejected

__all__ = ["SoloBackend", "SoloChain"]

_LOG = logging.getLogger(__name__)

QUEUE_SIZE = 10_000


class _Item(NamedTuple):
    """One envelope to order; None means "not known, look" for the last three."""

    envelope: bytes
    future: asyncio.Future[int]
    config_sequence: int | None
    """The sequence of the config Broadcast checked it against."""
    is_config: bool | None
    tx_id: str | None
    """Its ChannelHeader tx id, so that the store does not decode it again."""


@runtime_checkable
class ConfigProcessor(Protocol):
    """A `ChainSupport` that re-checks config envelopes at cut time (the registrar's)."""

    def process_config(self, envelope: bytes) -> bytes:
        """The config envelope to cut now; raises BroadcastRejected if it no longer
        applies."""


class SoloBackend:
    """Makes one `SoloChain` per channel."""

    name = "solo"

    def __init__(self, *, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size

    def new_chain(self, support: ChainSupport) -> SoloChain:
        return SoloChain(support, queue_size=self._queue_size)


class SoloChain:
    """Orders one channel's envelopes on this orderer alone."""

    def __init__(self, support: ChainSupport, *, queue_size: int = QUEUE_SIZE) -> None:
        self._support = support
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=queue_size)
        self._waiting: collections.deque[asyncio.Future[int]] = collections.deque()
        self._waiting_tx_ids: collections.deque[str | None] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._broken: str | None = None
        self._process_config: Callable[[bytes], bytes] = (
            support.process_config
            if isinstance(support, ConfigProcessor)
            else _unchanged
        )
        self._revalidator = support if isinstance(support, Revalidator) else None

    async def start(self) -> None:
        assert self._task is None, "solo chain started twice"
        self._task = asyncio.create_task(
            self._run(), name=f"solo-{self._support.channel_id}"
        )

    async def order(self, envelope: bytes) -> int:
        self._check_available()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(envelope, future, None, None, None))
        if self._closed:
            self._fail_queued("solo chain stopped")
        return await future

    def submit(
        self,
        envelope: bytes,
        *,
        config_sequence: int,
        is_config: bool,
        tx_id: str | None = None,
    ) -> asyncio.Future[int]:
        """Queue without waiting (a failed future when the chain cannot order now)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        item = _Item(envelope, future, config_sequence, is_config, tx_id)
        try:
            self._check_available()
            self._queue.put_nowait(item)
        except BackendUnavailable as error:
            future.set_exception(error)
        except asyncio.QueueFull:
            return asyncio.ensure_future(self._order_when_room(item))
        return future

    async def stop(self) -> None:
        """Write the pending batch, let the loop end, fail whatever is still queued."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_queued("solo chain stopped")

    def _check_available(self) -> None:
        if self._closed:
            raise BackendUnavailable(f"channel {self._support.channel_id} is stopping")
        if self._broken is not None:
            raise BackendUnavailable(self._broken)
        if self._task is None:
            raise BackendUnavailable("solo chain not started")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cutter = self._support.new_block_cutter()
        deadline: float | None = None
        while True:
            try:
                item = await self._next(deadline)
            except TimeoutError:
                deadline = None
                if not await self._write([cutter.cut()]):
                    return
                continue
            if item is None:
                await self._write([cutter.cut()])
                return
            envelope, future, config_sequence, is_config, tx_id = item
            if is_config is None:
                is_config = self._support.is_config(envelope)
            if is_config:
                processed = await self._processed_config(envelope, future)
                if processed is None:
                    continue
                envelope = processed
            elif not self._passes_current_config(envelope, future, config_sequence):
                continue
            self._waiting.append(future)
            self._waiting_tx_ids.append(None if is_config else tx_id)
            if is_config:
                batches, pending = cutter.isolate(envelope), False
            else:
                batches, pending = cutter.ordered(envelope)
            if batches and not await self._write(batches):
                return
            if is_config:
                cutter = self._support.new_block_cutter()
            if not pending:
                deadline = None
            elif deadline is None:
                timeout_s = self._support.channel_config().batch_timeout
                deadline = loop.time() + timeout_s

    async def _next(self, deadline: float | None) -> _Item | None:
        """The next queued item; only an empty queue costs a timer (TimeoutError)."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        async with asyncio.timeout_at(deadline):
            return await self._queue.get()

    async def _order_when_room(self, item: _Item) -> int:
        await self._queue.put(item)
        if self._closed:
            self._fail_queued("solo chain stopped")
        return await item.future

    def _passes_current_config(
        self, envelope: bytes, future: asyncio.Future[int], config_sequence: int | None
    ) -> bool:
        """Whether an envelope checked under config `config_sequence` may be cut now;
        if not, its future fails with the refusal."""
        revalidator = self._revalidator
        if (
            config_sequence is None
            or revalidator is None
            or config_sequence >= revalidator.config_sequence()
        ):
            return True
        try:
            revalidator.process_normal(envelope)
        except BroadcastRejected as rejected:
            _LOG.info(
                "envelope refused under the new config channel=%s: %s",
                self._support.channel_id,
                rejected,
            )
            if not future.done():
                future.set_exception(rejected)
            return False
        return True

    async def _processed_config(
        self, envelope: bytes, future: asyncio.Future[int]
    ) -> bytes | None:
        """The config envelope to cut, or None after failing `future` with the refusal.

        Every earlier block is written when this runs, so the config is current.
        """
        try:
            return await asyncio.to_thread(self._process_config, envelope)
        except BroadcastRejected as rejected:
            _LOG.info(
                "config envelope refused at cut time channel=%s: %s",
                self._support.channel_id,
                rejected,
            )
            if not future.done():
                future.set_exception(rejected)
            return None

    async def _write(self, batches: Sequence[list[bytes]]) -> bool:
        """Write each non-empty batch as a block and resolve its futures.

        Returns False (and fails every waiting envelope) when the store refused.
        """
        for batch in batches:
            if not batch:
                continue
            tx_ids = [self._waiting_tx_ids.popleft() for _ in batch]
            known = None if None in tx_ids else cast(list[str], tx_ids)
            try:
                number = await asyncio.to_thread(self._write_block, batch, known)
            except MedledgerError as error:
                self._break(f"channel {self._support.channel_id}: {error}")
                return False
            for _ in batch:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_result(number)
        return True

    def _write_block(self, batch: list[bytes], tx_ids: list[str] | None) -> int:
        """Runs in a worker thread: the only writer of this channel's store."""
        support = self._support
        block = support.sign_block(support.create_next_block(batch))
        support.append_block(block, tx_ids=tx_ids)
        return block.header.number

    def _break(self, reason: str) -> None:
        _LOG.error("solo chain cannot write, refusing envelopes: %s", reason)
        self._broken = reason
        self._waiting_tx_ids.clear()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(BackendUnavailable(reason))
        self._fail_queued(reason)

    def _fail_queued(self, reason: str) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(BackendUnavailable(reason))


def _unchanged(envelope: bytes) -> bytes:
    return envelope
