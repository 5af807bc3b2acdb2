"""chaincode.testing on its own: MockStub and MockContext for direct calls, MockPeer."""

from __future__ import annotations

import pytest

from chaincode import (
    ChaincodeResponse,
    ChaincodeStub,
    Context,
    Contract,
    PeerRequestError,
    query,
    transaction,
)
from chaincode.testing import MockContext, MockLedger, MockPeer, MockStub, make_identity


class Notes(Contract):
    @transaction
    async def Write(self, ctx: Context, key: str, text: str) -> None:
        await ctx.stub.put_state(key, text)

    @query
    async def Read(self, ctx: Context, key: str) -> str:
        return (await ctx.stub.get_state(key)).decode()

    @transaction
    async def CallMissing(self, ctx: Context) -> None:
        await ctx.stub.invoke_chaincode("missing", ["Fn"])


async def test_direct_calls_see_writes_only_after_commit() -> None:
    """Like a peer, a transaction reads committed state; commit() makes writes visible."""
    ctx = MockContext()
    notes = Notes()
    await notes.Write(ctx, "k", "hello")
    assert await notes.Read(ctx, "k") == ""
    ctx.commit()
    assert await notes.Read(ctx, "k") == "hello"
    assert ctx.stub.ledger.get("mockcc", "k") == b"hello"
    assert ctx.client_identity.get_mspid() == "Org1MSP"


async def test_stub_options_and_seeded_ledger() -> None:
    ledger = MockLedger()
    ledger.put("notes", "seeded", b"from a fixture")
    doctor = make_identity("Org2MSP", "Dr Who", attributes={"role": "doctor"})
    stub = MockStub(
        ledger,
        args=["Read", "seeded"],
        chaincode="notes",
        channel_id="records",
        creator=doctor,
        transient={"key": b"k"},
    )
    assert await stub.get_state("seeded") == b"from a fixture"
    assert stub.get_channel_id() == "records"
    assert stub.get_function_and_parameters() == ("Read", ["seeded"])
    assert stub.get_transient() == {"key": b"k"}
    ctx = MockContext(stub)
    assert ctx.client_identity.get_attribute_value("role") == "doctor"


async def test_peer_commits_successful_submits_only() -> None:
    peer = MockPeer(Notes())
    assert (await peer.evaluate("Write", "a", "1")).status == 200
    assert peer.ledger.keys("mockcc") == []
    assert (await peer.submit("Write", "a", "1")).status == 200
    assert peer.ledger.keys("mockcc") == ["a"]
    failed = await peer.submit("CallMissing")
    assert failed.status == 500
    assert "cannot be invoked" in failed.message
    ctx = peer.context()
    assert await Notes().Read(ctx, "a") == "1"


async def test_raw_chaincode_and_errors_reported_as_500() -> None:
    class Raw:
        async def init(self, stub: ChaincodeStub) -> ChaincodeResponse:
            return ChaincodeResponse(status=200, payload=b"init")

        async def invoke(self, stub: ChaincodeStub) -> ChaincodeResponse:
            if stub.get_args() == [b"crash"]:
                raise RuntimeError("kaput")
            return ChaincodeResponse(status=201, payload=b"raw")

    peer = MockPeer(Raw())
    assert (await peer.submit("anything")).status == 201
    crashed = await peer.submit("crash")
    assert (crashed.status, crashed.message) == (500, "chaincode failed: kaput")


async def test_peer_errors_reach_the_chaincode() -> None:
    stub = MockStub()
    with pytest.raises(PeerRequestError, match="invalid query"):
        await stub.get_query_result("{}")


async def test_iterators_over_several_batches() -> None:
    ledger = MockLedger()
    for number in range(7):
        ledger.put("mockcc", f"k{number}", b"v")
    stub = MockStub(ledger, batch_size=3)
    async with await stub.get_state_by_range("k1", "") as results:
        keys = [kv.key async for kv in results]
    assert keys == [f"k{number}" for number in range(1, 7)]
    history = await stub.get_history_for_key("k1")
    assert [entry async for entry in history] == []


def test_peer_needs_a_chaincode() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MockPeer({})


@pytest.mark.parametrize("make", [lambda: Notes(), lambda: [Notes()]])
async def test_contracts_are_wrapped(make: object) -> None:
    peer = MockPeer(make())  # type: ignore[operator]
    assert peer.default_chaincode == "mockcc"
    assert (await peer.evaluate("Read", "x")).status == 200
