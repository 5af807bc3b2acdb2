"""The official Node chaincode (fabric-contract-api / fabric-shim 2.5.8) on our peer.

Both modes: the peer launches `fabric-chaincode-node start`, which dials our
`protos.ChaincodeSupport/Register`; and `fabric-chaincode-node server` runs as a
service that our peer dials (`protos.Chaincode/Connect`). The same scenario runs
in each: put/get/delete, ranges with batches and pages, composite keys,
history, events, client identity, thrown errors and GetMetadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chaincode.testing import Event, make_identity
from network.ports import free_ports
from peer.chaincode.execute import ChaincodeInfo
from peer.chaincode.launcher import node_launch_spec
from peer.chaincode.support import ChaincodeService, ServiceEndpoint
from tests.conftest import skip_or_fail
from tests.integration.peer.chaincode_fixtures import LedgerPeer, Pki
from tests.unit.chaincode.scenarios import ok

pytestmark = pytest.mark.interop

CHAINCODE_DIR = Path(__file__).parent / "chaincode-node"
PACKAGE = "asset_1.0:5d1f0c9e"
NPM_CI_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def chaincode_node() -> Path:
    """The Node asset contract with its node_modules installed (`npm ci` on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_or_fail(
            "node and npm are needed for the Node chaincode tests (apt nodejs npm)"
        )
    if not (CHAINCODE_DIR / "node_modules" / "fabric-shim").is_dir():
        install = subprocess.run(
            ["npm", "ci", "--no-fund", "--no-audit"],
            cwd=CHAINCODE_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=False,
        )
        if install.returncode != 0:
            skip_or_fail(
                f"npm ci failed in {CHAINCODE_DIR}: {install.stderr.strip()[-500:]}"
            )
    return CHAINCODE_DIR


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[LedgerPeer]:
    side = await LedgerPeer(
        tmp_path / "ledger.sqlite", {"asset": ChaincodeInfo(PACKAGE, "1.0")}
    ).start()
    try:
        yield side
    finally:
        await side.stop()


@contextlib.asynccontextmanager
async def chaincode_server(folder: Path, address: str) -> AsyncIterator[None]:
    """`fabric-chaincode-node server` listening on `address` until the block ends."""
    process = await asyncio.create_subprocess_exec(
        str(folder / "node_modules" / ".bin" / "fabric-chaincode-node"),
        "server",
        "--chaincode-address",
        address,
        "--chaincode-id",
        PACKAGE,
        "--module-path",
        str(folder),
        cwd=folder,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={"CORE_PEER_LOCALMSPID": "Org1MSP", "PATH": "/usr/bin:/bin"},
    )
    try:
        yield
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def asset_scenario(peer: LedgerPeer) -> None:
    created = ok(await peer.submit("CreateAsset", "a1", "blue", "alice"))
    assert created.json() == {"id": "a1", "color": "blue", "owner": "alice"}
    assert created.event == Event("AssetCreated", b"a1")
    ok(await peer.submit("CreateAsset", "a2", "red", "alice"))
    ok(await peer.submit("AssetContract:CreateAsset", "a3", "green", "bob"))
    assert ok(await peer.evaluate("ReadAsset", "a3")).json() == {
        "id": "a3",
        "color": "green",
        "owner": "bob",
    }
    duplicate = await peer.submit("CreateAsset", "a1", "blue", "alice")
    assert (duplicate.status, duplicate.message) == (500, "asset a1 already exists")

    # Ranges: simple keys only (the shim starts "" ranges after the composite keys),
    # then pages with bookmarks, then a partial composite key.
    assert ok(await peer.evaluate("AssetsInRange", "", "")).json() == ["a1", "a2", "a3"]
    first = ok(await peer.evaluate("AssetsPage", "", "", "2", "")).json()
    assert first == {"keys": ["a1", "a2"], "fetched": 2, "bookmark": "a3"}
    rest = ok(await peer.evaluate("AssetsPage", "", "", "2", "a3")).json()
    assert rest == {"keys": ["a3"], "fetched": 1, "bookmark": ""}
    assert ok(await peer.evaluate("AssetsOfOwner", "alice")).json() == ["a1", "a2"]

    # More than one batch of 100 results: QUERY_STATE_NEXT.
    ok(await peer.submit("Fill", "bulk", "230"))
    bulk = ok(await peer.evaluate("AssetsInRange", "bulk", "bulk9")).json()
    assert bulk == [f"bulk{i:04d}" for i in range(230)]

    # Delete and history (newest first).
    ok(await peer.submit("DeleteAsset", "a2"))
    missing = await peer.evaluate("ReadAsset", "a2")
    assert (missing.status, missing.message) == (500, "asset a2 does not exist")
    history = ok(await peer.evaluate("AssetHistory", "a2")).json()
    assert isinstance(history, list)
    assert [(h["isDelete"], h["hasTimestamp"]) for h in history] == [
        (True, True),
        (False, True),
    ]
    assert json.loads(history[1]["value"])["color"] == "red"

    # Who called, thrown errors, unknown functions, metadata.
    doctor = make_identity("Org2MSP", "Dr Lee")
    who = ok(await peer.evaluate("WhoAmI", creator=doctor)).json()
    assert isinstance(who, dict)
    assert who["mspid"] == "Org2MSP"
    assert who["id"].startswith("x509::")
    assert "CN=Dr Lee" in who["id"]
    assert who["channel"] == "medical"
    failed = await peer.submit("Fail", "no endorsement for you")
    assert (failed.status, failed.message) == (500, "no endorsement for you")
    unknown = await peer.evaluate("NoSuchTransaction")
    assert unknown.status == 500
    metadata = ok(await peer.evaluate("org.hyperledger.fabric:GetMetadata")).json()
    assert isinstance(metadata, dict)
    assert "AssetContract" in metadata["contracts"]


async def test_launched_node_chaincode(peer: LedgerPeer, chaincode_node: Path) -> None:
    """Classic mode: the peer launches the chaincode, which dials Register."""
    status = peer.launcher.launch(
        node_launch_spec(PACKAGE, peer.address, chaincode_node, msp_id="Org1MSP")
    )
    await asset_scenario(peer)
    assert status.starts == 1


async def test_node_chaincode_as_a_service(
    peer: LedgerPeer, chaincode_node: Path
) -> None:
    """CCaaS: the chaincode listens and the peer dials Connect."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    async with chaincode_server(chaincode_node, address):
        service = ChaincodeService(
            PACKAGE,
            ServiceEndpoint(address, dial_timeout_s=1.0),
            peer.registry,
            invoker=peer.executor,
            backoff_initial_s=0.05,
            backoff_max_s=0.5,
        )
        service.start()
        try:
            await asset_scenario(peer)
        finally:
            await service.stop()


async def test_launched_node_chaincode_over_mutual_tls(
    chaincode_node: Path, tmp_path: Path
) -> None:
    """The Node shim dials our TLS Register service with its client certificate."""
    pki = Pki.create()
    chaincodes = {"asset": ChaincodeInfo(PACKAGE, "1.0")}
    peer = await LedgerPeer(tmp_path / "ledger.sqlite", chaincodes).start(
        tls=pki.server_credentials()
    )
    try:
        files = pki.client_files(tmp_path / "tls", base64_client=True)
        peer.launcher.launch(
            node_launch_spec(
                PACKAGE, peer.address, chaincode_node, msp_id="Org1MSP", tls=files
            )
        )
        created = ok(await peer.submit("CreateAsset", "t1", "teal", "tess"))
        assert created.event == Event("AssetCreated", b"t1")
        assert ok(await peer.evaluate("ReadAsset", "t1")).json() == {
            "id": "t1",
            "color": "teal",
            "owner": "tess",
        }
    finally:
        await peer.stop()
