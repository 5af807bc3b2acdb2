"""Envelopes on their way into a block, and the envelopes of the latest blocks.

Every envelope the etcd backend has been asked to order, by this orderer's clients
(`local`) or by followers forwarding to this cutter, is one entry keyed by the SHA-256
of its bytes. An entry waits in the *unrouted* queue until the cutter (here, or on
another orderer via Forward) takes it, and goes back into the queue when that attempt
fails. It is resolved when a block holding those bytes is stored here — whoever wrote
the block — so an envelope is acknowledged only once it is in this orderer's store.

The table also remembers which block holds each envelope of the blocks stored here in
the last `window_s` seconds (at most `envelopes_max` envelopes, at least the last
block). A cutter drops envelopes found there before it writes a block, which is how a
forward that is retried after its cutter died (and may have written the block after
all) does not put the same envelope into the chain twice. The window must outlast a
retry: the backend uses more than the order timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from orderer.errors import BackendUnavailable


def envelope_digest(envelope: bytes) -> bytes:
    return hashlib.sha256(envelope).digest()


@dataclass(slots=True, eq=False, kw_only=True)
class PendingEnvelope:
    """One envelope waiting for its block; `future` gets the block number."""

    digest: bytes
    envelope: bytes
    future: asyncio.Future[int]
    local: bool
    attempts: int = 0
    queued: bool = field(default=False)
    admitted_s: float = 0.0
    """When this orderer's client handed it over (the table's clock; local only)."""
    config_sequence: int | None = None
    """The sequence of the config it was checked against (None: the current one)."""
    is_config: bool | None = None
    """Whether it is a CONFIG envelope (None: not known, look)."""
    tx_id: str | None = None
    """Its ChannelHeader tx id, when Broadcast decoded it (None: not known)."""

    @property
    def is_done(self) -> bool:
        return self.future.done()


class EnvelopeTable:
    """Pending envelopes by digest, the unrouted queue, and the recent blocks' digests."""

    def __init__(
        self,
        *,
        capacity: int,
        window_s: float,
        envelopes_max: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self.envelopes_max = envelopes_max
        self._clock = clock
        self._entries: dict[bytes, PendingEnvelope] = {}
        self._unrouted: deque[PendingEnvelope] = deque()
        self._work = asyncio.Event()
        self._recent: dict[bytes, int] = {}
        self._stored_height = 0
        self._expected: dict[int, list[PendingEnvelope]] = {}
        self._recent_order: deque[tuple[int, float, Sequence[bytes]]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def admit(
        self,
        envelope: bytes,
        *,
        local: bool,
        digest: bytes | None = None,
        config_sequence: int | None = None,
        is_config: bool | None = None,
        tx_id: str | None = None,
    ) -> PendingEnvelope:
        """The entry for `envelope`, created and queued if it is new.

        Admitted again, it keeps the oldest config sequence it was checked against.

        Raises:
            BackendUnavailable: `capacity` envelopes are already waiting.
        """
        key = envelope_digest(envelope) if digest is None else digest
        entry = self._entries.get(key)
        if entry is not None:
            if local and not entry.local:
                entry.local, entry.admitted_s = True, self._clock()
            entry.config_sequence = _oldest(entry.config_sequence, config_sequence)
            return entry
        if len(self._entries) >= self.capacity:
            raise BackendUnavailable(
                f"{self.capacity} envelopes are already waiting for a block"
            )
        entry = PendingEnvelope(
            digest=key,
            envelope=envelope,
            future=asyncio.get_running_loop().create_future(),
            local=local,
            admitted_s=self._clock() if local else 0.0,
            config_sequence=config_sequence,
            is_config=is_config,
            tx_id=tx_id,
        )
        self._entries[key] = entry
        self.requeue(entry)
        return entry

    @property
    def has_work(self) -> bool:
        """Whether the unrouted queue holds anything."""
        return bool(self._unrouted)

    def get(self, digest: bytes) -> PendingEnvelope | None:
        return self._entries.get(digest)

    def block_of(self, digest: bytes) -> int | None:
        """The number of a recent stored block holding this envelope, if any."""
        return self._recent.get(digest)

    def requeue(self, entry: PendingEnvelope) -> None:
        """Put a still-pending entry back at the end of the unrouted queue."""
        if (
            entry.queued
            or entry.is_done
            or self._entries.get(entry.digest) is not entry
        ):
            return
        entry.queued = True
        self._unrouted.append(entry)
        self._work.set()

    def take(self, *, count_max: int, bytes_max: int) -> list[PendingEnvelope]:
        """Up to `count_max` queued entries (at least one) within `bytes_max`, in order."""
        taken: list[PendingEnvelope] = []
        size = 0
        while self._unrouted and len(taken) < count_max:
            entry = self._unrouted[0]
            if taken and size + len(entry.envelope) > bytes_max:
                break
            self._unrouted.popleft()
            entry.queued = False
            if entry.is_done or self._entries.get(entry.digest) is not entry:
                continue
            taken.append(entry)
            size += len(entry.envelope)
        if not self._unrouted:
            self._work.clear()
        return taken

    async def wait_for_work(self, timeout_s: float | None) -> bool:
        """Wait until the unrouted queue is not empty, `wake` is called, or `timeout_s`
        passes; returns whether the queue holds anything."""
        if self._unrouted:
            return True
        if timeout_s is None:
            await self._work.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._work.wait()
        if not self._unrouted:
            # Woken without work: clear, or every later wait would return at once and a
            # caller's loop would spin without ever yielding to the event loop.
            self._work.clear()
            return False
        return True

    def wake(self) -> None:
        """End the current `wait_for_work` early (the waiter's situation changed)."""
        self._work.set()

    def block_stored(
        self,
        number: int,
        envelopes: Sequence[bytes],
        digests: Sequence[bytes] | None = None,
    ) -> None:
        """Resolve the entries of a block just stored here and remember its envelopes.

        `digests` are the envelopes' digests when the caller already has them.
        """
        if digests is None:
            digests = [envelope_digest(envelope) for envelope in envelopes]
        self._stored_height = max(self._stored_height, number + 1)
        for expected in self._expected.pop(number, ()):
            self.resolve(expected, number)
        for digest in digests:
            self._recent[digest] = number
            entry = self._entries.pop(digest, None)
            if entry is not None and not entry.is_done:
                entry.future.set_result(number)
        now = self._clock()
        self._recent_order.append((number, now, digests))
        while len(self._recent_order) > 1 and (
            len(self._recent) > self.envelopes_max
            or now - self._recent_order[0][1] > self.window_s
        ):
            old_number, _, old_digests = self._recent_order.popleft()
            for digest in old_digests:
                if self._recent.get(digest) == old_number:
                    del self._recent[digest]

    def note_stored_height(self, height: int) -> None:
        """The store already holds `height` blocks (blocks below it count as stored)."""
        self._stored_height = max(self._stored_height, height)

    def expect(self, entry: PendingEnvelope, number: int) -> None:
        """The cutter says `entry` is in block `number`: resolve it when that block is
        stored here, even if its bytes there differ (a config envelope made again)."""
        if number < self._stored_height:
            self.resolve(entry, number)
        else:
            self._expected.setdefault(number, []).append(entry)

    def resolve(self, entry: PendingEnvelope, number: int) -> None:
        """Resolve an entry found in an already stored block."""
        if self._entries.get(entry.digest) is entry:
            del self._entries[entry.digest]
        if not entry.is_done:
            entry.future.set_result(number)

    def fail(self, entry: PendingEnvelope, error: BaseException) -> None:
        """Give up on an entry: its waiters get `error`."""
        if self._entries.get(entry.digest) is entry:
            del self._entries[entry.digest]
        if not entry.is_done:
            entry.future.set_exception(error)
            entry.future.exception()  # waiters still see it; unawaited ones are not logged

    def discard(self, entry: PendingEnvelope) -> None:
        """Forget an entry nobody waits for any more (it may still reach a block)."""
        if self._entries.get(entry.digest) is entry and not entry.local:
            del self._entries[entry.digest]
            entry.future.cancel()

    def fail_overdue(self, *, age_s: float, error: Callable[[], BaseException]) -> int:
        """Fail the local entries admitted more than `age_s` ago; returns how many."""
        oldest = self._clock() - age_s
        overdue = [
            entry
            for entry in self._entries.values()
            if entry.local and entry.admitted_s <= oldest
        ]
        for entry in overdue:
            self.fail(entry, error())
        return len(overdue)

    def fail_all(self, error: BaseException) -> None:
        for entry in list(self._entries.values()):
            self.fail(entry, error)

    def entries(self, digests: Iterable[bytes]) -> list[PendingEnvelope]:
        return [
            entry
            for digest in digests
            if (entry := self._entries.get(digest)) is not None
        ]


def _oldest(first: int | None, second: int | None) -> int | None:
    """The older of two config sequences, None meaning "the current one"."""
    if first is None:
        return second
    return first if second is None else min(first, second)
