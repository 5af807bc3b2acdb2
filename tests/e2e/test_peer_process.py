"""The peer as a real process started through the CLI, over TLS, with a real orderer.

Method: `medledger orderer start` and `medledger peer start` in subprocesses (READY
lines, never sleeps); `medledger channel join` run as a command; the asset chaincode
launched by the peer. A `_lifecycle` definition and an asset transaction (endorsed by
the peer, plus Hospital B's peer identity for the MAJORITY policy) are ordered; the
peer commits them as VALID. SIGTERM stops the peer with status 0; started again on the
same storage it serves the same state.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from common.protoutil import SeekPosition
from common.tls import TlsFiles, channel_credentials
from network.orderer_material import write_orderer_yaml
from protos.common import common_pb2, ledger_pb2
from protos.peer import transaction_pb2
from tests.support.orderer import broadcast
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    asset_definition,
    build_peer_material,
    co_endorse,
    definition_envelope,
    launched_asset,
    peer_deliver,
    process_proposal,
    seek,
    signed_proposal,
    transaction,
    write_peer_yaml,
)
from tests.support.processes import CliProcess, start_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("e2e-peer-material"))


@pytest.fixture
def orderer(material: PeerMaterial, tmp_path: Path) -> Iterator[dict[str, str]]:
    config = write_orderer_yaml(
        tmp_path / "orderer" / "orderer.yaml",
        material.orderer,
        storage=tmp_path / "orderer" / "data",
    )
    process = start_cli(
        ["orderer", "start", "-c", str(config)], stderr_path=tmp_path / "orderer.log"
    )
    try:
        yield process.wait_ready()
    finally:
        process.terminate()


def start_peer(config: Path, log: Path) -> tuple[CliProcess, dict[str, str]]:
    process = start_cli(["peer", "start", "-c", str(config)], stderr_path=log)
    return process, process.wait_ready()


def peer_channel(material: PeerMaterial, address: str) -> grpc.aio.Channel:
    credentials = channel_credentials(TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),)))
    return grpc.aio.secure_channel(address, credentials)


async def join_orderer(admin: str, material: PeerMaterial) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block", material.genesis.SerializeToString(), filename="genesis.block"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{admin}/participation/v1/channels", data=form) as response,
    ):
        assert response.status == 201, await response.text()


async def order(material: PeerMaterial, orderer: str, envelope: bytes) -> None:
    async with open_orderer_channel(orderer, material.orderer) as channel:
        [response] = await broadcast(channel, [envelope])
    assert response.status == common_pb2.SUCCESS, response.info


async def committed_codes(
    material: PeerMaterial, channel: grpc.aio.Channel, number: int
) -> list[int]:
    """Wait for block `number` on the peer's DeliverFiltered; its validation codes."""
    client = material.user(HOSPITAL_A, "dr-lee")
    request = seek(
        client,
        start=SeekPosition.specified(number),
        stop=SeekPosition.specified(number),
    )
    responses = await peer_deliver(channel, "DeliverFiltered", [request])
    assert responses[-1].status == common_pb2.SUCCESS
    return [
        tx.tx_validation_code
        for tx in responses[0].filtered_block.filtered_transactions
    ]


async def test_peer_process_joins_endorses_commits_and_restarts(
    material: PeerMaterial, orderer: dict[str, str], tmp_path: Path
) -> None:
    await join_orderer(orderer["admin"], material)
    config = write_peer_yaml(
        tmp_path / "peer" / "peer.yaml",
        material,
        HOSPITAL_A,
        storage=tmp_path / "peer" / "data",
        orderer_address=orderer["grpc"],
        tls=True,
        chaincodes={"asset": launched_asset()},
    )
    process, addresses = start_peer(config, tmp_path / "peer-1.log")
    try:
        admin_msp = material.orderer.user(HOSPITAL_A, "Admin").msp_dir
        genesis = tmp_path / "genesis.block"
        genesis.write_bytes(material.genesis.SerializeToString())
        join = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "network.cli",
            "channel",
            "join",
            "-b",
            str(genesis),
            "--peer",
            addresses["grpc"],
            "--identity",
            str(admin_msp),
            "--tls-ca",
            str(material.tls_ca(HOSPITAL_A)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await join.communicate()
        assert join.returncode == 0, stderr.decode()
        assert stdout.decode().strip() == f"joined channel {CHANNEL} (height 1)"

        definition = definition_envelope(
            material, asset_definition(), [HOSPITAL_A, HOSPITAL_B]
        )
        await order(material, orderer["grpc"], definition)
        client = material.user(HOSPITAL_A, "dr-lee")
        async with peer_channel(material, addresses["grpc"]) as channel:
            assert await committed_codes(material, channel, 1) == [
                transaction_pb2.VALID
            ]
            signed, proposal = signed_proposal(
                client, ["CreateAsset", "e2e-1", "green", "3", "Jin", "70"]
            )
            response = await process_proposal(channel, signed)
            assert response.response.status == 200, response.response.message
            endorsed = [
                response,
                co_endorse(response, material.peer_identity(HOSPITAL_B)),
            ]
            await order(
                material, orderer["grpc"], transaction(client, proposal, endorsed)
            )
            assert await committed_codes(material, channel, 2) == [
                transaction_pb2.VALID
            ]
        assert process.terminate() == 0
    finally:
        process.kill()

    process, addresses = start_peer(config, tmp_path / "peer-2.log")
    try:
        async with peer_channel(material, addresses["grpc"]) as channel:
            info, _ = signed_proposal(
                client, ["GetChainInfo", CHANNEL], chaincode="qscc"
            )
            answer = await process_proposal(channel, info)
            assert (
                ledger_pb2.BlockchainInfo.FromString(answer.response.payload).height
                == 3
            )
            read, _ = signed_proposal(client, ["ReadAsset", "e2e-1"])
            answer = await process_proposal(channel, read)
            assert answer.response.status == 200, answer.response.message
            assert json.loads(answer.response.payload)["Owner"] == "Jin"
        assert process.terminate() == 0
    finally:
        process.kill()
