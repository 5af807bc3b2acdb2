"""The public API of the chaincode SDK is pinned: it changes only on purpose."""

from __future__ import annotations

import types

import pytest

import chaincode
import chaincode.contract
import chaincode.shim
import chaincode.testing

EXPECTED = {
    chaincode: [
        "KV",
        "Chaincode",
        "ChaincodeError",
        "ChaincodeResponse",
        "ChaincodeSdkError",
        "ChaincodeServer",
        "ChaincodeStub",
        "ClientIdentity",
        "ClientTls",
        "Context",
        "Contract",
        "ContractChaincode",
        "HistoryQueryIterator",
        "InvalidKeyError",
        "KeyEndorsementPolicy",
        "KeyModification",
        "PeerRequestError",
        "QueryResponseMetadata",
        "ServerTls",
        "ShimProtocolError",
        "StateQueryIterator",
        "StreamClosedError",
        "create_composite_key",
        "query",
        "serve_peer",
        "split_composite_key",
        "transaction",
    ],
    chaincode.contract: [
        "SYSTEM_CONTRACT",
        "ClientIdentity",
        "Context",
        "Contract",
        "ContractChaincode",
        "Parameter",
        "TransactionSpec",
        "query",
        "split_function_name",
        "transaction",
    ],
    chaincode.shim: [
        "KV",
        "VALIDATION_PARAMETER",
        "Chaincode",
        "ChaincodeServer",
        "ChaincodeStub",
        "ClientTls",
        "HistoryQueryIterator",
        "KeyEndorsementPolicy",
        "KeyModification",
        "MessageStream",
        "PeerRequester",
        "QueryIterator",
        "QueryResponseMetadata",
        "ServerTls",
        "ShimHandler",
        "ShimSession",
        "ShimState",
        "StateQueryIterator",
        "TransactionInfo",
        "create_composite_key",
        "execute",
        "info_from_parts",
        "serve_peer",
        "split_composite_key",
        "transaction_info",
    ],
    chaincode.testing: [
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
    ],
}


@pytest.mark.parametrize("module", EXPECTED, ids=lambda module: module.__name__)
def test_all_is_pinned_and_sorted(module: types.ModuleType) -> None:
    """`__all__` is exactly the expected names, sorted as ruff sorts them."""
    assert module.__all__ == EXPECTED[module]


@pytest.mark.parametrize("module", EXPECTED, ids=lambda module: module.__name__)
def test_every_public_name_is_exported(module: types.ModuleType) -> None:
    """Nothing public exists without being in `__all__`, and every entry resolves."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(module.__all__)
