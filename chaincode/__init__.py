"""The Python chaincode SDK: contract API, stub, shim and serving, test helpers.

Write chaincode as `Contract` subclasses with `@transaction` / `@query` functions that
take a `Context` (`ctx.stub`, `ctx.client_identity`) and typed arguments; serve it with
`python -m chaincode serve --module pkg.mod:ContractClass` in Fabric's classic mode
(`--peer-address`, the chaincode dials the peer) or as a service (`--listen`, the peer
dials the chaincode). The stub's ledger calls are `async`. `chaincode.testing` runs
chaincode against an in-memory ledger for unit tests.
"""

from chaincode.contract import (
    ClientIdentity,
    Context,
    Contract,
    ContractChaincode,
    query,
    transaction,
)
from chaincode.errors import (
    ChaincodeError,
    ChaincodeSdkError,
    InvalidKeyError,
    PeerRequestError,
    ShimProtocolError,
    StreamClosedError,
)
from chaincode.shim import (
    KV,
    Chaincode,
    ChaincodeServer,
    ChaincodeStub,
    ClientTls,
    HistoryQueryIterator,
    KeyEndorsementPolicy,
    KeyModification,
    QueryResponseMetadata,
    ServerTls,
    StateQueryIterator,
    create_composite_key,
    serve_peer,
    split_composite_key,
)
from common.protoutil import ChaincodeResponse

__all__ = [
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
]
