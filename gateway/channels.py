"""What the gateway knows of each channel it serves, kept current from a peer's blocks.

A `ChannelView` holds a channel's latest configuration (MSPs, policies, orderer
endpoints), its committed chaincode definitions (`_lifecycle`), its commit tracker and
the height the gateway has seen. `follow_channel` feeds it: it reads every block of the
channel from a peer's Deliver service, the gateway's own organisation's peers first,
from block 0 up to the newest (then the view is `ready`) and on as blocks commit. When
the peer fails it resumes at the next block from the best other peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import grpc
from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.errors import MedledgerError
from common.protoutil import (
    BLOCK_UNTIL_READY,
    SeekPosition,
    Signer,
    create_seek_envelope,
)
from gateway.blocks import block_transactions, config_of, lifecycle_writes
from gateway.commit import CommitTracker
from gateway.connections import PeerClient
from gateway.definitions import LifecycleState
from gateway.errors import StatusError
from gateway.registry import MAX_BLOCK, Registry
from protos.common import common_pb2
from protos.peer import events_pb2

__all__ = ["ChannelView", "Channels", "follow_channel"]

_LOG = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


class ChannelView:
    """One channel as seen through committed blocks (see the module docstring)."""

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.lifecycle = LifecycleState()
        self.commits = CommitTracker()
        self._config: ChannelConfig | None = None
        self._ready = asyncio.Event()
        self._height_changed = asyncio.Event()

    @property
    def height(self) -> int:
        return self.commits.next_block

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def config(self) -> ChannelConfig:
        """The latest channel configuration.

        Raises:
            StatusError: UNAVAILABLE before the first config block was read.
        """
        if self._config is None:
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE,
                f"channel {self.channel_id}: its configuration is not known yet",
            )
        return self._config

    def mark_ready(self) -> None:
        self._ready.set()

    async def wait_ready(self, limit_s: float) -> None:
        """Wait until the view has caught up with a peer's ledger.

        Raises:
            StatusError: UNAVAILABLE when that does not happen within `limit_s`.
        """
        if self._ready.is_set():
            return
        try:
            async with asyncio.timeout(limit_s):
                await self._ready.wait()
        except TimeoutError:
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE,
                f"channel {self.channel_id}: no peer has delivered its ledger yet",
            ) from None

    def apply_block(self, block: common_pb2.Block) -> None:
        """Take in the next committed block (earlier ones are ignored).

        Raises:
            WireError, ChannelConfigError: the block cannot be read.
        """
        number = block.header.number
        if number < self.commits.next_block:
            return
        config = config_of(block)
        if config is not None:
            self._config = config
        transactions = list(block_transactions(block))
        for tx in transactions:
            writes = lifecycle_writes(tx)
            if writes:
                self.lifecycle.apply(writes)
        self.commits.record_block(number, ((tx.tx_id, tx.code) for tx in transactions))


class Channels:
    """The views of every channel the gateway serves."""

    def __init__(self, channel_ids: tuple[str, ...]) -> None:
        self._views = {
            channel_id: ChannelView(channel_id) for channel_id in channel_ids
        }

    @property
    def views(self) -> Mapping[str, ChannelView]:
        return self._views

    def get(self, channel_id: str) -> ChannelView | None:
        return self._views.get(channel_id)


async def follow_channel(
    view: ChannelView, registry: Registry, *, creator: bytes, signer: Signer
) -> None:
    """Feed `view` with the channel's blocks until cancelled (see the module docstring)."""
    delay = _RETRY_FIRST_S
    while True:
        for peer in registry.evaluation_order(view.channel_id):
            before = view.height
            try:
                await _follow(view, peer, creator=creator, signer=signer)
            except (
                grpc.aio.AioRpcError,
                MedledgerError,
                ConnectionError,
                DecodeError,
            ) as error:
                _LOG.info(
                    "block stream ended peer=%s channel=%s error=%s",
                    peer.address,
                    view.channel_id,
                    error,
                )
            if view.height > before:
                delay = _RETRY_FIRST_S
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RETRY_MAX_S)


async def _follow(
    view: ChannelView, peer: PeerClient, *, creator: bytes, signer: Signer
) -> None:
    """Read blocks from one peer: up to its newest, then on; returns when it stops."""
    if not view.is_ready:
        status = await _read_blocks(
            view, peer, SeekPosition.newest(), creator=creator, signer=signer
        )
        if status != common_pb2.SUCCESS:
            raise ConnectionError(f"Deliver answered {_status_name(status)}")
        view.mark_ready()
        _LOG.info(
            "channel view ready channel=%s height=%d peer=%s",
            view.channel_id,
            view.height,
            peer.address,
        )
    status = await _read_blocks(
        view, peer, SeekPosition.specified(MAX_BLOCK), creator=creator, signer=signer
    )
    raise ConnectionError(f"Deliver answered {_status_name(status)}")


async def _read_blocks(
    view: ChannelView,
    peer: PeerClient,
    stop: SeekPosition,
    *,
    creator: bytes,
    signer: Signer,
) -> int | None:
    """Blocks from the view's height to `stop` into the view; returns the end status."""
    request = create_seek_envelope(
        channel_id=view.channel_id,
        start=SeekPosition.specified(view.height),
        stop=stop,
        behavior=BLOCK_UNTIL_READY,
        creator=creator,
        signer=signer,
    )
    stream = peer.open_deliver("Deliver")
    try:
        await stream.write(request.SerializeToString())
        async for data in stream:
            response = events_pb2.DeliverResponse.FromString(data)
            if not response.HasField("block"):
                return response.status
            view.apply_block(response.block)
    finally:
        stream.cancel()
    return None


def _status_name(status: int | None) -> str:
    if status is None:
        return "nothing (stream closed)"
    try:
        return common_pb2.Status.Name(status)
    except ValueError:
        return str(status)
