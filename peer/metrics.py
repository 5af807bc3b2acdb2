"""The peer's metrics, in the process registry (`common.metrics.REGISTRY`).

Names follow Fabric's where Fabric has the metric (`endorser_*`, `ledger_*`);
`privdata_purges_total` is our own: one per completed purge of a private key.
`ledger_blockchain_height` is read at scrape time (`peer.operations`).
"""

from __future__ import annotations

from collections.abc import Iterable

from common.metrics import REGISTRY
from protos.peer import transaction_pb2

__all__ = [
    "PROPOSALS_RECEIVED",
    "PURGES",
    "SUCCESSFUL_PROPOSALS",
    "TRANSACTIONS",
    "count_transactions",
]

PROPOSALS_RECEIVED = REGISTRY.counter(
    "endorser_proposals_received", "The number of proposals received."
)
SUCCESSFUL_PROPOSALS = REGISTRY.counter(
    "endorser_successful_proposals",
    "The number of proposals answered with a status below 400.",
)
TRANSACTIONS = REGISTRY.counter(
    "ledger_transaction_count",
    "Number of transactions committed, by validation code.",
    labels=("channel", "validation_code"),
)
PURGES = REGISTRY.counter(
    "privdata_purges_total",
    "Private keys purged with their history (PurgePrivateData), at commit.",
    labels=("channel", "namespace", "collection"),
)

_CODE_NAMES = {
    number: name for name, number in transaction_pb2.TxValidationCode.items()
}


def count_transactions(channel_id: str, codes: Iterable[int]) -> None:
    """Count a committed block's transactions by validation code."""
    for code in codes:
        TRANSACTIONS.labels(channel_id, _CODE_NAMES.get(code, str(code))).inc()
