"""`Contract`, the base class of smart contracts, and the `@transaction` decorator.

A contract is a named group of transaction functions: `async` methods marked with
`@transaction` (submitted, they may write) or `@transaction(evaluate=True)` / `@query`
(evaluated, read only). Each takes the `Context` first and then its arguments, whose
type hints say how they are parsed (see `chaincode.contract.conversion`):

    class AssetContract(Contract):
        @transaction
        async def CreateAsset(self, ctx: Context, asset_id: str, size: int) -> None:
            await ctx.stub.put_state(asset_id, json.dumps({"size": size}))

Only marked methods can be invoked. The hooks `before_transaction`,
`after_transaction` and `unknown_transaction` may be overridden.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar, overload

from chaincode.contract.context import Context
from chaincode.contract.conversion import check_annotation
from chaincode.errors import ChaincodeError
from chaincode.shim.stub import ChaincodeStub

TransactionFunction = Callable[..., Awaitable[object]]
F = TypeVar("F", bound=TransactionFunction)

_MARKER = "__chaincode_transaction__"


@dataclass(frozen=True, slots=True)
class _Marker:
    evaluate: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class Parameter:
    """One argument of a transaction function, with its type hint."""

    name: str
    annotation: object


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionSpec:
    """A transaction function as the router and the metadata see it."""

    name: str
    method_name: str
    evaluate: bool
    parameters: tuple[Parameter, ...]
    returns: object


@overload
def transaction(function: F, /) -> F: ...


@overload
def transaction(
    *, evaluate: bool = False, name: str | None = None
) -> Callable[[F], F]: ...


def transaction(
    function: F | None = None, /, *, evaluate: bool = False, name: str | None = None
) -> F | Callable[[F], F]:
    """Mark an async contract method as a transaction function.

    `evaluate=True` marks a query (clients evaluate it rather than submit it); `name`
    exposes the function under another name than the method's.
    """

    def mark(target: F) -> F:
        if not _is_async(target):
            raise TypeError(f"transaction function {target.__qualname__} must be async")
        setattr(target, _MARKER, _Marker(evaluate=evaluate, name=name))
        return target

    return mark if function is None else mark(function)


def _is_async(function: object) -> bool:
    return inspect.iscoroutinefunction(function)


def query(function: F, /) -> F:
    """Mark an async contract method as an evaluate-only transaction function."""
    return transaction(evaluate=True)(function)


class Contract:
    """Base class of a smart contract (see the module docstring).

    The contract's name defaults to its class name; clients address its functions as
    `Name:Function`, or as `Function` when it is the chaincode's default contract.
    """

    def __init__(
        self, name: str | None = None, *, title: str = "", version: str = ""
    ) -> None:
        self.name = (name or type(self).__name__).strip()
        if not self.name or ":" in self.name:
            raise ValueError(
                f"contract name {self.name!r} must be non-empty and have no ':'"
            )
        self.title = title or self.name
        self.version = version

    def create_context(self, stub: ChaincodeStub) -> Context:
        """The context passed to this contract's functions for one invocation."""
        return Context(stub)

    async def before_transaction(self, ctx: Context) -> None:
        """Called before every transaction function of this contract."""

    async def after_transaction(self, ctx: Context, result: object) -> None:
        """Called with the function's result after it returned."""

    async def unknown_transaction(self, ctx: Context) -> object:
        """Called for a function name this contract does not have; fails by default.

        Raises:
            ChaincodeError: always, naming the function.
        """
        function, _ = ctx.stub.get_function_and_parameters()
        raise ChaincodeError(
            f"You've asked to invoke a function that does not exist: {function}"
        )

    def transactions(self) -> dict[str, TransactionSpec]:
        """The transaction functions of this contract by name, in definition order.

        Raises:
            TypeError: a function has an argument type that cannot be parsed.
            ValueError: two functions share a name.
        """
        specs: dict[str, TransactionSpec] = {}
        for method_name, function in _marked_functions(type(self)):
            spec = _spec(method_name, function)
            if spec.name in specs:
                raise ValueError(
                    f"contract {self.name} has two functions named {spec.name}"
                )
            specs[spec.name] = spec
        return specs


def _marked_functions(cls: type) -> list[tuple[str, TransactionFunction]]:
    """Marked methods, base classes first, each in the order the class defines them."""
    found: dict[str, TransactionFunction] = {}
    for klass in reversed(cls.__mro__):
        for attribute, value in vars(klass).items():
            if hasattr(value, _MARKER):
                found[attribute] = value
            elif attribute in found:
                del found[
                    attribute
                ]  # Overridden without the decorator: not a transaction.
    return list(found.items())


def _spec(method_name: str, function: TransactionFunction) -> TransactionSpec:
    marker: _Marker = getattr(function, _MARKER)
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[2:]  # self, ctx
    where = function.__qualname__
    for parameter in parameters:
        if parameter.kind not in (
            parameter.POSITIONAL_ONLY,
            parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(f"{where}: argument {parameter.name} must be positional")
    specs = tuple(
        Parameter(p.name, hints.get(p.name, inspect.Parameter.empty))
        for p in parameters
    )
    for spec in specs:
        check_annotation(spec.annotation, where=f"{where}({spec.name})")
    return TransactionSpec(
        name=marker.name or method_name,
        method_name=method_name,
        evaluate=marker.evaluate,
        parameters=specs,
        returns=hints.get("return", inspect.Parameter.empty),
    )
