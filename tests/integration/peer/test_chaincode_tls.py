"""Chaincode streams over mutual TLS, both modes, with our Python chaincode SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chaincode import ChaincodeServer, ContractChaincode, ServerTls
from peer.chaincode.execute import ChaincodeInfo
from peer.chaincode.launcher import python_launch_spec
from peer.chaincode.support import ChaincodeService, ServiceEndpoint
from tests.integration.peer.chaincode_fixtures import LedgerPeer, Pki
from tests.unit.chaincode.scenario_contract import ScenarioContract
from tests.unit.chaincode.scenarios import put_get_delete

ROOT = str(Path(__file__).resolve().parents[3])
PACKAGE = "scenario_1:cc"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


@pytest.fixture
async def peer(tmp_path: Path, pki: Pki) -> AsyncIterator[LedgerPeer]:
    chaincodes = {"scenario": ChaincodeInfo(PACKAGE, "1")}
    side = await LedgerPeer(tmp_path / "ledger.sqlite", chaincodes).start(
        tls=pki.server_credentials()
    )
    try:
        yield side
    finally:
        await side.stop()


async def test_launched_chaincode_dials_over_mutual_tls(
    peer: LedgerPeer, pki: Pki, tmp_path: Path
) -> None:
    files = pki.client_files(tmp_path / "tls", base64_client=False)
    spec = python_launch_spec(
        PACKAGE,
        peer.address,
        ["tests.unit.chaincode.scenario_contract:ScenarioContract"],
        cwd=ROOT,
        tls=files,
    )
    peer.launcher.launch(spec)
    await put_get_delete(peer)


async def test_peer_dials_a_chaincode_server_over_mutual_tls(
    peer: LedgerPeer, pki: Pki
) -> None:
    server = ChaincodeServer(
        ContractChaincode([ScenarioContract()]),
        chaincode_id=PACKAGE,
        address="127.0.0.1:0",
        tls=ServerTls(pki.server_cert, pki.server_key, client_root_certificate=pki.ca),
    )
    address = await server.start()
    endpoint = ServiceEndpoint(
        address,
        root_cert=pki.ca,
        client_key=pki.client_key,
        client_cert=pki.client_cert,
    )
    service = ChaincodeService(PACKAGE, endpoint, peer.registry, invoker=peer.executor)
    service.start()
    try:
        await put_get_delete(peer)
    finally:
        await service.stop()
        await server.stop(0)
