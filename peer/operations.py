"""The peer's operations endpoint: health of its ledgers, metrics, version.

Composes `common.operations.OperationsServer` for a peer: the process metrics
(`peer.metrics` and the rest of `common.metrics.REGISTRY`), the height of every joined
channel read at scrape time (`ledger_blockchain_height`), and a `ledger` health check
that every joined channel's database answers a read.
"""

from __future__ import annotations

import asyncio

from common.metrics import REGISTRY, Registry
from common.operations import OperationsServer, OperationsSettings
from peer.channels import Channels

__all__ = ["peer_operations"]


def peer_operations(
    settings: OperationsSettings, channels: Channels
) -> OperationsServer:
    """The operations server of a peer over its joined channels (not started)."""
    own = Registry()
    own.callback_gauge(
        "ledger_blockchain_height",
        "Height of the chain in blocks.",
        lambda: {(channel.channel_id,): channel.height() for channel in channels.all()},
        labels=("channel",),
    )

    async def ledger() -> None:
        await asyncio.to_thread(_read_savepoints, channels)

    return OperationsServer(
        settings, registries=(REGISTRY, own), checks={"ledger": ledger}
    )


def _read_savepoints(channels: Channels) -> None:
    for channel in channels.all():
        channel.ledger.savepoint()
