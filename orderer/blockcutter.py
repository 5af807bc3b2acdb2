"""Block cutting: which envelopes go together into the next block (pure, no I/O, no clock).

The receiver follows Fabric's rules for a channel's BatchSize:

- an envelope larger than PreferredMaxBytes goes alone into its own block, after the
  pending batch (if any) has been cut;
- an envelope that would take the pending batch past PreferredMaxBytes cuts the
  pending batch first and starts the next one;
- a batch that reaches MaxMessageCount is cut at once.

AbsoluteMaxBytes is enforced earlier, by Broadcast. BatchTimeout is the caller's job:
it starts a deadline when `ordered` reports a newly pending batch and calls `cut` when
the deadline passes. Config envelopes are isolated with `isolate`. An envelope's size
is the length of its bytes.
"""

from __future__ import annotations

from common.channelconfig import BatchSize

__all__ = ["BlockCutter"]

Batch = list[bytes]


class BlockCutter:
    """The pending batch of one channel."""

    __slots__ = ("_batch_size", "_pending", "_pending_bytes")

    def __init__(self, batch_size: BatchSize) -> None:
        assert batch_size.max_message_count > 0, batch_size
        self._batch_size = batch_size
        self._pending: Batch = []
        self._pending_bytes = 0

    @property
    def pending_count(self) -> int:
        """How many envelopes wait in the pending batch."""
        return len(self._pending)

    def ordered(self, envelope: bytes) -> tuple[list[Batch], bool]:
        """Add one envelope; returns the batches cut now and whether one is pending."""
        size = len(envelope)
        preferred = self._batch_size.preferred_max_bytes
        if size > preferred:
            return [*self._cut_nonempty(), [envelope]], False
        batches = []
        if self._pending_bytes + size > preferred:
            batches.extend(self._cut_nonempty())
        self._pending.append(envelope)
        self._pending_bytes += size
        if len(self._pending) >= self._batch_size.max_message_count:
            batches.append(self.cut())
        return batches, bool(self._pending)

    def isolate(self, envelope: bytes) -> list[Batch]:
        """The pending batch (if any), then `envelope` alone: how config txs are cut."""
        return [*self._cut_nonempty(), [envelope]]

    def cut(self) -> Batch:
        """Return the pending batch (possibly empty) and start a new one."""
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        return batch

    def _cut_nonempty(self) -> list[Batch]:
        return [self.cut()] if self._pending else []
