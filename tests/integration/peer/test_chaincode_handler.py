"""The peer's chaincode stream over real gRPC, driven by a hand-written chaincode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from common.protoutil import ParsedProposal
from peer.chaincode.execute import ChaincodeInfo, ExecutionResult
from peer.chaincode.registry import ChaincodeRegistry
from peer.errors import (
    ChaincodeError,
    ChaincodeFailed,
    ChaincodeTimeout,
    ChaincodeUnavailable,
)
from peer.ledger.statedb import Version
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from tests.integration.peer.chaincode_fixtures import (
    CHANNEL,
    Message,
    PeerSide,
    RawChaincode,
    proposal,
)
from tests.unit.peer.simfakes import decode_public, modification, sha256

PACKAGE = "asset_1.0:abc123"
shim = chaincode_shim_pb2


@pytest.fixture
async def peer() -> AsyncIterator[PeerSide]:
    side = PeerSide(
        chaincodes={
            "asset": ChaincodeInfo(PACKAGE, "1.0"),
            "ledgerlog": ChaincodeInfo("ledgerlog:1", "2.0"),
        }
    )
    for i in range(250):
        side.reader.put("asset", f"key{i:03d}", f"value{i}".encode(), Version(1, i))
    await side.start()
    yield side
    await side.stop()


@pytest.fixture
async def chaincode(peer: PeerSide) -> AsyncIterator[RawChaincode]:
    raw = RawChaincode(peer.address)
    await raw.register(PACKAGE)
    yield raw
    await raw.close()


def start_execution(
    peer: PeerSide, parsed: ParsedProposal
) -> asyncio.Task[ExecutionResult]:
    """Execute `parsed` as the endorser would, in a task: its chaincode answers it."""
    return asyncio.create_task(
        peer.executor.execute(parsed, peer.simulator(parsed.tx_id))
    )


async def invoke_chaincode(
    chaincode: RawChaincode, on: Message, name: str, *args: bytes
) -> None:
    """From the transaction of `on`, call chaincode `name` (`name/channel`) with `args`."""
    spec = chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_pb2.ChaincodeID(name=name)
    )
    if args:
        spec.input.args.extend(args)
    await chaincode.send(
        Message(
            type=Message.INVOKE_CHAINCODE,
            payload=spec.SerializeToString(),
            txid=on.txid,
            channel_id=CHANNEL,
        )
    )


async def assert_registration_refused(address: str, package_id: str) -> None:
    """A new stream registering `package_id` at `address` is ended by the peer."""
    raw = RawChaincode(address)
    await raw.send(
        Message(
            type=Message.REGISTER,
            payload=chaincode_pb2.ChaincodeID(name=package_id).SerializeToString(),
        )
    )
    assert await raw.ended()
    await raw.close()


def ok(payload: bytes = b"") -> bytes:
    return proposal_response_pb2.Response(
        status=200, payload=payload
    ).SerializeToString()


async def test_transaction_round_trip(peer: PeerSide, chaincode: RawChaincode) -> None:
    parsed = proposal([b"CreateAsset", b"a1"], transient={"secret": b"s"})
    running = start_execution(peer, parsed)

    tx = await chaincode.recv()
    assert (tx.type, tx.txid, tx.channel_id) == (
        Message.TRANSACTION,
        parsed.tx_id,
        CHANNEL,
    )
    assert chaincode_pb2.ChaincodeInput.FromString(tx.payload).args == [
        b"CreateAsset",
        b"a1",
    ]
    assert tx.proposal == proposal_pb2.SignedProposal(
        proposal_bytes=parsed.proposal_bytes, signature=parsed.signature
    )
    got = await chaincode.request(
        Message.GET_STATE, shim.GetState(key="key001").SerializeToString(), tx
    )
    assert (got.type, got.payload, got.txid) == (
        Message.RESPONSE,
        b"value1",
        parsed.tx_id,
    )
    put = shim.PutState(key="a1", value=b'{"id":"a1"}').SerializeToString()
    assert (
        await chaincode.request(Message.PUT_STATE, put, tx)
    ).type == Message.RESPONSE
    delete = shim.DelState(key="key002").SerializeToString()
    assert (
        await chaincode.request(Message.DEL_STATE, delete, tx)
    ).type == Message.RESPONSE
    event = chaincode_event_pb2.ChaincodeEvent(event_name="Created", payload=b"a1")
    await chaincode.complete(tx, ok(b"done"), chaincode_event=event)

    result = await running
    assert (result.response.status, result.response.payload) == (200, b"done")
    assert chaincode_event_pb2.ChaincodeEvent.FromString(
        result.events
    ) == chaincode_event_pb2.ChaincodeEvent(
        chaincode_id="asset", tx_id=parsed.tx_id, event_name="Created", payload=b"a1"
    )
    assert result.chaincode_version == "1.0"
    rwset = decode_public(result.simulation.public_rwset)["asset"]
    assert [r.key for r in rwset.reads] == ["key001"]
    assert [(w.key, w.is_delete) for w in rwset.writes] == [
        ("a1", False),
        ("key002", True),
    ]


async def test_range_is_batched_by_100_with_query_state_next(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"All"]))
    tx = await chaincode.recv()
    first = await chaincode.request(
        Message.GET_STATE_BY_RANGE,
        shim.GetStateByRange(startKey="", endKey="").SerializeToString(),
        tx,
    )
    page = shim.QueryResponse.FromString(first.payload)
    assert (len(page.results), page.has_more) == (100, True)
    keys = [kv_query_result_pb2.KV.FromString(r.resultBytes) for r in page.results]
    assert (keys[0].namespace, keys[0].key, keys[0].value) == (
        "asset",
        "key000",
        b"value0",
    )
    sizes = []
    while page.has_more:
        answer = await chaincode.request(
            Message.QUERY_STATE_NEXT,
            shim.QueryStateNext(id=page.id).SerializeToString(),
            tx,
        )
        page = shim.QueryResponse.FromString(answer.payload)
        sizes.append(len(page.results))
    assert sizes == [100, 50]
    closed = await chaincode.request(
        Message.QUERY_STATE_CLOSE,
        shim.QueryStateClose(id=page.id).SerializeToString(),
        tx,
    )
    assert shim.QueryResponse.FromString(closed.payload) == shim.QueryResponse(
        id=page.id
    )
    await chaincode.complete(tx, ok())
    result = await running
    (info,) = decode_public(result.simulation.public_rwset)["asset"].range_queries_info
    assert (info.itr_exhausted, info.WhichOneof("reads_info")) == (
        True,
        "reads_merkle_hashes",
    )


async def test_paginated_range_returns_one_page_and_a_bookmark(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"Page"]))
    tx = await chaincode.recv()
    metadata = shim.QueryMetadata(pageSize=3, bookmark="key010").SerializeToString()
    request = shim.GetStateByRange(
        startKey="key000", endKey="key100", metadata=metadata
    )
    answer = await chaincode.request(
        Message.GET_STATE_BY_RANGE, request.SerializeToString(), tx
    )
    page = shim.QueryResponse.FromString(answer.payload)
    keys = [kv_query_result_pb2.KV.FromString(r.resultBytes).key for r in page.results]
    assert (keys, page.has_more) == (["key010", "key011", "key012"], False)
    assert shim.QueryResponseMetadata.FromString(
        page.metadata
    ) == shim.QueryResponseMetadata(fetched_records_count=3, bookmark="key013")
    put = await chaincode.request(
        Message.PUT_STATE, shim.PutState(key="k", value=b"v").SerializeToString(), tx
    )
    assert put.type == Message.ERROR
    assert b"paginated" in put.payload
    await chaincode.complete(tx, ok())
    await running


async def test_history_and_metadata(peer: PeerSide, chaincode: RawChaincode) -> None:
    peer.reader.history[("asset", "key001")] = [
        modification("t2", b"v2", 2),
        modification("t1", b"", 1),
    ]
    peer.reader.put(
        "asset", "guarded", b"x", Version(3, 0), metadata={"VALIDATION_PARAMETER": b"p"}
    )
    running = start_execution(peer, proposal([b"History"]))
    tx = await chaincode.recv()
    answer = await chaincode.request(
        Message.GET_HISTORY_FOR_KEY,
        shim.GetHistoryForKey(key="key001").SerializeToString(),
        tx,
    )
    page = shim.QueryResponse.FromString(answer.payload)
    history = [
        kv_query_result_pb2.KeyModification.FromString(r.resultBytes)
        for r in page.results
    ]
    assert [(h.tx_id, h.value, h.is_delete) for h in history] == [
        ("t2", b"v2", False),
        ("t1", b"", True),
    ]
    assert history[0].timestamp.seconds == 1_700_000_002
    answer = await chaincode.request(
        Message.GET_STATE_METADATA,
        shim.GetStateMetadata(key="guarded").SerializeToString(),
        tx,
    )
    assert shim.StateMetadataResult.FromString(
        answer.payload
    ) == shim.StateMetadataResult(
        entries=[shim.StateMetadata(metakey="VALIDATION_PARAMETER", value=b"p")]
    )
    write = shim.PutStateMetadata(
        key="guarded",
        metadata=shim.StateMetadata(metakey="VALIDATION_PARAMETER", value=b"q"),
    )
    assert (
        await chaincode.request(
            Message.PUT_STATE_METADATA, write.SerializeToString(), tx
        )
    ).type == Message.RESPONSE
    await chaincode.complete(tx, ok())
    result = await running
    rwset = decode_public(result.simulation.public_rwset)["asset"]
    assert [(m.key, m.entries[0].value) for m in rwset.metadata_writes] == [
        ("guarded", b"q")
    ]


async def test_requests_for_unknown_or_busy_transactions_get_errors(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    stray = Message(txid="nope", channel_id=CHANNEL)
    answer = await chaincode.request(
        Message.GET_STATE, shim.GetState(key="k").SerializeToString(), stray
    )
    assert answer.type == Message.ERROR
    assert (
        answer.payload == b"GET_STATE failed: transaction ID: nope: no ledger context"
    )
    running = start_execution(peer, proposal([b"Bad"]))
    tx = await chaincode.recv()
    garbage = await chaincode.request(Message.PUT_STATE, b"\xff\xff", tx)
    assert garbage.type == Message.ERROR
    assert b"unmarshal failed" in garbage.payload
    empty_key = await chaincode.request(
        Message.PUT_STATE, shim.PutState(key="", value=b"v").SerializeToString(), tx
    )
    assert b"key must not be empty" in empty_key.payload
    private_in_tx = shim.GetState(key="k", collection="coll").SerializeToString()
    assert (
        await chaincode.request(Message.GET_STATE, private_in_tx, tx)
    ).type == Message.RESPONSE
    await chaincode.complete(tx, ok())
    await running


async def test_chaincode_error_is_a_failure(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"Explode"]))
    tx = await chaincode.recv()
    await chaincode.send(
        Message(type=Message.ERROR, payload=b"boom", txid=tx.txid, channel_id=CHANNEL)
    )
    with pytest.raises(
        ChaincodeFailed, match="transaction returned with failure: boom"
    ):
        await running


async def test_status_500_is_returned_as_a_response(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"Throw"]))
    tx = await chaincode.recv()
    failure = proposal_response_pb2.Response(status=500, message="asset exists")
    await chaincode.complete(tx, failure.SerializeToString())
    result = await running
    assert (result.response.status, result.response.message) == (500, "asset exists")
    assert not result.response.is_success


async def test_execution_timeout(chaincode: RawChaincode, peer: PeerSide) -> None:
    peer.executor.execute_timeout_s = 0.2
    running = start_execution(peer, proposal([b"Slow"]))
    tx = await chaincode.recv()
    with pytest.raises(ChaincodeTimeout, match="timeout expired"):
        await running
    await chaincode.complete(tx, ok())  # too late: ignored, the stream stays usable
    peer.executor.execute_timeout_s = 10
    running = start_execution(peer, proposal([b"Fast"]))
    await chaincode.complete(await chaincode.recv(), ok(b"ok"))
    assert (await running).response.payload == b"ok"


async def test_stream_end_fails_the_transaction_and_unregisters(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"Crash"]))
    await chaincode.recv()
    await chaincode.close()
    with pytest.raises(ChaincodeUnavailable):
        await running
    assert peer.registry.handler(PACKAGE) is None


async def test_duplicate_registration_is_refused(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    await assert_registration_refused(peer.address, PACKAGE)
    assert peer.registry.handler(PACKAGE) is not None


async def test_expected_extra_streams_share_the_transactions(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    """streams=2: a second stream registers, transactions take turns on them."""
    peer.registry.expect(PACKAGE, streams=2)
    second = RawChaincode(peer.address)
    await second.register(PACKAGE)
    await assert_registration_refused(peer.address, PACKAGE)
    assert len(peer.registry.handlers(PACKAGE)) == 2
    first_tx, second_tx = proposal([b"One"]), proposal([b"Two"])
    running = [start_execution(peer, tx) for tx in (first_tx, second_tx)]
    on_first, on_second = await chaincode.recv(), await second.recv()
    assert {on_first.txid, on_second.txid} == {first_tx.tx_id, second_tx.tx_id}
    await chaincode.complete(on_first, ok(b"first"))
    await second.complete(on_second, ok(b"second"))
    payloads = {(await task).response.payload for task in running}
    assert payloads == {b"first", b"second"}
    await second.close()


async def test_a_transaction_calling_its_own_chaincode_stays_on_its_stream(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    """With two streams, the registry hands a running tx id back to its own stream."""
    peer.registry.expect(PACKAGE, streams=2)
    second = RawChaincode(peer.address)
    await second.register(PACKAGE)
    txs = [proposal([b"Busy"]), proposal([b"Busy"])]
    running = [start_execution(peer, tx) for tx in txs]
    on_first, on_second = await chaincode.recv(), await second.recv()
    for tx in txs:
        own = peer.registry.handler(PACKAGE, (CHANNEL, tx.tx_id))
        assert own is not None
        assert own.is_running((CHANNEL, tx.tx_id))
        (other,) = [h for h in peer.registry.handlers(PACKAGE) if h is not own]
        assert not other.is_running((CHANNEL, tx.tx_id))
    await chaincode.complete(on_first, ok(b"done"))
    await second.complete(on_second, ok(b"done"))
    assert [(await task).response.payload for task in running] == [b"done"] * 2
    await second.close()


async def test_messages_before_register_end_the_stream(peer: PeerSide) -> None:
    raw = RawChaincode(peer.address)
    await raw.send(Message(type=Message.GET_STATE, payload=b""))
    assert await raw.ended()
    await raw.close()


async def test_unsolicited_registration_is_refused_unless_allowed() -> None:
    strict = await PeerSide(allow_unsolicited=False).start()
    try:
        await assert_registration_refused(strict.address, "x:1")
        strict.registry.expect("x:1")
        expected = RawChaincode(strict.address)
        await expected.register("x:1")
        await expected.close()
    finally:
        await strict.stop()


async def test_unknown_package_fails_fast(peer: PeerSide) -> None:
    strict = ChaincodeRegistry(allow_unsolicited=False)
    with pytest.raises(ChaincodeUnavailable, match="not running"):
        await strict.wait_ready("ghost:1", timeout_s=5)
    with pytest.raises(ChaincodeError, match="not defined"):
        await peer.executor.execute(
            proposal([b"x"], chaincode="nothing"), peer.simulator()
        )


async def test_chaincode_to_chaincode_shares_the_rwset(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    callee = RawChaincode(peer.address)
    await callee.register("ledgerlog:1")
    running = start_execution(peer, proposal([b"Transfer"]))
    tx = await chaincode.recv()
    await invoke_chaincode(chaincode, tx, "ledgerlog", b"Log", b"x")
    inner = await callee.recv()
    assert (inner.type, inner.txid) == (Message.TRANSACTION, tx.txid)
    assert chaincode_pb2.ChaincodeInput.FromString(inner.payload).args == [b"Log", b"x"]
    assert inner.proposal == tx.proposal
    log_write = shim.PutState(key="log1", value=b"x").SerializeToString()
    assert (
        await callee.request(Message.PUT_STATE, log_write, inner)
    ).type == Message.RESPONSE
    await callee.complete(inner, ok(b"logged"))
    answer = await chaincode.recv()
    assert answer.type == Message.RESPONSE
    nested = Message.FromString(answer.payload)
    assert nested.type == Message.COMPLETED
    assert (
        proposal_response_pb2.Response.FromString(nested.payload).payload == b"logged"
    )
    await chaincode.complete(tx, ok())
    result = await running
    namespaces = decode_public(result.simulation.public_rwset)
    assert [w.key for w in namespaces["ledgerlog"].writes] == ["log1"]
    await callee.close()


async def test_never_sends_keepalive(peer: PeerSide, chaincode: RawChaincode) -> None:
    await chaincode.send(Message(type=Message.KEEPALIVE))
    running = start_execution(peer, proposal([b"Ping"]))
    tx = await chaincode.recv()
    assert tx.type == Message.TRANSACTION
    await chaincode.complete(tx, ok())
    await running


async def test_cross_channel_call_can_only_read(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    callee = RawChaincode(peer.address)
    await callee.register("ledgerlog:1")
    running = start_execution(peer, proposal([b"Audit"]))
    tx = await chaincode.recv()
    await invoke_chaincode(chaincode, tx, "ledgerlog/audit")
    inner = await callee.recv()
    assert inner.channel_id == "audit"
    write = shim.PutState(key="dropped", value=b"x").SerializeToString()
    assert (
        await callee.request(Message.PUT_STATE, write, inner)
    ).type == Message.RESPONSE
    await callee.complete(inner, ok())
    assert (await chaincode.recv()).type == Message.RESPONSE
    await chaincode.complete(tx, ok())
    result = await running
    assert "ledgerlog" not in decode_public(result.simulation.public_rwset)
    await callee.close()


async def test_invoking_an_unknown_chaincode_is_an_error(
    peer: PeerSide, chaincode: RawChaincode
) -> None:
    running = start_execution(peer, proposal([b"Call"]))
    tx = await chaincode.recv()
    await invoke_chaincode(chaincode, tx, "missing")
    answer = await chaincode.recv()
    assert answer.type == Message.ERROR
    assert answer.payload.startswith(b"INVOKE_CHAINCODE failed: transaction ID: ")
    assert b"execute failed: chaincode missing is not defined" in answer.payload
    await chaincode.complete(tx, ok())
    await running


class ReadOnlyCollections:
    """The creator may read "shared" but not write it; "closed" is off limits."""

    def permissions(self, namespace: str, collection: str) -> tuple[bool, bool]:
        return {"shared": (True, False), "closed": (False, False)}.get(
            collection, (True, True)
        )


async def test_private_data_requests(peer: PeerSide, chaincode: RawChaincode) -> None:
    peer.reader.put_private("asset", "shared", "p1", b"secret", Version(4, 0))
    parsed = proposal([b"Private"])
    running = asyncio.create_task(
        peer.executor.execute(
            parsed,
            peer.simulator(parsed.tx_id),
            collection_access=ReadOnlyCollections(),
            purge_enabled=False,
        )
    )
    tx = await chaincode.recv()

    async def ask(request_type: int, message: object) -> Message:
        return await chaincode.request(request_type, message.SerializeToString(), tx)  # type: ignore[attr-defined]

    got = await ask(Message.GET_STATE, shim.GetState(key="p1", collection="shared"))
    assert (got.type, got.payload) == (Message.RESPONSE, b"secret")
    digest = await ask(
        Message.GET_PRIVATE_DATA_HASH, shim.GetState(key="p1", collection="shared")
    )
    assert digest.payload == sha256(b"secret")
    denied = await ask(
        Message.PUT_STATE, shim.PutState(key="p2", value=b"x", collection="shared")
    )
    assert denied.type == Message.ERROR
    assert b"may not write" in denied.payload
    hidden = await ask(Message.GET_STATE, shim.GetState(key="p1", collection="closed"))
    assert b"may not read" in hidden.payload
    purge = await ask(
        Message.PURGE_PRIVATE_DATA, shim.PurgePrivateState(key="p1", collection="open")
    )
    assert b"V2_5" in purge.payload
    unknown = await ask(Message.QUERY_STATE_NEXT, shim.QueryStateNext(id="nope"))
    assert b"query iterator 'nope' not found" in unknown.payload
    written = await ask(
        Message.PUT_STATE, shim.PutState(key="p3", value=b"y", collection="open")
    )
    assert written.type == Message.RESPONSE
    await chaincode.complete(tx, ok())
    result = await running
    assert result.simulation.private_writes == {("asset", "open")}
    assert result.simulation.private_reads == {("asset", "shared")}
