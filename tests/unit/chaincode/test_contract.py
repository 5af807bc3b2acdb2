"""The contract API: routing, typed arguments, serialised results, hooks, definition errors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from chaincode import (
    ChaincodeError,
    Context,
    Contract,
    ContractChaincode,
    query,
    transaction,
)
from chaincode.contract import split_function_name
from chaincode.testing import MockPeer


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    label: str = ""


class Typed(Contract):
    """One function per supported argument or result type."""

    @query
    async def Int(self, ctx: Context, value: int) -> int:
        return value + 1

    @query
    async def Float(self, ctx: Context, value: float) -> float:
        return value * 2

    @query
    async def Bool(self, ctx: Context, value: bool) -> bool:
        return not value

    @query
    async def Raw(self, ctx: Context, value: bytes) -> bytes:
        return value[::-1]

    @query
    async def Untyped(self, ctx: Context, value) -> str:  # type: ignore[no-untyped-def]
        return f"{type(value).__name__}:{value}"

    @query
    async def Mapping(self, ctx: Context, value: dict[str, int]) -> dict[str, int]:
        return {key: number * 10 for key, number in value.items()}

    @query
    async def Numbers(self, ctx: Context, value: list[int]) -> int:
        return sum(value)

    @query
    async def Move(self, ctx: Context, point: Point, dx: int) -> Point:
        return Point(point.x + dx, point.y, point.label)

    @query
    async def Points(self, ctx: Context) -> list[Point]:
        return [Point(1, 2), Point(3, 4, "b")]

    @query
    async def Nothing(self, ctx: Context) -> None:
        return None

    @transaction(name="renamed_function")
    async def python_name(self, ctx: Context) -> str:
        return "renamed"


class Hooked(Contract):
    def __init__(self) -> None:
        super().__init__("hooked")
        self.calls: list[str] = []

    async def before_transaction(self, ctx: Context) -> None:
        self.calls.append(f"before {ctx.stub.get_function_and_parameters()[0]}")

    async def after_transaction(self, ctx: Context, result: object) -> None:
        self.calls.append(f"after {result}")

    async def unknown_transaction(self, ctx: Context) -> object:
        return {"unknown": ctx.stub.get_function_and_parameters()[0]}

    @transaction
    async def Work(self, ctx: Context) -> str:
        self.calls.append("work")
        return "done"


class Derived(Typed):
    async def Int(self, ctx: Context, value: int) -> int:  # no decorator: hidden
        return value


@pytest.fixture
def peer() -> MockPeer:
    return MockPeer([Typed(), Hooked()])


@pytest.mark.parametrize(
    ("function", "args", "payload"),
    [
        ("Int", ["41"], b"42"),
        ("Float", ["1"], b"2.0"),
        ("Float", ["0.25"], b"0.5"),
        ("Bool", ["false"], b"true"),
        ("Raw", [b"\xff\x00"], b"\x00\xff"),
        ("Untyped", ['{"a": 1}'], b'str:{"a": 1}'),
        ("Mapping", ['{"a": 1}'], b'{"a":10}'),
        ("Numbers", ["[1, 2, 3]"], b"6"),
        ("Move", ['{"x": 1, "y": 2}', "5"], b'{"x":6,"y":2,"label":""}'),
        ("Points", [], b'[{"x":1,"y":2,"label":""},{"x":3,"y":4,"label":"b"}]'),
        ("Nothing", [], b""),
        ("renamed_function", [], b"renamed"),
        ("Typed:Int", ["1"], b"2"),
    ],
)
async def test_arguments_and_results(
    peer: MockPeer, function: str, args: list[str | bytes], payload: bytes
) -> None:
    result = await peer.evaluate(function, *args)
    assert (result.status, result.message) == (200, "")
    assert result.payload == payload


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        ("Int", ["4.5"], "argument value: expected an integer, got '4.5'"),
        ("Int", ["true"], "argument value: expected an integer, got 'true'"),
        ("Int", ["nope"], "argument value: expected an integer, got 'nope'"),
        ("Bool", ["1"], "argument value: expected a boolean"),
        ("Numbers", ['[1, "2"]'], "argument value[]: expected an integer"),
        ("Mapping", ["[]"], "argument value: expected a JSON object"),
        ("Move", ['{"x": 1}', "0"], "missing=['y']"),
        ("Move", ['{"x": 1, "y": 1, "z": 0}', "0"], "unknown=['z']"),
        ("Move", ["[1]", "0"], "argument point: expected Point"),
        ("Int", [], "Int expects 1 arguments, but 0 were supplied"),
        ("Int", [b"\xff"], "argument value is not valid UTF-8"),
    ],
)
async def test_bad_arguments_are_status_400(
    peer: MockPeer, function: str, args: list[str | bytes], message: str
) -> None:
    result = await peer.evaluate(function, *args)
    assert result.status == 400
    assert message in result.message


async def test_unknown_functions_and_contracts(peer: MockPeer) -> None:
    unknown = await peer.evaluate("Missing")
    expected = "You've asked to invoke a function that does not exist: Missing"
    assert (unknown.status, unknown.message) == (500, expected)
    no_contract = await peer.evaluate("Nobody:Int", "1")
    assert (no_contract.status, no_contract.message) == (
        500,
        "contract name is not known: Nobody",
    )
    empty = await MockPeer(Typed()).evaluate("")
    assert empty.status == 500


async def test_hooks_run_around_the_function(peer: MockPeer) -> None:
    hooked = peer.chaincodes["mockcc"]
    assert isinstance(hooked, ContractChaincode)
    contract = hooked.contracts[1]
    assert isinstance(contract, Hooked)
    assert (await peer.submit("hooked:Work")).payload == b"done"
    assert contract.calls == ["before hooked:Work", "work", "after done"]
    assert (await peer.evaluate("hooked:Else")).json() == {"unknown": "hooked:Else"}


async def test_custom_context() -> None:
    class Audited(Context):
        def __init__(self, stub: object) -> None:
            super().__init__(stub)  # type: ignore[arg-type]
            self.audit = "ctx-made"

    class WithContext(Contract):
        def create_context(self, stub: object) -> Context:
            return Audited(stub)

        @query
        async def Read(self, ctx: Context) -> str:
            assert isinstance(ctx, Audited)
            return ctx.audit

    assert (await MockPeer(WithContext()).evaluate("Read")).payload == b"ctx-made"


async def test_overriding_without_the_decorator_hides_the_function() -> None:
    result = await MockPeer(Derived()).evaluate("Int", "1")
    assert result.status == 500
    assert (await MockPeer(Derived()).evaluate("Bool", "true")).payload == b"false"


def test_definition_errors() -> None:
    with pytest.raises(TypeError, match="must be async"):

        class Sync(Contract):
            @transaction  # type: ignore[type-var]
            def Fn(self, ctx: Context) -> None:
                pass

    class KeywordOnly(Contract):
        @transaction
        async def Fn(self, ctx: Context, *, value: str) -> None:
            pass

    class BadType(Contract):
        @transaction
        async def Fn(self, ctx: Context, value: set[int]) -> None:
            pass

    with pytest.raises(TypeError, match="positional"):
        ContractChaincode([KeywordOnly()])
    with pytest.raises(TypeError, match="unsupported type"):
        ContractChaincode([BadType()])
    with pytest.raises(ValueError, match="used twice"):
        ContractChaincode([Typed(), Typed()])
    with pytest.raises(ValueError, match="reserved"):
        ContractChaincode([Typed("org.hyperledger.fabric")])
    with pytest.raises(ValueError, match="at least one"):
        ContractChaincode([])
    with pytest.raises(ValueError, match="':'"):
        Typed("a:b")
    with pytest.raises(ValueError, match="≥ 400"):
        ChaincodeError("fine", status=200)


def test_function_names_split_at_the_last_colon() -> None:
    assert split_function_name("Fn", default="main") == ("main", "Fn")
    assert split_function_name("c:Fn", default="main") == ("c", "Fn")
    assert split_function_name("org.hyperledger.fabric:GetMetadata", default="m") == (
        "org.hyperledger.fabric",
        "GetMetadata",
    )
    assert split_function_name("a:b:Fn", default="m") == ("a:b", "Fn")


async def test_metadata_describes_types_and_schemas() -> None:
    chaincode = ContractChaincode(
        [Typed(title="Typed things", version="2.0")], version="9"
    )
    document = chaincode.metadata()
    assert document["info"] == {"title": "Typed", "version": "9"}
    contract = document["contracts"]["Typed"]  # type: ignore[index]
    assert contract["info"] == {"title": "Typed things", "version": "2.0"}
    functions = {entry["name"]: entry for entry in contract["transactions"]}
    assert functions["Move"]["parameters"] == [
        {"name": "point", "schema": {"$ref": "#/components/schemas/Point"}},
        {"name": "dx", "schema": {"type": "integer", "format": "int64"}},
    ]
    assert functions["Points"]["returns"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Point"},
    }
    assert "returns" not in functions["Nothing"]
    assert functions["renamed_function"]["tag"] == ["SUBMIT", "submitTx"]
    point = document["components"]["schemas"]["Point"]  # type: ignore[index]
    assert point["required"] == ["x", "y"]
    assert point["properties"]["label"] == {"type": "string"}
    served = await MockPeer(Typed()).evaluate("org.hyperledger.fabric:GetMetadata")
    assert json.loads(served.payload)["contracts"]["Typed"]["name"] == "Typed"
