"""Chaincode support: the peer's side of the chaincode stream protocol.

- `handler`: one stream's state machine (handshake, transactions, state requests).
- `requests`: the answer to each state request type; `context`: one transaction.
- `registry`: running chaincodes by package id, waiting for registration.
- `support`: the `protos.ChaincodeSupport/Register` service and the CCaaS dialer.
- `launcher`: starting chaincode processes and restarting them when they exit.
- `execute`: `ChaincodeExecutor.execute`, what the endorser calls.
- `stream`: the server and client ends of a stream behind one interface.
"""

from peer.chaincode.context import CollectionAccess, TransactionContext
from peer.chaincode.execute import (
    ChaincodeExecutor,
    ChaincodeInfo,
    ExecutionResult,
    Lifecycle,
    StaticLifecycle,
)
from peer.chaincode.handler import ChaincodeHandler
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.requests import QueryLimits
from peer.chaincode.support import (
    SERVER_OPTIONS,
    ChaincodeService,
    ChaincodeSupportService,
    ServiceEndpoint,
    add_chaincode_support,
)

__all__ = [
    "SERVER_OPTIONS",
    "ChaincodeExecutor",
    "ChaincodeHandler",
    "ChaincodeInfo",
    "ChaincodeRegistry",
    "ChaincodeService",
    "ChaincodeSupportService",
    "CollectionAccess",
    "ExecutionResult",
    "Lifecycle",
    "QueryLimits",
    "ServiceEndpoint",
    "StaticLifecycle",
    "TransactionContext",
    "add_chaincode_support",
]
