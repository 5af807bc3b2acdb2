"""Pulling a channel's blocks from its orderers and handing each to the committer.

Between order and commit. One `BlockPuller` per joined channel keeps one
`orderer.AtomicBroadcast/Deliver` stream open: a seek signed by the peer from the
ledger's height to the end of time, BLOCK_UNTIL_READY. Every block received is
committed (verified, validated, appended) before the next is read, so the height is
always the resumption point. When a stream fails — the orderer is unreachable, answers
a status, sends a block that does not verify or follow, or stays silent longer than
`idle_timeout_s` — the puller moves to the next endpoint after a bounded exponential
backoff, which resets once a block arrives. Endpoints are asked for afresh on every
attempt, since a config block may change them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError

from common.errors import BlockRejected
from common.msp import SigningIdentity
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from peer.errors import BlockVerificationError
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["BlockPuller", "PullTarget", "PullerGroup", "PullerSettings"]

_LOG = logging.getLogger(__name__)

DELIVER_METHOD = "/orderer.AtomicBroadcast/Deliver"
SEEK_STOP = (1 << 63) - 1
"""Fabric peers ask for blocks up to the largest number; the stream never ends by itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PullerSettings:
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    """No message for this long: the stream is presumed dead and re-opened."""


class PullTarget(Protocol):
    """The channel as the puller sees it (`PeerChannel`)."""

    @property
    def channel_id(self) -> str: ...

    def height(self) -> int: ...

    async def commit(self, block: common_pb2.Block) -> Sequence[int]:
        """Verify, validate and commit; the transactions' validation codes.

        Raises BlockVerificationError for a block that does not verify or follow.
        """
        ...


Dial = Callable[[str], grpc.aio.Channel]
"""Opens a grpc channel to an orderer address (TLS as the channel config says)."""


class BlockPuller:
    """Keeps one channel's ledger up with its orderers (see the module docstring)."""

    def __init__(
        self,
        target: PullTarget,
        *,
        signer: SigningIdentity,
        endpoints: Callable[[], Sequence[str]],
        dial: Dial,
        tls_cert_hash: bytes | None = None,
        settings: PullerSettings = PullerSettings(),
    ) -> None:
        self._target = target
        self._signer = signer
        self._endpoints = endpoints
        self._dial = dial
        self._tls_cert_hash = tls_cert_hash
        self._settings = settings
        self._next = 0
        self.connections = 0
        """Streams opened so far (for tests and logs)."""

    async def run(self) -> None:
        """Pull until cancelled; a LedgerError (unusable storage) ends it."""
        settings = self._settings
        delay = settings.backoff_initial_s
        while True:
            endpoints = list(self._endpoints())
            if not endpoints:
                _LOG.warning("no orderer endpoints channel=%s", self._target.channel_id)
            else:
                address = endpoints[self._next % len(endpoints)]
                progressed = await self._pull_from(address)
                if progressed:
                    delay = settings.backoff_initial_s
                    continue
                self._next += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.backoff_max_s)

    async def _pull_from(self, address: str) -> bool:
        """One stream to one orderer; whether any block was committed from it."""
        channel_id = self._target.channel_id
        progressed = False
        channel = self._dial(address)
        try:
            await _connect(channel, self._settings.connect_timeout_s)
            self.connections += 1
            call = _open_deliver(channel)
            await call.write(self._seek())
            while True:
                block = await self._next_block(call, address)
                if block is None:
                    return progressed
                await self._commit(block, address)
                progressed = True
        except (TimeoutError, grpc.aio.AioRpcError) as error:
            _LOG.info(
                "deliver stream ended channel=%s orderer=%s: %s",
                channel_id,
                address,
                _describe(error),
            )
            return progressed
        except (BlockVerificationError, BlockRejected) as error:
            _LOG.warning(
                "rejected a block channel=%s orderer=%s: %s", channel_id, address, error
            )
            return False
        finally:
            await channel.close(None)

    async def _next_block(self, call: Any, address: str) -> common_pb2.Block | None:
        """The next block on the stream, or None once the orderer sent a status."""
        async with asyncio.timeout(self._settings.idle_timeout_s):
            data = await call.read()
        if not isinstance(data, bytes):  # grpc.aio.EOF
            _LOG.info(
                "deliver stream closed channel=%s orderer=%s", self._channel, address
            )
            return None
        try:
            response = ab_pb2.DeliverResponse.FromString(data)
        except DecodeError:
            _LOG.warning("undecodable deliver response orderer=%s", address)
            return None
        if response.WhichOneof("Type") != "block":
            _LOG.info(
                "orderer answered status=%s channel=%s orderer=%s",
                common_pb2.Status.Name(response.status)
                if response.status in common_pb2.Status.values()
                else response.status,
                self._channel,
                address,
            )
            return None
        return response.block

    async def _commit(self, block: common_pb2.Block, address: str) -> None:
        expected = self._target.height()
        if block.header.number != expected:
            raise BlockVerificationError(
                f"orderer {address} sent block {block.header.number}, expected "
                f"{expected}",
                block_number=block.header.number,
            )
        codes = await self._target.commit(block)
        _LOG.debug(
            "committed block channel=%s number=%d txs=%d",
            self._channel,
            block.header.number,
            len(codes),
        )

    def _seek(self) -> bytes:
        envelope = create_seek_envelope(
            channel_id=self._target.channel_id,
            start=SeekPosition.specified(self._target.height()),
            stop=SeekPosition.specified(SEEK_STOP),
            behavior=BLOCK_UNTIL_READY,
            creator=self._signer.serialized,
            signer=self._signer.sign,
            tls_cert_hash=self._tls_cert_hash,
        )
        return envelope.SerializeToString()

    @property
    def channel_id(self) -> str:
        return self._target.channel_id

    @property
    def _channel(self) -> str:
        return self._target.channel_id


async def _connect(channel: grpc.aio.Channel, timeout_s: float) -> None:
    """Wait until the channel is READY; a failed connection attempt fails at once.

    Raises:
        TimeoutError: not connected within `timeout_s`, or the attempt failed.
    """
    async with asyncio.timeout(timeout_s):
        state = channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.READY:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                raise TimeoutError("the connection attempt failed")
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)


def _open_deliver(channel: grpc.aio.Channel) -> Any:
    """A raw-bytes Deliver call (the request is written, responses read one by one)."""
    method = channel.stream_stream(DELIVER_METHOD)  # type: ignore[call-arg]
    return method()  # type: ignore[call-arg]


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return "timed out" if isinstance(error, TimeoutError) else str(error)


class PullerGroup:
    """One `BlockPuller` per channel, run in one TaskGroup until `stop`.

    `run` is the node's job; `add` may be called before or while it runs (a channel
    joined later gets its puller at once). A puller that fails with an error it does
    not handle (an unusable ledger) ends the group, and with it the node.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[BlockPuller | None] = asyncio.Queue(
            maxsize=_QUEUE_MAX
        )
        self._running = False
        self._done = asyncio.Event()
        self.pullers: list[BlockPuller] = []

    def add(self, puller: BlockPuller) -> None:
        self.pullers.append(puller)
        self._queue.put_nowait(puller)

    async def run(self) -> None:
        self._running = True
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                while (puller := await self._queue.get()) is not None:
                    name = f"puller {puller.channel_id}"
                    tasks.append(group.create_task(puller.run(), name=name))
                for task in tasks:
                    task.cancel()
        finally:
            self._done.set()

    async def stop(self, timeout_s: float) -> None:
        """Cancel every puller and wait (bounded) until they are gone."""
        self._queue.put_nowait(None)
        if self._running:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._done.wait()
            except TimeoutError:
                _LOG.warning("block pullers did not stop within %.1f s", timeout_s)


_QUEUE_MAX = 10_000
