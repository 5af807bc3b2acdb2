"""The official Fabric Gateway client (Node, `@hyperledger/fabric-gateway` 1.11.0) against
our gateway, peers and orderer.

Method: the network of tests/integration/gateway (solo orderer, peer0 of Hospitals A
and B, the Python asset chaincode, Hospital A's gateway) runs in this event loop;
tests/interop/node/client.js connects to the gateway's address as dr-lee of Hospital A
and runs its scenarios once; each test checks one scenario's outcome against what the
ledger and Fabric 2.5's gateway say it must be.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from common.protoutil import parse_envelope
from protos.peer.transaction_pb2 import TxValidationCode
from tests.integration.gateway.network import SECRET, GatewayNetwork, gateway_network
from tests.support.peer import CHANNEL, HOSPITAL_A, PeerMaterial, build_peer_material

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

NODE_TIMEOUT_S = 120
GRPC_UNKNOWN = 2
GRPC_ABORTED = 10
SECRET_TEXT = "diagnosis for P0017: influenza A"


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("node-client-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayNetwork]:
    async with gateway_network(material, tmp_path_factory.mktemp("node-net")) as net:
        yield net


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def outcome(
    node_packages: Path,
    network: GatewayNetwork,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    user = network.material.orderer.user(HOSPITAL_A, "dr-lee")
    request = {
        "address": network.gateway_address,
        "mspId": HOSPITAL_A,
        "certPem": user.signcert.read_text(),
        "keyPem": user.private_key.read_text(),
        "channel": CHANNEL,
        "chaincode": "asset",
        "prefix": "node",
        "secretChaincode": SECRET,
        "secret": SECRET_TEXT,
        "checkpointFile": str(tmp_path_factory.mktemp("checkpoint") / "events.json"),
    }
    process = await asyncio.create_subprocess_exec(
        "node",
        str(node_packages / "client.js"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(NODE_TIMEOUT_S):
        stdout, stderr = await process.communicate(json.dumps(request).encode())
    assert process.returncode == 0, f"client.js failed:\n{stderr.decode()}"
    document: dict[str, Any] = json.loads(stdout)
    for name, result in document.items():
        assert "unexpected" not in result, f"{name}: {result['unexpected']}"
    return document


async def test_submit_and_evaluate(outcome: dict[str, Any]) -> None:
    result = outcome["evaluate"]
    created = json.loads(result["created"])
    read = json.loads(result["read"])
    assert created == read
    assert (read["ID"], read["Owner"], read["AppraisedValue"]) == (
        "node-eval",
        "Tomoko",
        300,
    )


async def test_submit_async_and_get_status(
    outcome: dict[str, Any], network: GatewayNetwork
) -> None:
    result = outcome["submitAsync"]
    assert result["result"] == "Brad"
    assert (result["code"], result["successful"]) == (TxValidationCode.VALID, True)
    assert result["statusTransactionId"] == result["transactionId"]
    store = network.peer_a.channels.require(CHANNEL).ledger.block_store
    assert store.tx_validation_code(result["transactionId"]) == TxValidationCode.VALID
    block = store.block_by_number(result["blockNumber"])
    tx_ids = [parse_envelope(envelope).tx_id for envelope in block.data.data]
    assert result["transactionId"] in tx_ids


async def test_chaincode_errors_carry_codes_and_details(
    outcome: dict[str, Any], network: GatewayNetwork
) -> None:
    evaluate = outcome["errors"]["evaluate"]
    assert (evaluate["thrown"], evaluate["name"], evaluate["code"]) == (
        True,
        "GatewayError",
        GRPC_UNKNOWN,
    )
    assert "chaincode response 404" in evaluate["message"]
    [detail] = evaluate["details"]
    assert (detail["address"], detail["mspId"]) == (network.address_a, HOSPITAL_A)

    endorse = outcome["errors"]["endorse"]
    assert (endorse["name"], endorse["code"]) == ("EndorseError", GRPC_ABORTED)
    assert endorse["transactionId"]
    [detail] = endorse["details"]
    assert detail["mspId"] == HOSPITAL_A
    assert detail["message"] == (
        "chaincode response 409, the asset node-err already exists"
    )


async def test_a_read_conflict_and_a_policy_failure_are_commit_errors(
    outcome: dict[str, Any],
) -> None:
    statuses = outcome["conflict"]["statuses"]
    assert [s["code"] for s in statuses] == [
        TxValidationCode.VALID,
        TxValidationCode.MVCC_READ_CONFLICT,
    ]
    assert [s["successful"] for s in statuses] == [True, False]
    error = outcome["conflict"]["commitError"]
    assert (error["name"], error["code"]) == (
        "CommitError",
        TxValidationCode.ENDORSEMENT_POLICY_FAILURE,
    )
    assert error["transactionId"]


async def test_chaincode_events_replay_and_resume_without_duplicates(
    outcome: dict[str, Any],
) -> None:
    result = outcome["events"]
    transfers = result["transfers"]
    replayed = result["replayed"]
    assert [event["transactionId"] for event in replayed] == transfers
    assert [event["payload"]["NewOwner"] for event in replayed] == [
        "Owner1",
        "Owner2",
        "Owner3",
    ]
    assert {(e["chaincodeName"], e["eventName"]) for e in replayed} == {
        ("asset", "TransferAsset")
    }
    assert [e["transactionId"] for e in result["resumed"]] == transfers[1:]
    assert [e["transactionId"] for e in result["fromFile"]] == transfers[2:]
    assert (result["checkpointBlock"], result["checkpointTransaction"]) == (
        replayed[0]["blockNumber"],
        transfers[0],
    )


async def test_block_events_are_contiguous_from_block_zero(
    outcome: dict[str, Any], network: GatewayNetwork
) -> None:
    blocks = outcome["blocks"]
    last = blocks["lastBlock"]
    assert blocks["numbers"] == list(range(last + 1))
    assert blocks["filteredNumbers"] == list(range(last + 1))
    store = network.peer_a.channels.require(CHANNEL).ledger.block_store
    assert (
        store.tx_validation_code(blocks["lastTransactionId"]) == TxValidationCode.VALID
    )
    checked = [entry for entry in blocks["codes"] if entry["txId"]]
    assert checked
    for entry in checked:
        assert store.tx_validation_code(entry["txId"]) == entry["code"]


async def test_transient_data_reaches_the_chaincode_and_never_a_block(
    outcome: dict[str, Any], network: GatewayNetwork
) -> None:
    result = outcome["transient"]
    secret = SECRET_TEXT.encode()
    assert int(result["size"]) == len(secret)
    assert result["digest"] == hashlib.sha256(secret).hexdigest()
    assert result["code"] == TxValidationCode.VALID
    store = network.peer_a.channels.require(CHANNEL).ledger.block_store
    for number in range(store.height):
        assert secret not in store.block_by_number(number).SerializeToString()
