"""The Python client of the medledger gateway (and of any Fabric 2.4+ gateway).

The shape follows the official Fabric Gateway clients: a `Gateway` connection as one
identity, a `Network` per channel, a `Contract` per chaincode; errors by phase; every
signed step available as bytes and digest for offline signing; event streams that
resume from a checkpoint. See `gateway.client._gateway` for a usage sketch.
"""

from gateway.client._checkpoint import (
    Checkpoint,
    Checkpointer,
    FileCheckpointer,
    InMemoryCheckpointer,
)
from gateway.client._connection import CallTimeouts
from gateway.client._errors import (
    ClientError,
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    SubmitError,
)
from gateway.client._events import ChaincodeEvent
from gateway.client._gateway import Contract, Gateway, Network
from gateway.client._identity import (
    Identity,
    Signer,
    digest,
    identity_from_msp,
    signer_from_msp,
)
from gateway.client._transaction import (
    Commit,
    Proposal,
    Status,
    SubmittedTransaction,
    Transaction,
)
from gateway.errors import ErrorDetail

__all__ = [
    "CallTimeouts",
    "ChaincodeEvent",
    "Checkpoint",
    "Checkpointer",
    "ClientError",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Identity",
    "InMemoryCheckpointer",
    "Network",
    "Proposal",
    "Signer",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "digest",
    "identity_from_msp",
    "signer_from_msp",
]
