"""Unit tests for network.generate: one self-contained folder per node for multi-host use.

Method: `generate` runs once on a small consortium (two hospitals with a peer and a
gateway, an etcd-ordered channel, the asset chaincode); the tests load every node's
config with the node's own loader, check that no path leaves the node's folder, move
a folder elsewhere and load it again, and read the READMEs and the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_gateway_config
from network.generate import GeneratedNode, generate
from orderer.config import load_orderer_config
from peer.config import load_peer_config
from peer.lifecycle.package import package_id, parse_package

ASSET = Path(__file__).parents[3] / "chaincode" / "contracts" / "asset"
PEER_A = "peer0.hospital-a.example.com"
ORDERER = "orderer0.commission.example.com"

SPEC = f"""
consortium: generated
organizations:
  - name: Hospital A
    mspid: HospitalAMSP
    domain: hospital-a.example.com
    peers: [{{name: peer0, host: 10.0.0.11, port: 7051}}]
    gateways: [{{name: gateway0, host: 10.0.0.11, port: 7060}}]
    users: [{{name: Admin, admin: true}}]
  - name: Hospital B
    mspid: HospitalBMSP
    domain: hospital-b.example.com
    peers: [{{name: peer0, host: 10.0.0.12, port: 7051}}]
    users: [{{name: Admin, admin: true}}]
  - name: Health Commission
    mspid: HealthCommissionMSP
    domain: commission.example.com
    orderers: [{{name: orderer0, host: 10.0.0.10, port: 7050}}]
    users: [{{name: Admin, admin: true}}]
orderers:
  etcd:
    members: [{{name: etcd0, host: 10.0.0.10, client_port: 2379, peer_port: 2380}}]
channels:
  - name: records
    members: [HospitalAMSP, HospitalBMSP]
    orderer: {{type: etcd, organizations: [HealthCommissionMSP]}}
chaincodes:
  - name: asset
    path: {ASSET}
"""


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[GeneratedNode]]:
    folder = tmp_path_factory.mktemp("generate")
    spec = folder / "consortium.yaml"
    spec.write_text(SPEC)
    lines: list[str] = []
    nodes = generate(spec, folder / "out", progress=lines.append)
    assert lines[-1].startswith("read ")
    return folder / "out", nodes


def test_one_folder_per_node_in_start_order(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, nodes = generated

    assert [(node.name, node.command) for node in nodes] == [
        ("etcd0", "./start.sh"),
        (ORDERER, "medledger orderer start -c orderer.yaml"),
        (PEER_A, "medledger peer start -c peer.yaml"),
        ("peer0.hospital-b.example.com", "medledger peer start -c peer.yaml"),
        ("gateway0.hospital-a.example.com", "medledger gateway start -c gateway.yaml"),
    ]
    for node in nodes:
        readme = (out / node.name / "README.txt").read_text()
        assert node.command in readme


def test_configs_load_and_stay_inside_their_folder(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated
    loaders: dict[str, tuple[Any, str]] = {
        ORDERER: (load_orderer_config, "orderer.yaml"),
        PEER_A: (load_peer_config, "peer.yaml"),
        "gateway0.hospital-a.example.com": (load_gateway_config, "gateway.yaml"),
    }
    for name, (loader, file) in loaders.items():
        path = out / name / file
        text = path.read_text()
        assert str(out) not in text, name
        assert ".." not in text, name
        config: Any = loader(path)
        assert config.msp_dir.is_dir()
        assert config.tls is not None
        assert config.tls.cert is not None
        assert config.tls.cert.is_file()
        assert all(root.is_file() for root in config.tls.root_cas)


def test_a_moved_folder_still_loads(
    generated: tuple[Path, list[GeneratedNode]], tmp_path: Path
) -> None:
    out, _ = generated
    moved = tmp_path / "elsewhere"
    shutil.copytree(out / PEER_A, moved)

    config = load_peer_config(moved / "peer.yaml")

    assert config.msp_dir == moved / "msp"
    assert (config.msp_dir / "keystore" / "priv_sk").is_file()
    assert config.listen == "10.0.0.11:7051"
    assert (moved / "channels" / "records.block").is_file()


def test_orderer_uses_etcd_over_tls(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated

    config = load_orderer_config(out / ORDERER / "orderer.yaml")

    assert config.backend.type == "etcd"
    assert config.backend.etcd is not None
    assert config.backend.etcd.endpoints == ("10.0.0.10:2379",)
    assert config.backend.etcd.tls is not None
    assert all(path.is_file() for path in config.backend.etcd.tls.root_cas)
    assert config.admin.listen == "10.0.0.10:7053"


def test_etcd_member_script_uses_its_folder(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated
    script = (out / "etcd0" / "start.sh").read_text()

    assert script.startswith('#!/bin/sh\ncd "$(dirname "$0")"\nexec etcd --name=etcd0')
    assert "--listen-client-urls=https://10.0.0.10:2379" in script
    assert (out / "etcd0" / "tls" / "server.crt").is_file()
    assert (out / "etcd0" / "tlsca" / "etcd-clients.pem").is_file()


def test_peer_readme_says_how_to_join(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated
    readme = (out / PEER_A / "README.txt").read_text()

    assert "medledger channel join -b channels/records.block --peer 10.0.0.11:7051" in (
        readme
    )
    orderer_readme = (out / ORDERER / "README.txt").read_text()
    assert "https://10.0.0.10:7053/participation/v1/channels" in orderer_readme


def test_chaincode_package_and_lifecycle_commands(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated
    data = (out / "chaincode" / "asset.tar.gz").read_bytes()
    identifier = package_id("asset_1.0", data)
    readme = (out / "README.txt").read_text()

    assert parse_package(data).metadata.type == "python"
    assert readme.count("medledger chaincode install") == 2
    assert readme.count("medledger chaincode approve -C records -n asset -v 1.0") == 2
    assert f"--package-id {identifier}" in readme
    assert "medledger chaincode commit -C records" in readme
    gateway = yaml.safe_load(
        (out / "gateway0.hospital-a.example.com" / "gateway.yaml").read_text()
    )
    assert [peer["address"] for peer in gateway["peers"]] == [
        "10.0.0.11:7051",
        "10.0.0.12:7051",
    ]


def test_generating_again_keeps_the_material(
    generated: tuple[Path, list[GeneratedNode]],
) -> None:
    out, _ = generated
    key = out / PEER_A / "msp" / "keystore" / "priv_sk"
    before = key.read_bytes()

    generate(out.parent / "consortium.yaml", out, progress=lambda _line: None)

    assert key.read_bytes() == before
