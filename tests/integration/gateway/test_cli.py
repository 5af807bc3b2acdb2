"""`medledger gateway start`, `medledger tx` and `medledger events` as processes.

The commands run as child processes against the in-process network of this module
(the event loop keeps serving while they run); the gateway process is started from a
gateway.yaml and answers through its READY address.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from common.node import parse_ready_line
from gateway.client import Gateway, identity_from_msp, signer_from_msp
from tests.integration.gateway.network import GatewayNetwork, write_gateway_yaml
from tests.support.peer import CHANNEL, HOSPITAL_A, HOSPITAL_B, TIMEOUT_S

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def medledger(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT_S):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def connection(network: GatewayNetwork, address: str | None = None) -> list[str]:
    return [
        "--gateway",
        address or network.gateway_address,
        "--msp",
        str(network.user_msp()),
        "--mspid",
        HOSPITAL_A,
        "--channel",
        CHANNEL,
    ]


async def test_tx_submit_evaluate_and_chaincode_events(network: GatewayNetwork) -> None:
    code, out, err = await medledger(
        "tx", "submit", *connection(network), "--chaincode", "asset",
        "CreateAsset", "cli-1", "blue", "5", "Tomoko", "300",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["ID"] == "cli-1"
    assert "committed " in err
    assert ": VALID" in err
    code, out, err = await medledger(
        "tx", "evaluate", *connection(network), "--chaincode", "asset",
        "ReadAsset", "cli-1",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["Owner"] == "Tomoko"
    code, out, err = await medledger(
        "tx", "submit", *connection(network), "--chaincode", "asset",
        "TransferAsset", "cli-1", "Max",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await medledger(
        "events", "chaincode", *connection(network), "--chaincode", "asset",
        "--start-block", "0", "--count", "1",
    )  # fmt: skip
    assert code == 0, err
    event = json.loads(out)
    assert (event["event"], json.loads(event["payload"])["NewOwner"]) == (
        "TransferAsset",
        "Max",
    )


async def test_tx_errors_are_one_line_messages(network: GatewayNetwork) -> None:
    code, _, err = await medledger(
        "tx", "evaluate", *connection(network), "--chaincode", "asset",
        "ReadAsset", "no-such-asset",
    )  # fmt: skip
    assert code == 1
    assert err.startswith("medledger: error: UNKNOWN: evaluate call to endorser")


async def test_block_events_print_transactions_and_codes(
    network: GatewayNetwork,
) -> None:
    code, out, err = await medledger(
        "events", "blocks", *connection(network), "--start-block", "0", "--count", "2"
    )
    assert code == 0, err
    blocks = [json.loads(line) for line in out.splitlines()]
    assert [block["block"] for block in blocks] == [0, 1]
    assert blocks[1]["transactions"][0]["code"] == "VALID"


async def test_gateway_start_serves_until_sigterm(
    network: GatewayNetwork, tmp_path: Path
) -> None:
    config = write_gateway_yaml(
        tmp_path / "gateway.yaml",
        network.material,
        peers=[(network.address_a, HOSPITAL_A), (network.address_b, HOSPITAL_B)],
        orderer_address=network.orderer,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        "gateway",
        "start",
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            line = await process.stdout.readline()
        address = parse_ready_line(line.decode().strip())["grpc"]
        msp = network.user_msp()
        async with Gateway.connect(
            address,
            identity_from_msp(msp, HOSPITAL_A),
            signer_from_msp(msp, HOSPITAL_A),
        ) as gateway:
            contract = gateway.network(CHANNEL).contract("asset")
            await contract.submit("CreateAsset", "cli-2", "red", "1", "Brad", "10")
            assert (
                json.loads(await contract.evaluate("ReadAsset", "cli-2"))["Size"] == 1
            )
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT_S):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
