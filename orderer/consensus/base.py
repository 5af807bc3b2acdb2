"""The ordering backend interface: what a consensus implementation gets and provides.

The registrar gives each channel's chain a `ChainSupport` (its block store, config,
block cutter and signer); a backend turns a `ChainSupport` into a `Chain` that orders
envelopes into blocks. Broadcast calls `Chain.order` once per accepted envelope and
answers SUCCESS only when it returns, so an acknowledged envelope is in a block on
this orderer's disk. Backends: `solo` (orderer.consensus.solo) and `etcd`
(orderer.consensus.etcd).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import grpc

from common.channelconfig import ChannelConfig
from orderer.blockcutter import BlockCutter
from protos.common import common_pb2

__all__ = [
    "Chain",
    "ChainSupport",
    "ClosableBackend",
    "GrpcBackend",
    "OrderingBackend",
    "Revalidator",
]


class ChainSupport(Protocol):
    """One channel's resources, provided by the registrar."""

    channel_id: str

    def height(self) -> int:
        """Blocks stored on this orderer (the next block's number)."""

    def last_block_header_hash(self) -> bytes:
        """Header hash of the last stored block (the next block's previous_hash)."""

    def channel_config(self) -> ChannelConfig:
        """The channel's current config (from its last config block)."""

    def new_block_cutter(self) -> BlockCutter:
        """A fresh cutter for the current BatchSize."""

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block:
        """An unsigned block: number = height, previous hash and data hash set."""

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block:
        """A copy with this orderer's signature and the last-config metadata."""

    def append_block(
        self,
        block: common_pb2.Block,
        *,
        tx_ids: Sequence[str] | None = None,
        serialized: bytes | None = None,
    ) -> None:
        """Append with one fsync (blocking: call it through `asyncio.to_thread`).

        `tx_ids`, when the caller knows them, are the envelopes' ChannelHeader tx ids
        ("" for none), so that the store does not decode every envelope again.
        `serialized`, when the caller has it, is `block.SerializeToString()` (the
        value read from or written to etcd): Deliver's feed keeps it rather than
        serialising the block again.

        Idempotent: a block already stored (same number, same header hash) is a no-op.

        Raises:
            BlockRejected: a different block with that number is stored, or the block
                does not extend the chain.
        """

    def is_config(self, envelope: bytes) -> bool:
        """Whether the envelope is a CONFIG transaction (it must be alone in a block)."""


@runtime_checkable
class Revalidator(Protocol):
    """A `ChainSupport` that checks envelopes again under a newer config (the
    registrar's); chains use it when the support provides it."""

    def config_sequence(self) -> int:
        """The sequence of the channel's current config."""

    def process_normal(self, envelope: bytes) -> None:
        """Check a non-config envelope against the current config, as Broadcast does.

        Raises:
            BroadcastRejected: it no longer passes (the status to answer).
        """


class Chain(Protocol):
    """Orders one channel's envelopes."""

    async def start(self) -> None: ...

    async def order(self, envelope: bytes) -> int:
        """Resolve once `envelope` is in a block appended to this orderer's store.

        Returns the block number.

        Raises:
            BackendUnavailable: the chain cannot order now (answered SERVICE_UNAVAILABLE).
        """

    def submit(
        self,
        envelope: bytes,
        *,
        config_sequence: int,
        is_config: bool,
        tx_id: str | None = None,
    ) -> asyncio.Future[int]:
        """Start ordering an envelope Broadcast admitted; the future resolves as
        `order` does.

        `config_sequence` is the sequence of the channel config the envelope was
        checked against: an envelope cut under a later config is checked again (and
        fails with BroadcastRejected if it no longer passes). `is_config` tells a
        CONFIG envelope (made from a CONFIG_UPDATE) without parsing it again, and
        `tx_id` its tx id (None: unknown).
        """

    async def stop(self) -> None: ...


class OrderingBackend(Protocol):
    """Makes chains: "solo" or "etcd"."""

    name: str

    def new_chain(self, support: ChainSupport) -> Chain: ...


@runtime_checkable
class ClosableBackend(Protocol):
    """A backend holding connections: the node closes it after every chain stopped."""

    async def close(self) -> None: ...


@runtime_checkable
class GrpcBackend(Protocol):
    """A backend that serves its own gRPC methods on the orderer's listener."""

    def rpc_handlers(self) -> Sequence[grpc.GenericRpcHandler[Any, Any]]: ...
