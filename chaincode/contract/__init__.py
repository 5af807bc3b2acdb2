"""The contract API: write chaincode as classes of typed, async transaction functions.

`Contract` groups transaction functions marked with `@transaction` (submit) or
`@query` / `@transaction(evaluate=True)` (evaluate); each receives a `Context` (the stub
and the caller's `ClientIdentity`) and JSON-typed arguments. `ContractChaincode` serves
one or more contracts as a chaincode, including Fabric's `GetMetadata` system function.
"""

from chaincode.contract.context import ClientIdentity, Context
from chaincode.contract.contract import (
    Contract,
    Parameter,
    TransactionSpec,
    query,
    transaction,
)
from chaincode.contract.metadata import SYSTEM_CONTRACT
from chaincode.contract.router import ContractChaincode, split_function_name

__all__ = [
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
]
