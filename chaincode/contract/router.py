"""`ContractChaincode`: serves contracts as one chaincode, routing by function name.

args[0] is `[ContractName:]Function` (the last ':' separates them; no prefix means the
default contract, the first one given). The remaining args are parsed by the function's
type hints and its result is serialised (see `chaincode.contract.conversion`). Outcomes:
a result → status 200 with the payload; `ChaincodeError` → its status and message; any
other exception → status 500 with the exception's message. The system contract
`org.hyperledger.fabric` answers `GetMetadata` with the contracts' metadata as JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chaincode.contract.context import Context
from chaincode.contract.contract import Contract, TransactionSpec
from chaincode.contract.conversion import (
    STATUS_BAD_ARGUMENT,
    parse_argument,
    serialize_result,
)
from chaincode.contract.metadata import SYSTEM_CONTRACT, chaincode_metadata
from chaincode.errors import STATUS_ERROR, ChaincodeError
from chaincode.shim.stub import ChaincodeStub
from common.protoutil import ChaincodeResponse

_log = logging.getLogger(__name__)

STATUS_OK = 200


@dataclass(frozen=True, slots=True)
class _Route:
    contract: Contract
    transactions: dict[str, TransactionSpec]


class ContractChaincode:
    """A `Chaincode` made of contracts (see the module docstring).

    Raises (on construction):
        ValueError: no contracts, or two contracts with the same name.
        TypeError: a transaction function has an unsupported argument type.
    """

    def __init__(
        self, contracts: Sequence[Contract], *, title: str = "", version: str = ""
    ) -> None:
        if not contracts:
            raise ValueError("a contract chaincode needs at least one contract")
        self._routes: dict[str, _Route] = {}
        for contract in contracts:
            if contract.name in self._routes or contract.name == SYSTEM_CONTRACT:
                raise ValueError(
                    f"contract name {contract.name!r} is used twice or reserved"
                )
            self._routes[contract.name] = _Route(contract, contract.transactions())
        self.default_contract = contracts[0].name
        self._metadata = chaincode_metadata(
            {
                name: (route.contract, route.transactions)
                for name, route in self._routes.items()
            },
            default=self.default_contract,
            title=title,
            version=version,
        )

    @property
    def contracts(self) -> list[Contract]:
        """The contracts served, default first."""
        return [route.contract for route in self._routes.values()]

    def metadata(self) -> dict[str, object]:
        """The metadata `org.hyperledger.fabric:GetMetadata` returns."""
        return self._metadata

    async def init(self, stub: ChaincodeStub) -> ChaincodeResponse:
        """Initialisation is routed like any other invocation."""
        return await self.invoke(stub)

    async def invoke(self, stub: ChaincodeStub) -> ChaincodeResponse:
        """Route one invocation; every outcome becomes a response, never an exception."""
        try:
            payload = await self._dispatch(stub)
        except ChaincodeError as error:
            return ChaincodeResponse(status=error.status, message=error.message)
        except Exception as error:
            _log.info("transaction failed tx_id=%s: %r", stub.get_tx_id(), error)
            return ChaincodeResponse(
                status=STATUS_ERROR, message=str(error) or repr(error)
            )
        return ChaincodeResponse(status=STATUS_OK, payload=payload)

    async def _dispatch(self, stub: ChaincodeStub) -> bytes:
        args = stub.get_args()
        if not args:
            raise ChaincodeError(
                "no function name was given", status=STATUS_BAD_ARGUMENT
            )
        contract_name, function = split_function_name(
            args[0].decode(errors="replace"), default=self.default_contract
        )
        if contract_name == SYSTEM_CONTRACT and function == "GetMetadata":
            return json.dumps(self._metadata, separators=(",", ":")).encode()
        route = self._routes.get(contract_name)
        if route is None:
            raise ChaincodeError(f"contract name is not known: {contract_name}")
        ctx = route.contract.create_context(stub)
        spec = route.transactions.get(function)
        if spec is None:
            return serialize_result(await route.contract.unknown_transaction(ctx))
        return await _run(route.contract, spec, ctx, args[1:])


def split_function_name(text: str, *, default: str) -> tuple[str, str]:
    """(contract, function) from `[Contract:]Function`; the last ':' separates them."""
    contract, separator, function = text.rpartition(":")
    return (contract, function) if separator else (default, text)


async def _run(
    contract: Contract, spec: TransactionSpec, ctx: Context, raw_args: Sequence[bytes]
) -> bytes:
    if len(raw_args) != len(spec.parameters):
        raise ChaincodeError(
            f"{spec.name} expects {len(spec.parameters)} arguments, "
            f"but {len(raw_args)} were supplied",
            status=STATUS_BAD_ARGUMENT,
        )
    values = [
        parse_argument(raw, parameter.annotation, name=parameter.name)
        for raw, parameter in zip(raw_args, spec.parameters, strict=True)
    ]
    await contract.before_transaction(ctx)
    result = await getattr(contract, spec.method_name)(ctx, *values)
    await contract.after_transaction(ctx, result)
    return serialize_result(result)
