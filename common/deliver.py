"""The Deliver core shared by orderer and peer: answer one seek request with blocks.

A client opens a Deliver stream with a signed DELIVER_SEEK_INFO envelope. `deliver`
checks it the way Fabric does and streams the blocks it asks for:

1. the envelope and its headers decode, the header type is DELIVER_SEEK_INFO, the
   SeekInfo has a start and a stop                                  else BAD_REQUEST
2. the channel header timestamp is within the time window of the server clock
   (default 15 minutes), and a `tls_cert_hash` matches the client's TLS
   certificate (required under mutual TLS)                          else BAD_REQUEST
3. the channel exists                                               else NOT_FOUND
4. the creator's signature satisfies the channel's Readers check    else FORBIDDEN
5. start/stop resolve (oldest 0, newest height-1, next_commit height, specified n);
   a stop before the start                                          is BAD_REQUEST
6. blocks go out one by one; BLOCK_UNTIL_READY waits for blocks not yet written,
   FAIL_IF_NOT_READY answers NOT_FOUND instead. The Readers check is repeated when
   the channel config changes or the creator's authorisation expires (FORBIDDEN).
7. after the stop block: SUCCESS.

Block bytes are the exact stored bytes; the service wraps them in its own
DeliverResponse. `BlockFeed` makes a `BlockStore` awaitable from asyncio without polling.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from common.blockstore import BlockStore
from common.errors import (
    CryptoError,
    IdentityError,
    MedledgerError,
    PolicyError,
    WireError,
)
from common.protoutil import (
    FAIL_IF_NOT_READY,
    ParsedSeek,
    SeekPosition,
    SignedData,
    envelope_signed_data,
    parse_seek_envelope,
)
from protos.common import common_pb2

__all__ = [
    "DEFAULT_TIME_WINDOW_S",
    "BlockFeed",
    "DeliverChannel",
    "DeliverSettings",
    "FeedClosed",
    "deliver",
]

_LOG = logging.getLogger(__name__)

DEFAULT_TIME_WINDOW_S = 15 * 60.0
"""Fabric's default `authentication.timewindow`."""

SUCCESS = common_pb2.SUCCESS
BAD_REQUEST = common_pb2.BAD_REQUEST
FORBIDDEN = common_pb2.FORBIDDEN
NOT_FOUND = common_pb2.NOT_FOUND
SERVICE_UNAVAILABLE = common_pb2.SERVICE_UNAVAILABLE

SendBlock = Callable[[bytes], Awaitable[None]]


class FeedClosed(MedledgerError):
    """The channel's block feed was closed (channel removed or node stopping)."""


class DeliverChannel(Protocol):
    """A channel as the Deliver core sees it."""

    def height(self) -> int:
        """The number of blocks stored."""

    def config_sequence(self) -> int:
        """Changes whenever the channel config (and so the Readers policy) changes."""

    def authorize(self, signed_data: SignedData) -> float:
        """Check the Readers policy; returns when (epoch seconds) the verdict expires.

        Raises:
            PolicyError, IdentityError, CryptoError: the requester may not read.
        """

    async def block_bytes(self, number: int) -> bytes:
        """The stored bytes of block `number` (< height)."""

    async def wait_for_height(self, height: int) -> None:
        """Return once at least `height` blocks are stored (raises FeedClosed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSettings:
    """Server-side knobs: the timestamp window, mutual TLS, the clock."""

    time_window_s: float = DEFAULT_TIME_WINDOW_S
    mutual_tls: bool = False
    clock: Callable[[], float] = time.time


async def deliver(
    envelope: bytes,
    *,
    channels: Callable[[str], DeliverChannel | None],
    send_block: SendBlock,
    tls_cert_hash: bytes | None = None,
    settings: DeliverSettings = DeliverSettings(),
) -> int:
    """Serve one seek request; returns the final common.Status to send."""
    try:
        seek = parse_seek_envelope(envelope)
    except WireError as error:
        _LOG.info("deliver rejected: %s", error)
        return BAD_REQUEST
    problem = check_seek_header(seek, tls_cert_hash=tls_cert_hash, settings=settings)
    if problem:
        _LOG.info("deliver rejected channel=%s: %s", seek.envelope.channel_id, problem)
        return BAD_REQUEST
    channel = channels(seek.envelope.channel_id)
    if channel is None:
        return NOT_FOUND
    session = _Session(channel, envelope_signed_data(seek.envelope), settings.clock)
    if not session.is_authorized():
        return FORBIDDEN
    height = channel.height()
    start = resolve_start(seek.start, height)
    stop = resolve_stop(
        seek.stop, start=start, same=seek.start == seek.stop, height=height
    )
    if stop is not None and stop < start:
        return BAD_REQUEST
    return await _stream(seek, channel, session, start, stop, send_block)


def check_seek_header(
    seek: ParsedSeek, *, tls_cert_hash: bytes | None, settings: DeliverSettings
) -> str:
    """Why the seek's channel header is unacceptable, or "" when it is fine."""
    header = seek.envelope.channel_header
    if header.timestamp is None:
        return "channel header has no timestamp"
    sent_s = header.timestamp.seconds + header.timestamp.nanos / 1e9
    skew_s = abs(settings.clock() - sent_s)
    if skew_s > settings.time_window_s:
        return (
            f"timestamp is {skew_s:.0f}s away from server time "
            f"(window {settings.time_window_s:.0f}s)"
        )
    if header.tls_cert_hash:
        if tls_cert_hash is None or header.tls_cert_hash != tls_cert_hash:
            return "tls_cert_hash does not match the client's TLS certificate"
    elif settings.mutual_tls:
        return "mutual TLS requires the request to carry its tls_cert_hash"
    return ""


def resolve_start(position: SeekPosition, height: int) -> int:
    """The first block number a start position names."""
    if position.kind == "oldest":
        return 0
    if position.kind == "newest":
        return max(height - 1, 0)
    if position.kind == "next_commit":
        return height
    return position.number


def resolve_stop(
    position: SeekPosition, *, start: int, same: bool, height: int
) -> int | None:
    """The last block number a stop position names; None means never stop."""
    if position.kind == "oldest":
        return start
    if position.kind == "newest":
        return start if same else max(height - 1, 0)
    if position.kind == "next_commit":
        return None
    return position.number


async def _stream(
    seek: ParsedSeek,
    channel: DeliverChannel,
    session: _Session,
    start: int,
    stop: int | None,
    send_block: SendBlock,
) -> int:
    number = start
    while stop is None or number <= stop:
        if channel.height() <= number:
            if seek.behavior == FAIL_IF_NOT_READY:
                return NOT_FOUND
            try:
                await channel.wait_for_height(number + 1)
            except FeedClosed:
                return SERVICE_UNAVAILABLE
        if not session.is_authorized():
            return FORBIDDEN
        await send_block(await channel.block_bytes(number))
        number += 1
    return SUCCESS


class _Session:
    """The Readers verdict for one request, re-checked on config change or expiry."""

    __slots__ = ("_channel", "_clock", "_expires_s", "_sequence", "_signed_data")

    def __init__(
        self,
        channel: DeliverChannel,
        signed_data: SignedData,
        clock: Callable[[], float],
    ) -> None:
        self._channel = channel
        self._signed_data = signed_data
        self._clock = clock
        self._sequence = -1
        self._expires_s = 0.0

    def is_authorized(self) -> bool:
        sequence = self._channel.config_sequence()
        if sequence == self._sequence and self._clock() < self._expires_s:
            return True
        try:
            self._expires_s = self._channel.authorize(self._signed_data)
        except (PolicyError, IdentityError, CryptoError) as error:
            _LOG.info("deliver forbidden: %s", error)
            return False
        self._sequence = sequence
        return True


class BlockFeed:
    """A block store seen from asyncio: height, recent blocks, waiting for new ones.

    The store calls its listeners in the writer's thread after each append; the feed
    hops to the event loop with `call_soon_threadsafe` and wakes the waiters, and keeps
    the last few blocks' bytes so that live subscribers do not read the disk. A writer
    that has a block's bytes already says so with `expect` before appending, and the
    feed keeps those instead of serialising the block again. Create it inside the
    running loop; `close()` removes the listener and fails the waiters.
    """

    def __init__(self, store: BlockStore, *, cached_blocks: int = 16) -> None:
        self._store = store
        self._loop = asyncio.get_running_loop()
        self._recent: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._cached_blocks = cached_blocks
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._expected: dict[int, tuple[common_pb2.Block, bytes]] = {}
        """Bytes of blocks about to be appended, by number, with the block object."""
        self._remove_listener = store.add_listener(self._on_append)

    def height(self) -> int:
        return self._store.height

    async def block_bytes(self, number: int) -> bytes:
        """The block's bytes: from memory when recent, else read in a worker thread."""
        cached = self._recent.get(number)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self._store.block_bytes, number)

    async def wait_for_height(self, height: int) -> None:
        """Return once the store holds `height` blocks (raises FeedClosed)."""
        while self._store.height < height:
            if self._closed:
                raise FeedClosed("block feed closed")
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._remove_listener()
        self._wake()

    def expect(self, block: common_pb2.Block, data: bytes) -> None:
        """`data` is `block.SerializeToString()`, and `block` is about to be appended.

        Call it in the appending thread, just before the append. Only an append of
        this very object uses `data`; an append that fails leaves an entry that the
        next append of that number replaces or ignores.
        """
        self._expected[block.header.number] = (block, data)

    def _on_append(self, block: common_pb2.Block) -> None:
        """Runs in the writer's thread: serialise there (unless the writer had the
        bytes), then hop to the loop."""
        number = block.header.number
        expected = self._expected.pop(number, None)
        if expected is not None and expected[0] is block:
            data = expected[1]
        else:
            data = block.SerializeToString()
        self._loop.call_soon_threadsafe(self._stored, number, data)

    def _stored(self, number: int, data: bytes) -> None:
        self._recent[number] = data
        while len(self._recent) > self._cached_blocks:
            self._recent.popitem(last=False)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
