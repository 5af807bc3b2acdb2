"""The operations endpoints of a real orderer process and a real peer process.

Method: `medledger orderer start` and `medledger peer start` in subprocesses, both with
`operations: {listen: 127.0.0.1:0}` (READY lines name the bound address, never sleeps).
The peer joins medical-records, one `_lifecycle` transaction is ordered and committed
(waited for on the peer's DeliverFiltered). Then: /healthz, /version and /metrics of
both nodes over HTTP, and `medledger peer purges` against the peer (no purge yet).
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
from peer.admin import AdminTarget, join_channel
from protos.common import common_pb2
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
    definition_envelope,
    peer_deliver,
    seek,
    write_peer_yaml,
)
from tests.support.processes import start_cli

pytestmark = pytest.mark.e2e

OPERATIONS = {"operations": {"listen": "127.0.0.1:0"}}


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("e2e-operations-material"))


@pytest.fixture
def orderer(material: PeerMaterial, tmp_path: Path) -> Iterator[dict[str, str]]:
    config = write_orderer_yaml(
        tmp_path / "orderer" / "orderer.yaml",
        material.orderer,
        storage=tmp_path / "orderer" / "data",
    )
    config.write_text(json.dumps({**json.loads(config.read_text()), **OPERATIONS}))
    process = start_cli(
        ["orderer", "start", "-c", str(config)], stderr_path=tmp_path / "orderer.log"
    )
    try:
        yield process.wait_ready()
    finally:
        process.terminate()


@pytest.fixture
def peer(
    material: PeerMaterial, orderer: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    config = write_peer_yaml(
        tmp_path / "peer" / "peer.yaml",
        material,
        HOSPITAL_A,
        storage=tmp_path / "peer" / "data",
        orderer_address=orderer["grpc"],
        tls=True,
        extra=OPERATIONS,
    )
    process = start_cli(
        ["peer", "start", "-c", str(config)], stderr_path=tmp_path / "peer.log"
    )
    try:
        yield process.wait_ready()
    finally:
        assert process.terminate() == 0


async def test_health_metrics_and_purges_of_running_nodes(
    material: PeerMaterial, orderer: dict[str, str], peer: dict[str, str]
) -> None:
    """After one committed transaction both nodes report healthy, their heights, the
    broadcast and the VALID transaction; the peer has no purge to list."""
    await _join_orderer(orderer["admin"], material)
    admin = material.user(HOSPITAL_A, "Admin")
    await join_channel(
        _admin_target(material, peer["grpc"]),
        signer=admin,
        genesis_block=material.genesis.SerializeToString(),
    )
    definition = definition_envelope(
        material, asset_definition(), [HOSPITAL_A, HOSPITAL_B]
    )
    async with open_orderer_channel(orderer["grpc"], material.orderer) as channel:
        [response] = await broadcast(channel, [definition])
    assert response.status == common_pb2.SUCCESS, response.info
    assert await _committed_codes(material, peer["grpc"], 1) == [transaction_pb2.VALID]

    for node in (orderer, peer):
        status, body = await _get(node["operations"], "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "OK"), body
        status, body = await _get(node["operations"], "/version")
        assert status == 200
        assert "Version" in json.loads(body)
    _, orderer_metrics = await _get(orderer["operations"], "/metrics")
    _, peer_metrics = await _get(peer["operations"], "/metrics")
    height = f'ledger_blockchain_height{{channel="{CHANNEL}"}} 2\n'
    assert height in orderer_metrics
    assert (
        f'broadcast_processed_count{{channel="{CHANNEL}",type="ENDORSER_TRANSACTION",'
        'status="SUCCESS"} 1\n'
    ) in orderer_metrics
    assert height in peer_metrics
    assert (
        f'ledger_transaction_count{{channel="{CHANNEL}",validation_code="VALID"}} 1\n'
        in peer_metrics
    )
    assert "endorser_proposals_received 0\n" in peer_metrics

    listed = await _medledger(
        "peer",
        "purges",
        "--peer",
        peer["grpc"],
        "--identity",
        str(material.orderer.user(HOSPITAL_A, "Admin").msp_dir),
        "--mspid",
        HOSPITAL_A,
        "--channel",
        CHANNEL,
        "--tls-ca",
        str(material.tls_ca(HOSPITAL_A)),
        "--json",
    )
    assert json.loads(listed) == []


def _admin_target(material: PeerMaterial, address: str) -> AdminTarget:
    return AdminTarget(
        address=address, tls=TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),))
    )


async def _join_orderer(admin: str, material: PeerMaterial) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block", material.genesis.SerializeToString(), filename="genesis.block"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{admin}/participation/v1/channels", data=form) as response,
    ):
        assert response.status == 201, await response.text()


async def _committed_codes(
    material: PeerMaterial, address: str, number: int
) -> list[int]:
    """Wait for block `number` on the peer's DeliverFiltered; its validation codes."""
    credentials = channel_credentials(TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),)))
    request = seek(
        material.user(HOSPITAL_A, "dr-lee"),
        start=SeekPosition.specified(number),
        stop=SeekPosition.specified(number),
    )
    async with grpc.aio.secure_channel(address, credentials) as channel:
        responses = await peer_deliver(channel, "DeliverFiltered", [request])
    assert responses[-1].status == common_pb2.SUCCESS
    return [
        tx.tx_validation_code
        for tx in responses[0].filtered_block.filtered_transactions
    ]


async def _get(address: str, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(f"http://{address}{path}") as response,
    ):
        return response.status, await response.text()


async def _medledger(*arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()
