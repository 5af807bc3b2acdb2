"""GetPrivateDataQueryResult from a launched Python chaincode through the real peer side.

The peer's `ChaincodeLauncher` starts `python -m chaincode serve` with the
`PatientQueries` contract; its `get_private_data_query_result` calls travel as
GET_QUERY_RESULT with a collection (and QUERY_STATE_NEXT for further batches)
over the chaincode stream to the real handler, simulator and SQLite private state.
A hand-driven stream checks the wire answer itself: never paginated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peer.chaincode.execute import ChaincodeInfo
from peer.chaincode.launcher import python_launch_spec
from peer.ledger.hashed import HashedUpdateBatch, apply_hashed_updates
from peer.ledger.mango import create_index
from peer.ledger.pvtrwset import key_hash, value_hash
from peer.ledger.pvtstate import PrivateUpdateBatch, apply_private_updates
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import Version
from peer.simulator import open_simulator
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import chaincode_shim_pb2, proposal_response_pb2
from tests.integration.peer.chaincode_fixtures import (
    LedgerPeer,
    Message,
    PeerSide,
    RawChaincode,
    proposal,
)
from tests.unit.chaincode.pvtquery_contract import WARDS, private_rich_query
from tests.unit.chaincode.scenarios import ok
from tests.unit.peer.simfakes import decode_hashed, decode_public

ROOT = str(Path(__file__).resolve().parents[3])
CONTRACT = "tests.unit.chaincode.pvtquery_contract:PatientQueries"
PACKAGE = "wards_1:cc"
MANY = 150  # more than one batch of 100 results


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[LedgerPeer]:
    side = await LedgerPeer(
        tmp_path / "ledger.sqlite", {"wards": ChaincodeInfo(PACKAGE, "1")}
    ).start()
    side.launcher.launch(
        python_launch_spec(
            PACKAGE, side.address, [CONTRACT], cwd=ROOT, msp_id="Org1MSP"
        )
    )
    try:
        yield side
    finally:
        await side.stop()


def seed_ward(db_path: Path) -> None:
    """MANY committed records in "wards" (and their hashes), as a member peer holds them."""
    conn = open_channel_db(db_path)
    plain, hashed = PrivateUpdateBatch(), HashedUpdateBatch()
    for i in range(MANY):
        key = f"bed{i:03d}"
        value = json.dumps({"ward": "icu" if i % 2 else "general", "age": i}).encode()
        plain.put("wards", WARDS, key, value, Version(1, i))
        hashed.put(
            "wards",
            WARDS,
            key_hash(key),
            value_hash=value_hash(value),
            version=Version(1, i),
        )
    apply_private_updates(conn, plain)
    apply_hashed_updates(conn, hashed)
    create_index(
        conn,
        "wards",
        '{"index": {"fields": ["ward", "age"]}, "ddoc": "byWard", "name": "ward"}',
        collection=WARDS,
    )
    conn.close()


async def find(peer: LedgerPeer, query: object) -> list[list[str]]:
    found = ok(await peer.evaluate("FindPatients", WARDS, json.dumps(query))).json()
    assert isinstance(found, list)
    return found


async def test_scenario_on_the_real_peer(peer: LedgerPeer) -> None:
    await private_rich_query(peer)


async def test_results_beyond_one_batch_with_sort_skip_limit_and_fields(
    peer: LedgerPeer, tmp_path: Path
) -> None:
    seed_ward(tmp_path / "ledger.sqlite")

    every_icu = await find(peer, {"selector": {"ward": "icu"}})
    oldest = await find(
        peer,
        {
            "selector": {"ward": "icu", "age": {"$gte": 100}},
            "sort": [{"ward": "desc"}, {"age": "desc"}],
            "skip": 1,
            "limit": 2,
            "fields": ["age"],
            "use_index": ["byWard", "ward"],
        },
    )

    assert len(every_icu) == MANY // 2
    assert [key for key, _ in every_icu][:2] == ["bed001", "bed003"]
    assert oldest == [["bed147", '{"age":147}'], ["bed145", '{"age":145}']]


async def test_a_peer_outside_the_collection_answers_with_an_error(
    peer: LedgerPeer,
) -> None:
    peer.membership = lambda ns, coll: coll != WARDS

    refused = await peer.evaluate("FindPatients", WARDS, '{"selector": {}}')

    assert refused.status == 500
    assert "not a member of collection wards of chaincode wards" in refused.message


async def test_the_query_leaves_no_reads_in_the_rwset(
    peer: LedgerPeer, tmp_path: Path
) -> None:
    seed_ward(tmp_path / "ledger.sqlite")
    parsed = proposal(
        [b"FindPatients", WARDS.encode(), b'{"selector": {"age": 7}}'],
        chaincode="wards",
    )
    sim = open_simulator(
        peer.snapshots, channel_id=parsed.channel_id, tx_id=parsed.tx_id
    )
    try:
        result = await peer.executor.execute(parsed, sim)
    finally:
        sim.done()

    assert json.loads(result.response.payload) == [
        ["bed007", '{"ward": "icu", "age": 7}']
    ]
    assert decode_public(result.simulation.public_rwset) == {}
    assert decode_hashed(result.simulation.public_rwset) == {}
    assert result.simulation.private_reads == frozenset()


async def test_a_page_size_is_ignored_for_private_data() -> None:
    """As in Fabric: the answer holds every result, no QueryResponseMetadata."""
    side = await PeerSide(chaincodes={"wards": ChaincodeInfo(PACKAGE, "1")}).start()
    raw = RawChaincode(side.address)
    try:
        await raw.register(PACKAGE)
        for i in range(3):
            side.reader.put_private("wards", WARDS, f"bed{i}", b"icu", Version(1, i))
        parsed = proposal([b"Find"], chaincode="wards")
        running = asyncio.create_task(
            side.executor.execute(parsed, side.simulator(parsed.tx_id))
        )
        tx = await raw.recv()
        request = chaincode_shim_pb2.GetQueryResult(
            query="icu",
            collection=WARDS,
            metadata=chaincode_shim_pb2.QueryMetadata(pageSize=1).SerializeToString(),
        )
        answer = await raw.request(
            Message.GET_QUERY_RESULT, request.SerializeToString(), tx
        )
        done = proposal_response_pb2.Response(status=200).SerializeToString()
        await raw.complete(tx, done)
        result = await running
    finally:
        await raw.close()
        await side.stop()

    response = chaincode_shim_pb2.QueryResponse.FromString(answer.payload)
    keys = [
        kv_query_result_pb2.KV.FromString(r.resultBytes).key for r in response.results
    ]
    assert (keys, response.has_more, response.metadata) == (
        ["bed0", "bed1", "bed2"],
        False,
        b"",
    )
    assert decode_hashed(result.simulation.public_rwset) == {}
