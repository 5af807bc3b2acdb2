"""How the peer starts an installed package: launch specs per type, and ccaas endpoints.

Method: real packages in a real `PackageStore`; a recording launcher stands in for
`ChaincodeLauncher` so no process starts; a ccaas package is dialled with a real
`ChaincodeService` at an address nothing listens on, then stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.tls import TlsFiles
from peer.chaincode.launcher import LaunchSpec, ProcessStatus
from peer.chaincode.registry import ChaincodeRegistry
from peer.config import ChaincodeSettings, PeerConfig
from peer.errors import ChaincodeError
from peer.lifecycle.package import build_package
from peer.lifecycle.runtime import InstalledChaincodes
from peer.lifecycle.store import PackageStore


class RecordingLauncher:
    def __init__(self) -> None:
        self.specs: list[LaunchSpec] = []

    def status(self, package_id: str) -> ProcessStatus | None:
        found = [spec for spec in self.specs if spec.package_id == package_id]
        return ProcessStatus(found[0]) if found else None

    def launch(self, spec: LaunchSpec) -> ProcessStatus:
        self.specs.append(spec)
        return ProcessStatus(spec)


def peer_config(tmp_path: Path, *, tls: TlsFiles | None = None) -> PeerConfig:
    return PeerConfig(
        source=tmp_path / "peer.yaml",
        name="peer0.hospital-a.example.com",
        mspid="HospitalAMSP",
        msp_dir=tmp_path / "msp",
        listen="127.0.0.1:0",
        tls=tls,
        storage=tmp_path,
        chaincodes=ChaincodeSettings(),
    )


class NoChannels:
    def get(self, channel_id: str) -> None:
        return None

    def all(self) -> list[Any]:
        return []


def runtime(
    tmp_path: Path, launcher: RecordingLauncher, *, tls: TlsFiles | None = None
) -> InstalledChaincodes:
    return InstalledChaincodes(
        store=PackageStore(tmp_path / "lifecycle"),
        config=peer_config(tmp_path, tls=tls),
        channels=NoChannels(),
        launcher=launcher,  # type: ignore[arg-type]
        registry=ChaincodeRegistry(),
    )


def install(installed: InstalledChaincodes, tmp_path: Path, kind: str) -> Any:
    folder = tmp_path / f"{kind}-src"
    folder.mkdir()
    if kind == "python":
        folder = folder / "records"
        folder.mkdir()
        (folder / "__init__.py").write_text("contracts = []\n")
    elif kind == "node":
        (folder / "package.json").write_text('{"name": "records"}')
    else:
        (folder / "connection.json").write_text(
            json.dumps({"address": "127.0.0.1:9", "dial_timeout": "250ms"})
        )
    data, _ = build_package(label=f"records_{kind}", kind=kind, source=folder)
    return installed.store.install(data)


def test_a_python_package_is_served_from_its_unpacked_source(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    installed = runtime(tmp_path, launcher)
    package = install(installed, tmp_path, "python")
    with pytest.raises(ChaincodeError, match="listener is not ready"):
        installed.ensure_running(package)
    installed.bind(peer_address="127.0.0.1:7052", invoker=None)  # type: ignore[arg-type]
    installed.ensure_running(package)
    installed.ensure_running(package)
    [spec] = launcher.specs
    assert spec.argv[1:] == (
        "-m",
        "chaincode",
        "serve",
        "--module",
        "records",
        "--peer-address",
        "127.0.0.1:7052",
        "--chaincode-id",
        package.package_id,
    )
    assert spec.cwd == str(installed.store.code_dir(package.package_id) / "src")
    assert spec.env["CORE_PEER_LOCALMSPID"] == "HospitalAMSP"
    assert spec.env["CORE_PEER_TLS_ENABLED"] == "false"


def test_a_node_package_runs_the_node_shim_with_tls_settings(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    ca = tmp_path / "tls-ca.pem"
    tls = TlsFiles(cert=tmp_path / "c", key=tmp_path / "k", root_cas=(ca,))
    installed = runtime(tmp_path, launcher, tls=tls)
    installed.bind(peer_address="peer0:7052", invoker=None)  # type: ignore[arg-type]
    package = install(installed, tmp_path, "node")
    installed.ensure_running(package)
    [spec] = launcher.specs
    source = str(installed.store.code_dir(package.package_id) / "src")
    assert spec.argv[-7:] == (
        "start",
        "--peer.address",
        "peer0:7052",
        "--chaincode-id-name",
        package.package_id,
        "--module-path",
        source,
    )
    assert spec.cwd == source
    assert spec.env["CORE_PEER_TLS_ENABLED"] == "true"
    assert spec.env["CORE_PEER_TLS_ROOTCERT_FILE"] == str(ca)


async def test_a_ccaas_package_is_dialled_not_launched(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    installed = runtime(tmp_path, launcher)
    installed.bind(peer_address="127.0.0.1:7052", invoker=None)  # type: ignore[arg-type]
    package = install(installed, tmp_path, "ccaas")
    installed.ensure_running(package)
    installed.ensure_running(package)
    assert launcher.specs == []
    try:
        assert installed._services[package.package_id].endpoint.address == "127.0.0.1:9"
        assert installed._services[package.package_id].endpoint.dial_timeout_s == 0.25
    finally:
        await installed.stop()
    assert installed._services == {}
