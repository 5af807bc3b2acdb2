"""`medledger chaincode ...` against in-process peers, and a chaincode-as-a-service package.

Method: the two-hospital network of `lifecycle_fixtures`; the console command runs in a
worker thread (it starts its own event loop) with each hospital's Admin MSP folder,
and its output is read from stdout/stderr. The CCaaS test packages a connection.json
pointing at a port chosen beforehand, starts the asset contract there as a server
registered under the resulting package id, and lets the peers dial it once the
definition is committed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap

import pytest

from network.lifecycle_client import Definition
from network.ports import free_ports
from peer.lifecycle.package import build_package, package_id
from tests.integration.peer import lifecycle_fixtures
from tests.integration.peer.lifecycle_fixtures import (
    CONTRACT,
    Network,
    approve_both,
    commit_both,
    evaluate,
    install_on_both,
    invoke,
    medledger,
)
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    TIMEOUT_S,
)

material = lifecycle_fixtures.material
network = lifecycle_fixtures.network


def admin_flags(network: Network, mspid: str, peer: str) -> list[str]:
    msp_dir = network.material.orderer.user(mspid, "Admin").msp_dir
    return ["--peer", peer, "--identity", str(msp_dir), "--mspid", mspid]


async def test_the_console_commands_take_a_chaincode_from_folder_to_committed(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    """package, install, approve, checkcommitreadiness, commit, query* as an admin would."""
    folder = network.folder / "code" / "records"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(CONTRACT).format(version="1.0"))
    package_file = network.folder / "records.tar.gz"
    status, out, _ = await medledger(
        capsys,
        *("chaincode", "package", "--label", "records_1.0", "--lang", "python"),
        *("--path", str(folder), "-o", str(package_file)),
    )
    expected_id = package_id("records_1.0", package_file.read_bytes())
    assert (status, out) == (0, f"Package ID: {expected_id}\n")

    peers = {HOSPITAL_A: network.peer_a.address, HOSPITAL_B: network.peer_b.address}
    for mspid, address in peers.items():
        status, out, err = await medledger(
            capsys,
            *("chaincode", "install", str(package_file)),
            *admin_flags(network, mspid, address),
        )
        assert (status, out) == (
            0,
            f"Chaincode code package identifier: {expected_id}\n",
        ), err
    status, out, _ = await medledger(
        capsys,
        *("chaincode", "queryinstalled", "-O", "json"),
        *admin_flags(network, HOSPITAL_B, peers[HOSPITAL_B]),
    )
    assert json.loads(out)["installed_chaincodes"][0]["package_id"] == expected_id

    definition = ["-C", CHANNEL, "-n", "records", "-v", "1.0", "--sequence", "1"]
    orderer = ["--orderer", network.orderer.address]
    for mspid, address in peers.items():
        status, out, err = await medledger(
            capsys,
            *("chaincode", "approve", *definition, "--package-id", expected_id),
            *admin_flags(network, mspid, address),
            *orderer,
        )
        assert status == 0, err
        assert out.endswith("committed with status (VALID)\n")
    await network.synced()
    status, out, _ = await medledger(
        capsys,
        *("chaincode", "checkcommitreadiness", *definition, "-O", "json"),
        *admin_flags(network, HOSPITAL_A, peers[HOSPITAL_A]),
    )
    assert json.loads(out) == {
        "approvals": {HOSPITAL_A: True, HOSPITAL_B: True, "HospitalCMSP": False}
    }

    status, out, err = await medledger(
        capsys,
        *("chaincode", "commit", *definition),
        *admin_flags(network, HOSPITAL_A, peers[HOSPITAL_A]),
        *("--peer", peers[HOSPITAL_B]),
        *orderer,
    )
    assert status == 0, err
    await network.synced()
    status, out, _ = await medledger(
        capsys,
        *("chaincode", "querycommitted", "-C", CHANNEL, "-n", "records"),
        *admin_flags(network, HOSPITAL_B, peers[HOSPITAL_B]),
    )
    assert out == (
        f"Committed chaincode definition for chaincode 'records' on channel '{CHANNEL}':\n"
        "Version: 1.0, Sequence: 1, Endorsement Plugin: escc, Validation Plugin: vscc, "
        "Approvals: [HospitalAMSP: true, HospitalBMSP: true, HospitalCMSP: false]\n"
    )
    status, out, _ = await medledger(
        capsys,
        *("chaincode", "queryapproved", "-C", CHANNEL, "-n", "records"),
        *admin_flags(network, HOSPITAL_A, peers[HOSPITAL_A]),
    )
    assert f"package-id: {expected_id}" in out
    assert await evaluate(network.peer_a, network, ["Version"]) == "1.0"

    status, _, err = await medledger(
        capsys,
        *("chaincode", "approve", "-C", CHANNEL, "-n", "records", "-v", "1.0"),
        *("--sequence", "5"),
        *admin_flags(network, HOSPITAL_A, peers[HOSPITAL_A]),
        *orderer,
    )
    assert status == 1
    assert (
        "requested sequence 5 is larger than the next available sequence number 2"
        in err
    )


async def test_a_ccaas_package_is_dialled_at_its_connection_address(
    network: Network,
) -> None:
    """The peers dial the server named in connection.json once the definition commits."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    folder = network.folder / "asset-service"
    folder.mkdir()
    (folder / "connection.json").write_text(
        json.dumps({"address": address, "dial_timeout": "10s", "tls_required": False})
    )
    package, _ = build_package(label="asset_ccaas", kind="ccaas", source=folder)
    serving = package_id("asset_ccaas", package)
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "chaincode", "serve"),
        *("--module", "chaincode.contracts.asset", "--listen", address),
        *("--chaincode-id", serving),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            assert (await server.stdout.readline()).startswith(b"READY ")
        assert await install_on_both(network, package) == serving
        definition = Definition(name="asset", version="1.0", sequence=1)
        await approve_both(network, definition, serving)
        await commit_both(network, definition)
        await invoke(
            network,
            ["CreateAsset", "scan-7", "grey", "3", "radiology", "120"],
            chaincode="asset",
        )
        found = await evaluate(
            network.peer_b, network, ["ReadAsset", "scan-7"], chaincode="asset"
        )
        assert json.loads(found)["Owner"] == "radiology"
    finally:
        server.terminate()
        await server.wait()
