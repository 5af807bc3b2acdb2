"""Consensus: the `OrderingBackend` interface and choosing a backend from the config.

`create_backend(config)` returns solo or etcd. The etcd module provides
`create_backend(config: OrdererConfig) -> OrderingBackend` and is imported only when
an orderer is configured for it.
"""

from __future__ import annotations

import importlib

from orderer.config import OrdererConfig
from orderer.consensus.base import (
    Chain,
    ChainSupport,
    ClosableBackend,
    GrpcBackend,
    OrderingBackend,
)

__all__ = [
    "Chain",
    "ChainSupport",
    "ClosableBackend",
    "GrpcBackend",
    "OrderingBackend",
    "create_backend",
]


def create_backend(config: OrdererConfig) -> OrderingBackend:
    """The backend `config.backend.type` names."""
    if config.backend.type == "solo":
        from orderer.consensus.solo import SoloBackend

        return SoloBackend()
    module = importlib.import_module(f"orderer.consensus.{config.backend.type}")
    backend: OrderingBackend = module.create_backend(config)
    return backend
