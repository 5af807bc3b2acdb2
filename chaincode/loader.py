"""Find the chaincode to serve from `--module` specs such as `pkg.mod:AssetContract`.

A spec is `module` or `module:attribute`. The attribute may be a `Contract` subclass
(instantiated without arguments), a `Contract`, a list of contracts, or any object with
`async init(stub)` and `async invoke(stub)` (a low-level chaincode). A bare module
provides its `contracts` list (like the Node contract API's exported `contracts`) or,
failing that, a `chaincode` object. Contracts from several specs are served together,
the first one being the default contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from chaincode.contract import Contract, ContractChaincode
from chaincode.errors import ServeConfigError
from chaincode.shim.execute import Chaincode


def load_chaincode(specs: Sequence[str]) -> Chaincode:
    """The chaincode the specs describe.

    Raises:
        ServeConfigError: a module does not import or an attribute is missing or unusable.
    """
    if not specs:
        raise ServeConfigError("no --module given")
    found = [_resolve(spec) for spec in specs]
    contracts = [item for items in found if isinstance(items, list) for item in items]
    plain = [item for item in found if not isinstance(item, list)]
    if plain and (len(found) > 1):
        raise ServeConfigError(
            "a low-level chaincode cannot be combined with other modules"
        )
    if plain:
        return plain[0]
    try:
        return ContractChaincode(contracts)
    except (TypeError, ValueError) as error:
        raise ServeConfigError(f"invalid contracts: {error}") from None


def _resolve(spec: str) -> list[Contract] | Chaincode:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ServeConfigError(f"cannot import {module_name!r}: {error}") from None
    if attribute:
        if not hasattr(module, attribute):
            raise ServeConfigError(
                f"module {module_name!r} has no attribute {attribute!r}"
            )
        return _servable(getattr(module, attribute), spec)
    for name in ("contracts", "chaincode"):
        if hasattr(module, name):
            return _servable(getattr(module, name), spec)
    raise ServeConfigError(
        f"module {module_name!r} defines neither `contracts` nor `chaincode`"
    )


def _servable(value: object, spec: str) -> list[Contract] | Chaincode:
    if isinstance(value, type) and issubclass(value, Contract):
        try:
            return [value()]
        except TypeError as error:
            raise ServeConfigError(
                f"{spec}: cannot create the contract: {error}"
            ) from None
    if isinstance(value, Contract):
        return [value]
    if isinstance(value, list | tuple):
        if not value or not all(isinstance(item, Contract) for item in value):
            raise ServeConfigError(f"{spec}: expected a non-empty list of contracts")
        return list(value)
    if callable(getattr(value, "invoke", None)) and callable(
        getattr(value, "init", None)
    ):
        chaincode: Chaincode = value  # type: ignore[assignment]  # checked just above
        return chaincode
    raise ServeConfigError(
        f"{spec}: {type(value).__name__} is not a contract or a chaincode"
    )
