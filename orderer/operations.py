"""The orderer's operations endpoint: metrics and the height of every joined channel.

Composes `common.operations.OperationsServer` for an orderer: the process metrics
(`orderer.metrics` and the rest of `common.metrics.REGISTRY`) and
`ledger_blockchain_height`, each joined channel's block count, read at scrape time.
"""

from __future__ import annotations

from common.metrics import REGISTRY, Registry
from common.operations import OperationsServer, OperationsSettings
from orderer.registrar import Registrar

__all__ = ["orderer_operations"]


def orderer_operations(
    settings: OperationsSettings, registrar: Registrar
) -> OperationsServer:
    """The operations server of an orderer over its registrar's channels (not started)."""
    own = Registry()
    own.callback_gauge(
        "ledger_blockchain_height",
        "Height of the chain in blocks.",
        lambda: _heights(registrar),
        labels=("channel",),
    )
    return OperationsServer(settings, registries=(REGISTRY, own))


def _heights(registrar: Registrar) -> dict[tuple[str, ...], float]:
    heights: dict[tuple[str, ...], float] = {}
    for name in registrar.names():
        support = registrar.support(name)
        if support is not None:
            heights[(name,)] = support.height()
    return heights
