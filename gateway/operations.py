"""The gateway's operations endpoint: metrics and a health check of its peers.

Composes `common.operations.OperationsServer` for a gateway: the process metrics
(`gateway.metrics` and the rest of `common.metrics.REGISTRY`) and a `peers` health
check that fails while a served channel has no peer the gateway can reach.
"""

from __future__ import annotations

from common.errors import MedledgerError
from common.metrics import REGISTRY
from common.operations import OperationsServer, OperationsSettings
from gateway.context import GatewayContext

__all__ = ["gateway_operations"]


def gateway_operations(
    settings: OperationsSettings, context: GatewayContext
) -> OperationsServer:
    """The operations server of a gateway (not started)."""

    async def peers() -> None:
        registry = context.registry
        for channel in context.channels.views:
            if not any(
                registry.status(channel, peer).reachable
                for peer in registry.candidates(channel)
            ):
                raise MedledgerError(f"no reachable peer serves channel {channel}")

    return OperationsServer(settings, registries=(REGISTRY,), checks={"peers": peers})
