"""The chaincode shim: the stub, the stream protocol and the two ways to serve.

`ChaincodeStub` is the ledger API of one invocation. A `Chaincode` (anything with
`async init(stub)` and `async invoke(stub)` returning a `ChaincodeResponse`) is served
either by dialling the peer (`serve_peer`, Fabric's classic mode) or by listening for
the peer (`ChaincodeServer`, chaincode as a service); both speak Fabric 2.5's chaincode
stream protocol through the same `ShimSession` and pure `ShimHandler`.
"""

from chaincode.shim.dial import ClientTls, serve_peer
from chaincode.shim.execute import Chaincode, execute
from chaincode.shim.handler import ShimHandler, ShimState
from chaincode.shim.iterators import (
    KV,
    HistoryQueryIterator,
    KeyModification,
    QueryIterator,
    QueryResponseMetadata,
    StateQueryIterator,
)
from chaincode.shim.key_policy import KeyEndorsementPolicy
from chaincode.shim.keys import create_composite_key, split_composite_key
from chaincode.shim.requester import PeerRequester
from chaincode.shim.server import ChaincodeServer, ServerTls
from chaincode.shim.session import MessageStream, ShimSession
from chaincode.shim.stub import VALIDATION_PARAMETER, ChaincodeStub
from chaincode.shim.transaction import (
    TransactionInfo,
    info_from_parts,
    transaction_info,
)

__all__ = [
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
]
