"""The channels this orderer has joined: one folder, block store, config and chain each.

Layout under the storage folder: `channels/<name>/` holds the channel's block store.
Joining writes the join block into `channels/.joining-<name>/` and renames the folder
once the block is durable, so a crash mid-join leaves no half-joined channel. On start
every channel folder is reopened: the config comes from the last config block (found
through the last block's last-config metadata) and the backend starts its chain.

`ChannelSupport` is what the backend's chain (`ChainSupport`), Broadcast (the
`EnvelopeChecker` of the current config, config updates) and Deliver (`DeliverChannel`)
see of a channel. Appending a config block makes its config the current one: later
blocks carry its number as last config, Broadcast checks against it, and a new block
cutter takes its BatchSize.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from common.blockstore import BlockStore
from common.channel_folders import (
    CHANNELS_FOLDER,
    create_channel_folder,
    is_valid_channel_name,
    joined_channel_folders,
)
from common.channelconfig import ChannelConfig
from common.deliver import BlockFeed
from common.errors import BlockRejected, ChannelConfigError, CorruptBlockStore
from common.msp import SigningIdentity
from common.policies import SignedData as PolicySignedData
from common.protoutil import (
    SignedData,
    block_header_hash,
    last_config_index,
    new_block,
    sign_block,
)
from common.threads import in_thread_to_completion
from orderer.blockcutter import BlockCutter
from orderer.broadcast import EnvelopeChecker, parse_broadcast_envelope
from orderer.configupdate import propose_config_tx, revalidate_config_tx
from orderer.consensus.base import Chain, OrderingBackend
from orderer.errors import ChannelExists, ChannelNotJoined, JoinRejected
from protos.common import common_pb2

__all__ = [
    "CHANNELS_FOLDER",
    "ChannelInfo",
    "ChannelSupport",
    "Registrar",
    "is_valid_channel_name",
]

_LOG = logging.getLogger(__name__)

READERS = "/Channel/Readers"
# The ConsensusType each backend orders (an etcd channel presents as etcdraft).
_CONSENSUS_TYPES = {"solo": "solo", "etcd": "etcdraft"}


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What the participation API reports about a channel."""

    name: str
    consensus_relation: str
    status: str
    height: int


class ChannelSupport:
    """One joined channel's store, config and signer (see the module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        store: BlockStore,
        feed: BlockFeed,
        signer: SigningIdentity,
    ) -> None:
        self.channel_id = channel_id
        self._store = store
        self._feed = feed
        self._signer = signer
        last = store.block_by_number(store.height - 1)
        self._last_config_index = last_config_index(last)
        self._set_config(store.block_by_number(self._last_config_index))

    # ChainSupport

    def height(self) -> int:
        return self._store.height

    def last_block_header_hash(self) -> bytes:
        return self._store.blockchain_info().currentBlockHash

    def channel_config(self) -> ChannelConfig:
        return self._config

    def new_block_cutter(self) -> BlockCutter:
        return BlockCutter(self._config.batch_size)

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block:
        return new_block(
            self.height(),
            previous_hash=self.last_block_header_hash(),
            envelopes=envelopes,
        )

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block:
        is_config = _is_config_block(block)
        return sign_block(
            block,
            signer=self._signer.sign,
            creator=self._signer.serialized,
            last_config_index=(
                block.header.number if is_config else self._last_config_index
            ),
        )

    def append_block(
        self,
        block: common_pb2.Block,
        *,
        tx_ids: Sequence[str] | None = None,
        serialized: bytes | None = None,
    ) -> None:
        number = block.header.number
        if number < self._store.height:
            stored = self._store.block_by_number(number).header
            if block_header_hash(stored) != block_header_hash(block.header):
                raise BlockRejected(
                    "a different block with this number is stored",
                    block_number=number,
                    expected=block_header_hash(stored),
                    actual=block_header_hash(block.header),
                )
            return
        if serialized is not None:
            self._feed.expect(block, serialized)
        self._store.append(block, tx_ids=tx_ids)
        if _is_config_block(block):
            self._last_config_index = number
            self._set_config(block)

    def is_config(self, envelope: bytes) -> bool:
        return _header_type(envelope) == common_pb2.CONFIG

    def process_config(self, envelope: bytes) -> bytes:
        """The CONFIG envelope to cut now, made again if the config moved since Broadcast.

        Call it at cut time for each config envelope, after every earlier block is
        appended (a chain's extension of `ChainSupport`; see `revalidate_config_tx`).

        Raises:
            BroadcastRejected: the update no longer applies to the current config.
        """
        return revalidate_config_tx(
            self._config, envelope, signer=self._signer, checker=self._checker
        )

    def process_normal(self, envelope: bytes) -> None:
        """Check a non-config envelope against the current config (a `Revalidator`).

        Raises:
            BroadcastRejected: it no longer passes.
        """
        parsed = parse_broadcast_envelope(envelope)
        self._checker.check(parsed, size=len(envelope))

    # Broadcast

    @property
    def checker(self) -> EnvelopeChecker:
        return self._checker

    def propose_config_update(self, update: bytes) -> bytes:
        """The CONFIG envelope, signed by this orderer, that a checked CONFIG_UPDATE makes.

        Raises:
            BroadcastRejected: the update does not apply to the current config.
        """
        return propose_config_tx(self._config, update, signer=self._signer)

    # DeliverChannel

    def config_sequence(self) -> int:
        return self._config.sequence

    def authorize(self, signed_data: SignedData) -> float:
        msps = self._config.msp_manager
        self._config.policy_manager.get(READERS).evaluate(
            [
                PolicySignedData(
                    data=signed_data.message,
                    identity=signed_data.identity,
                    signature=signed_data.signature,
                )
            ],
            msps,
        )
        identity = msps.deserialize_identity(signed_data.identity)
        return identity.certificate.not_after.timestamp()

    async def block_bytes(self, number: int) -> bytes:
        return await self._feed.block_bytes(number)

    async def wait_for_height(self, height: int) -> None:
        await self._feed.wait_for_height(height)

    # Lifecycle

    def close_feed(self) -> None:
        """End Deliver waits on this channel; blocks already stored are still served."""
        self._feed.close()

    def close(self) -> None:
        self._feed.close()
        self._store.close()

    def _set_config(self, block: common_pb2.Block) -> None:
        config = ChannelConfig.from_block(block)
        self._config = config
        self._checker = EnvelopeChecker(config)


@dataclass(slots=True)
class _Joined:
    support: ChannelSupport
    chain: Chain


class Registrar:
    """The joined channels; join, remove, reopen on start, stop on shutdown."""

    def __init__(
        self, storage: Path, *, backend: OrderingBackend, signer: SigningIdentity
    ) -> None:
        self._folder = storage / CHANNELS_FOLDER
        self._backend = backend
        self._signer = signer
        self._channels: dict[str, _Joined] = {}
        self._lock = asyncio.Lock()

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def open_all(self) -> None:
        """Reopen every joined channel and start its chain (at node start).

        Raises:
            CorruptBlockStore: a channel's store is damaged beyond a torn tail.
        """
        for folder in await asyncio.to_thread(joined_channel_folders, self._folder):
            await self._open(folder.name, folder)

    def support(self, channel_id: str) -> ChannelSupport | None:
        joined = self._channels.get(channel_id)
        return None if joined is None else joined.support

    def chain(self, channel_id: str) -> Chain | None:
        joined = self._channels.get(channel_id)
        return None if joined is None else joined.chain

    def names(self) -> list[str]:
        return sorted(self._channels)

    def info(self, channel_id: str) -> ChannelInfo:
        """Raises ChannelNotJoined."""
        joined = self._channels.get(channel_id)
        if joined is None:
            raise ChannelNotJoined(f"channel {channel_id} does not exist")
        return ChannelInfo(
            name=channel_id,
            consensus_relation="other" if self._backend.name == "solo" else "consenter",
            status="active",
            height=joined.support.height(),
        )

    async def join(self, block: common_pb2.Block) -> ChannelInfo:
        """Join the channel that `block` (its genesis block) configures.

        Raises:
            JoinRejected: not a genesis config block, or for another backend.
            ChannelExists: the channel is already joined.
        """
        config = _join_config(block, backend=self._backend.name)
        name = config.channel_id
        async with self._lock:
            if name in self._channels or (self._folder / name).exists():
                raise ChannelExists(f"channel {name} already exists")
            folder = await in_thread_to_completion(  # the lock outlives the write
                functools.partial(
                    create_channel_folder,
                    self._folder,
                    name,
                    lambda staging: _write_join_block(staging, block),
                )
            )
            await self._open(name, folder)
        _LOG.info("joined channel=%s backend=%s", name, self._backend.name)
        return self.info(name)

    async def remove(self, channel_id: str) -> None:
        """Stop the chain, close the store and delete the channel's folder.

        Raises:
            ChannelNotJoined: no such channel.
        """
        async with self._lock:
            joined = self._channels.pop(channel_id, None)
            if joined is None:
                raise ChannelNotJoined(f"channel {channel_id} does not exist")
            await joined.chain.stop()
            joined.support.close()
            await in_thread_to_completion(
                functools.partial(shutil.rmtree, self._folder / channel_id)
            )
        _LOG.info("removed channel=%s", channel_id)

    def close_feeds(self) -> None:
        """End Deliver streams waiting for new blocks (first step of shutdown)."""
        for joined in self._channels.values():
            joined.support.close_feed()

    async def close(self) -> None:
        """Stop every chain (pending batches are written), then close the stores."""
        async with self._lock:
            joined_all, self._channels = list(self._channels.values()), {}
            for joined in joined_all:
                await joined.chain.stop()
            for joined in joined_all:
                joined.support.close()

    async def _open(self, name: str, folder: Path) -> None:
        store = await asyncio.to_thread(BlockStore.open, folder)
        try:
            if store.height == 0:
                raise CorruptBlockStore(
                    "channel folder holds no blocks", path=str(folder), offset=0
                )
            support = ChannelSupport(
                name, store=store, feed=BlockFeed(store), signer=self._signer
            )
        except BaseException:
            store.close()
            raise
        chain = self._backend.new_chain(support)
        await chain.start()
        self._channels[name] = _Joined(support, chain)


def _join_config(block: common_pb2.Block, *, backend: str) -> ChannelConfig:
    try:
        config = ChannelConfig.from_block(block)
    except ChannelConfigError as error:
        raise JoinRejected(f"invalid join block: {error}") from None
    if block.header.number != 0:
        raise JoinRejected(
            f"invalid join block: block {block.header.number} is not a genesis block "
            f"(joining from a later config block is not supported by {backend})"
        )
    if not is_valid_channel_name(config.channel_id):
        raise JoinRejected(f"invalid channel ID {config.channel_id!r}")
    if not config.application_orgs:
        raise JoinRejected(
            "invalid join block: the config has no application organisations"
        )
    expected = _CONSENSUS_TYPES[backend]
    if config.consensus_type != expected:
        raise JoinRejected(
            f"channel {config.channel_id} uses consensus type {config.consensus_type!r}"
            f" but this orderer runs the {backend} backend ({expected!r})"
        )
    return config


def _write_join_block(folder: Path, block: common_pb2.Block) -> None:
    with BlockStore.open(folder) as store:
        store.append(block)


def _is_config_block(block: common_pb2.Block) -> bool:
    data = block.data.data
    return len(data) == 1 and _header_type(data[0]) == common_pb2.CONFIG


def _header_type(envelope: bytes) -> int:
    """The ChannelHeader type, decoded with three plain parses; -1 if it does not parse."""
    try:
        payload = common_pb2.Payload.FromString(
            common_pb2.Envelope.FromString(envelope).payload
        )
        return common_pb2.ChannelHeader.FromString(payload.header.channel_header).type
    except DecodeError:
        return -1
