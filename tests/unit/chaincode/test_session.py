"""`ShimSession` over an in-memory stream: the peer's side is played message by message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from chaincode import (
    ChaincodeResponse,
    ChaincodeStub,
    PeerRequestError,
    StreamClosedError,
)
from chaincode.shim import ShimSession
from chaincode.shim.messages import ChaincodeMessage
from chaincode.testing import make_identity, transaction_message
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import chaincode_shim_pb2, proposal_response_pb2

T = ChaincodeMessage
WAIT_S = 5.0


class MemoryStream:
    """Both ends of a chaincode stream in memory; the test plays the peer."""

    def __init__(self) -> None:
        self.to_chaincode: asyncio.Queue[T | None] = asyncio.Queue()
        self.to_peer: asyncio.Queue[T] = asyncio.Queue()
        self.broken = False

    async def read(self) -> T | None:
        return await self.to_chaincode.get()

    async def write(self, message: T) -> None:
        if self.broken:
            raise StreamClosedError("broken on purpose")
        await self.to_peer.put(message)

    def send(self, message: T) -> None:
        self.to_chaincode.put_nowait(message)

    def end(self) -> None:
        self.to_chaincode.put_nowait(None)

    async def expect(self, kind: int) -> T:
        async with asyncio.timeout(WAIT_S):
            message = await self.to_peer.get()
        assert message.type == kind, message
        return message


class Scripted:
    """A low-level chaincode whose every invocation runs `body`."""

    def __init__(
        self, body: Callable[[ChaincodeStub], Awaitable[ChaincodeResponse]]
    ) -> None:
        self.body = body

    async def init(self, stub: ChaincodeStub) -> ChaincodeResponse:
        return await self.body(stub)

    async def invoke(self, stub: ChaincodeStub) -> ChaincodeResponse:
        return await self.body(stub)


async def echo_state(stub: ChaincodeStub) -> ChaincodeResponse:
    """Return the value of the key named by the first parameter."""
    _, (key, *_) = stub.get_function_and_parameters()
    return ChaincodeResponse(status=200, payload=await stub.get_state(key))


def transaction(txid_key: str, *args: str) -> T:
    """A TRANSACTION with a real proposal; its txid is derived from that proposal."""
    return transaction_message(
        channel_id="ch",
        chaincode="cc",
        args=[arg.encode() for arg in ("Fn", txid_key, *args)],
        creator=make_identity(),
    )


def response_of(completed: T) -> proposal_response_pb2.Response:
    return proposal_response_pb2.Response.FromString(completed.payload)


async def running(
    body: Callable[[ChaincodeStub], Awaitable[ChaincodeResponse]],
    *,
    request_timeout_s: float = WAIT_S,
) -> tuple[ShimSession, MemoryStream, asyncio.Task[None]]:
    """A ready session serving `body`, with the handshake already played."""
    session = ShimSession(
        Scripted(body), chaincode_id="cc:1", request_timeout_s=request_timeout_s
    )
    stream = MemoryStream()
    task = asyncio.create_task(session.run(stream))
    await stream.expect(T.REGISTER)
    stream.send(T(type=T.REGISTERED))
    stream.send(T(type=T.READY))
    async with asyncio.timeout(WAIT_S):
        await session.ready.wait()
    return session, stream, task


async def finish(stream: MemoryStream, task: asyncio.Task[None]) -> None:
    stream.end()
    async with asyncio.timeout(WAIT_S):
        await task


async def test_a_transaction_round_trip() -> None:
    """TRANSACTION → GET_STATE (tagged with the tx) → RESPONSE → COMPLETED 200."""
    _, stream, task = await running(echo_state)
    invocation = transaction("color")
    stream.send(invocation)
    request = await stream.expect(T.GET_STATE)
    assert (request.txid, request.channel_id) == (invocation.txid, "ch")
    assert chaincode_shim_pb2.GetState.FromString(request.payload).key == "color"
    stream.send(T(type=T.RESPONSE, payload=b"blue", txid=request.txid, channel_id="ch"))
    completed = await stream.expect(T.COMPLETED)
    assert completed.txid == invocation.txid
    assert (response_of(completed).status, response_of(completed).payload) == (
        200,
        b"blue",
    )
    await finish(stream, task)


async def test_peer_error_surfaces_as_an_exception_in_chaincode() -> None:
    """An ERROR answer raises PeerRequestError with the peer's text inside the chaincode."""

    async def body(stub: ChaincodeStub) -> ChaincodeResponse:
        try:
            await stub.get_state("secret")
        except PeerRequestError as error:
            return ChaincodeResponse(status=403, message=f"{error.request}: {error}")
        return ChaincodeResponse(status=200)

    _, stream, task = await running(body)
    stream.send(transaction("x"))
    request = await stream.expect(T.GET_STATE)
    stream.send(
        T(type=T.ERROR, payload=b"access denied", txid=request.txid, channel_id="ch")
    )
    response = response_of(await stream.expect(T.COMPLETED))
    assert (response.status, response.message) == (403, "GET_STATE: access denied")
    await finish(stream, task)


async def test_a_raising_chaincode_gets_an_error_message() -> None:
    async def body(stub: ChaincodeStub) -> ChaincodeResponse:
        raise RuntimeError("crashed")

    _, stream, task = await running(body)
    stream.send(transaction("x"))
    error = await stream.expect(T.ERROR)
    assert error.payload == b"chaincode failed: crashed"
    await finish(stream, task)


async def test_an_undecodable_invocation_gets_an_error_message() -> None:
    _, stream, task = await running(echo_state)
    stream.send(T(type=T.TRANSACTION, payload=b"\xff\xff", txid="t1", channel_id="ch"))
    error = await stream.expect(T.ERROR)
    assert error.txid == "t1"
    assert error.payload.startswith(b"cannot decode the invocation")
    await finish(stream, task)


async def test_transactions_run_concurrently() -> None:
    """Two transactions wait on the peer at once; answering the second first completes it."""
    _, stream, task = await running(echo_state)
    first, second = transaction("a"), transaction("b")
    stream.send(first)
    stream.send(second)
    requests = {(await stream.expect(T.GET_STATE)).txid for _ in range(2)}
    assert requests == {first.txid, second.txid}
    stream.send(T(type=T.RESPONSE, payload=b"2", txid=second.txid, channel_id="ch"))
    assert (await stream.expect(T.COMPLETED)).txid == second.txid
    stream.send(T(type=T.RESPONSE, payload=b"1", txid=first.txid, channel_id="ch"))
    assert (await stream.expect(T.COMPLETED)).txid == first.txid
    await finish(stream, task)


async def test_stream_end_cancels_waiting_transactions_cleanly() -> None:
    """The peer leaving mid-transaction ends `run` without an error; the tx is cancelled."""
    cancelled = asyncio.Event()

    async def body(stub: ChaincodeStub) -> ChaincodeResponse:
        try:
            await stub.get_state("k")
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ChaincodeResponse(status=200)

    _, stream, task = await running(body)
    stream.send(transaction("x"))
    await stream.expect(T.GET_STATE)
    await finish(stream, task)
    assert cancelled.is_set()
    assert stream.to_peer.empty()


async def test_stream_end_before_the_handshake() -> None:
    session = ShimSession(Scripted(echo_state), chaincode_id="cc:1")
    stream = MemoryStream()
    stream.end()
    async with asyncio.timeout(WAIT_S):
        await session.run(stream)
    assert not session.ready.is_set()


async def test_a_broken_write_side_ends_the_session() -> None:
    _, stream, task = await running(echo_state)
    stream.broken = True
    stream.send(T(type=T.KEEPALIVE))
    async with asyncio.timeout(WAIT_S):
        await task


async def test_keepalive_is_echoed() -> None:
    _, stream, task = await running(echo_state)
    stream.send(T(type=T.KEEPALIVE))
    await stream.expect(T.KEEPALIVE)
    await finish(stream, task)


async def test_unanswered_request_times_out() -> None:
    """A peer that never answers makes the stub call fail, not hang."""

    async def body(stub: ChaincodeStub) -> ChaincodeResponse:
        try:
            await stub.get_state("k")
        except PeerRequestError as error:
            return ChaincodeResponse(status=504, message=str(error))
        return ChaincodeResponse(status=200)

    _, stream, task = await running(body, request_timeout_s=0.01)
    stream.send(transaction("x"))
    await stream.expect(T.GET_STATE)
    response = response_of(await stream.expect(T.COMPLETED))
    assert response.status == 504
    assert "no answer to GET_STATE" in response.message
    await finish(stream, task)


async def test_iterators_fetch_next_batches_and_close_early() -> None:
    """has_more drives QUERY_STATE_NEXT; leaving early sends QUERY_STATE_CLOSE."""

    async def body(stub: ChaincodeStub) -> ChaincodeResponse:
        keys = []
        async with await stub.get_state_by_range("", "") as results:
            async for kv in results:
                keys.append(kv.key)
                if len(keys) == 3:
                    break
        return ChaincodeResponse(status=200, payload=",".join(keys).encode())

    _, stream, task = await running(body)
    stream.send(transaction("x"))
    request = await stream.expect(T.GET_STATE_BY_RANGE)
    assert (
        chaincode_shim_pb2.GetStateByRange.FromString(request.payload).startKey
        == "\x01"
    )
    stream.send(_batch(request, ["a", "b"], has_more=True))
    next_request = await stream.expect(T.QUERY_STATE_NEXT)
    assert (
        chaincode_shim_pb2.QueryStateNext.FromString(next_request.payload).id == "it1"
    )
    stream.send(_batch(request, ["c", "d"], has_more=True))
    close = await stream.expect(T.QUERY_STATE_CLOSE)
    assert chaincode_shim_pb2.QueryStateClose.FromString(close.payload).id == "it1"
    stream.send(_batch(request, [], has_more=False))
    assert response_of(await stream.expect(T.COMPLETED)).payload == b"a,b,c"
    await finish(stream, task)


def _batch(request: T, keys: list[str], *, has_more: bool) -> T:
    results = [
        chaincode_shim_pb2.QueryResultBytes(
            resultBytes=kv_query_result_pb2.KV(key=key, value=b"v").SerializeToString()
        )
        for key in keys
    ]
    response = chaincode_shim_pb2.QueryResponse(
        results=results, has_more=has_more, id="it1"
    )
    return T(
        type=T.RESPONSE,
        payload=response.SerializeToString(),
        txid=request.txid,
        channel_id=request.channel_id,
    )


async def test_a_silent_peer_ends_the_session_after_the_handshake_timeout() -> None:
    """No REGISTERED/READY in time: run returns, says why, and never reports ready."""
    became_ready: list[bool] = []
    session = ShimSession(
        Scripted(echo_state),
        chaincode_id="cc:1",
        handshake_timeout_s=0.01,
        on_ready=lambda: became_ready.append(True),
    )
    stream = MemoryStream()
    async with asyncio.timeout(WAIT_S):
        await session.run(stream)
    assert await stream.expect(T.REGISTER)
    assert "handshake did not complete" in session.failure
    assert became_ready == []


async def test_on_ready_is_called_once_registered() -> None:
    became_ready: list[bool] = []
    session = ShimSession(
        Scripted(echo_state),
        chaincode_id="cc:1",
        on_ready=lambda: became_ready.append(True),
    )
    stream = MemoryStream()
    stream.send(T(type=T.REGISTERED))
    stream.send(T(type=T.READY))
    stream.end()
    async with asyncio.timeout(WAIT_S):
        await session.run(stream)
    assert became_ready == [True]
    assert session.failure == ""
