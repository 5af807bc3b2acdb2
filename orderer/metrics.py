"""The orderer's metrics, in the process registry (`common.metrics.REGISTRY`).

`broadcast_processed_count` keeps Fabric's name and labels: one per envelope Broadcast
admitted (SUCCESS: handed to its chain) or refused (the status answered).
`ledger_blockchain_height` is read at scrape time (`orderer.operations`).
"""

from __future__ import annotations

from common.metrics import REGISTRY
from protos.common import common_pb2

__all__ = ["BROADCAST_PROCESSED", "count_broadcast"]

BROADCAST_PROCESSED = REGISTRY.counter(
    "broadcast_processed_count",
    "The number of transactions processed.",
    labels=("channel", "type", "status"),
)

_STATUS_NAMES = {number: name for name, number in common_pb2.Status.items()}
_TYPE_NAMES = {number: name for name, number in common_pb2.HeaderType.items()}


def count_broadcast(channel_id: str, header_type: int | None, status: int) -> None:
    """Count one envelope (`header_type` None: it did not decode)."""
    type_name = "" if header_type is None else _TYPE_NAMES.get(header_type, "")
    BROADCAST_PROCESSED.labels(
        channel_id, type_name, _STATUS_NAMES.get(status, str(status))
    ).inc()
