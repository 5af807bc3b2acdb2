"""Test helpers for chaincode authors: run and unit-test chaincode without a network.

`MockPeer` runs a chaincode (or contracts) against an in-memory `MockLedger` through
the shim's own code path; `MockStub` and `MockContext` let tests call contract functions
directly; `make_identity` makes a client identity with a real certificate (and Fabric CA
attributes). `TransactionSimulator` is the in-memory peer side of the chaincode protocol,
usable behind any transport.
"""

from chaincode.testing.identity import make_identity
from chaincode.testing.ledger import (
    BATCH_SIZE,
    MockLedger,
    RequestRefused,
    TransactionSimulator,
)
from chaincode.testing.mock import (
    DEFAULT_CHAINCODE,
    DEFAULT_CHANNEL,
    MockContext,
    MockRequester,
    MockStub,
    MockTransaction,
    transaction_message,
)
from chaincode.testing.peer import Event, InvocationResult, MockPeer, invocation_result
from chaincode.testing.selector import SelectorError, compile_query

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_CHAINCODE",
    "DEFAULT_CHANNEL",
    "Event",
    "InvocationResult",
    "MockContext",
    "MockLedger",
    "MockPeer",
    "MockRequester",
    "MockStub",
    "MockTransaction",
    "RequestRefused",
    "SelectorError",
    "TransactionSimulator",
    "compile_query",
    "invocation_result",
    "make_identity",
    "transaction_message",
]
