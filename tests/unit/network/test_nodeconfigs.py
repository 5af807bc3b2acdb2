"""Unit tests for network.nodeconfigs: per-node YAML that the nodes' own loaders accept.

Method: documents for the hospital example's nodes, built from the crypto generator's
layout (paths only, nothing generated), are written to a folder and read back with
`load_orderer_config`, `load_peer_config` and `load_gateway_config`; the tests check
where each path points, and that TLS is on unless the spec turns it off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_gateway_config
from network.cryptogen import CryptoLayout, crypto_layout
from network.nodeconfigs import (
    ChaincodePackageEntry,
    EtcdClientTls,
    gateway_document,
    node_material,
    orderer_document,
    peer_document,
    write_config,
)
from network.spec import ConsortiumSpec, load_spec
from network.spec_network import EtcdSpec
from orderer.config import load_orderer_config
from peer.config import load_peer_config
from tests.unit.example_channel import EXAMPLE

HOSPITAL_A = "HospitalAMSP"
COMMISSION = "HealthCommissionMSP"


@pytest.fixture(scope="module")
def spec() -> ConsortiumSpec:
    return load_spec(EXAMPLE)


@pytest.fixture
def crypto(spec: ConsortiumSpec, tmp_path: Path) -> CryptoLayout:
    return crypto_layout(spec, tmp_path / "crypto")


def write(folder: Path, name: str, document: dict[str, Any]) -> Path:
    return write_config(folder / name, document, kind=name.split(".")[0], source="x")


def orderer_config(
    spec: ConsortiumSpec, crypto: CryptoLayout, folder: Path, **options: Any
) -> Path:
    organization = spec.organization(COMMISSION)
    orderer = organization.orderers[0]
    material = node_material(
        crypto, COMMISSION, crypto.organization(COMMISSION).orderer("orderer0")
    )
    options.setdefault("tls", True)
    document = orderer_document(
        orderer, material, folder=folder, storage=folder / "data", **options
    )
    return write(folder, "orderer.yaml", document)


def test_orderer_config_loads_with_tls_and_paths_to_its_material(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    folder = tmp_path / "nodes" / "orderer0"
    layout = crypto.organization(COMMISSION).orderer("orderer0")

    config = load_orderer_config(orderer_config(spec, crypto, folder))

    assert config.name == "orderer0.commission.example.com"
    assert config.listen == "127.0.0.1:7050"
    assert config.admin.listen == "127.0.0.1:7053"
    assert config.msp_dir.resolve() == layout.msp_dir.resolve()
    assert config.tls is not None
    assert config.tls.cert is not None
    assert config.tls.cert.resolve() == layout.tls_cert.resolve()
    assert not config.tls.mutual
    assert {path.resolve() for path in config.tls.root_cas} == {
        org.tlsca_cert.resolve() for org in crypto.organizations
    }
    assert config.storage.resolve() == (folder / "data").resolve()
    assert config.backend.type == "solo"


def test_orderer_admin_api_requires_its_organisations_client_certificates(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    config = load_orderer_config(orderer_config(spec, crypto, tmp_path))

    assert config.admin.tls is not None
    assert config.admin.tls.mutual
    assert [path.resolve() for path in config.admin.tls.root_cas] == [
        crypto.organization(COMMISSION).tlsca_cert.resolve()
    ]


def test_paths_are_relative_so_the_folder_can_move(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    path = orderer_config(spec, crypto, tmp_path / "a" / "node")
    text = path.read_text()

    assert str(tmp_path) not in text
    assert "dir: ../../crypto/organizations/commission.example.com/orderers/" in text


def test_etcd_backend_lists_the_members_and_trusts_the_etcd_ca(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    ca = tmp_path / "etcd-ca.pem"

    config = load_orderer_config(
        orderer_config(
            spec, crypto, tmp_path, etcd=EtcdSpec(), etcd_tls=EtcdClientTls(ca_cert=ca)
        )
    )

    etcd = config.backend.etcd
    assert config.backend.type == "etcd"
    assert etcd is not None
    assert etcd.endpoints == ("127.0.0.1:2379",)
    assert etcd.prefix == "/medledger"
    assert etcd.tls is not None
    assert [path.resolve() for path in etcd.tls.root_cas] == [ca.resolve()]


def test_tls_off_means_plaintext_everywhere(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    config = load_orderer_config(orderer_config(spec, crypto, tmp_path, tls=False))

    assert config.tls is None
    assert config.admin.tls is None


def test_peer_config_trusts_every_tls_ca_and_hands_chaincode_its_own(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    organization = spec.organization(HOSPITAL_A)
    layout = crypto.organization(HOSPITAL_A)
    material = node_material(crypto, HOSPITAL_A, layout.peer("peer0"))
    document = peer_document(
        organization.peers[0],
        material,
        folder=tmp_path,
        storage=tmp_path / "data",
        tls=True,
    )

    config = load_peer_config(write(tmp_path, "peer.yaml", document))

    assert config.name == "peer0.hospital-a.example.com"
    assert config.listen == "127.0.0.1:7051"
    assert config.mspid == HOSPITAL_A
    assert config.tls is not None
    assert len(config.tls.root_cas) == len(crypto.organizations)
    assert config.chaincodes.peer_tls_ca is not None
    assert config.chaincodes.peer_tls_ca.resolve() == layout.tlsca_cert.resolve()
    assert dict(config.chaincodes.packages) == {}


def test_peer_chaincode_packages_launched_or_dialled(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    organization = spec.organization(HOSPITAL_A)
    material = node_material(
        crypto, HOSPITAL_A, crypto.organization(HOSPITAL_A).peer("peer0")
    )
    packages = [
        ChaincodePackageEntry(
            name="asset", package_id="asset_1:ab", launch=("python", "-m", "x")
        ),
        ChaincodePackageEntry(
            name="svc",
            package_id="svc_1:cd",
            address="127.0.0.1:9999",
            tls_root_cert=tmp_path / "ca.pem",
        ),
    ]
    document = peer_document(
        organization.peers[0],
        material,
        folder=tmp_path,
        storage=tmp_path / "data",
        tls=True,
        packages=packages,
    )

    loaded = load_peer_config(write(tmp_path, "peer.yaml", document)).chaincodes
    assert loaded.packages["asset"].launch == ("python", "-m", "x")
    assert loaded.packages["svc"].address == "127.0.0.1:9999"
    tls = loaded.packages["svc"].tls
    assert tls is not None
    assert tls.root_cert.resolve() == (tmp_path / "ca.pem").resolve()


def test_gateway_signs_and_presents_tls_as_its_peer(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    organization = spec.organization(HOSPITAL_A)
    layout = crypto.organization(HOSPITAL_A).peer("peer0")
    document = gateway_document(
        spec,
        organization,
        organization.gateways[0],
        node_material(crypto, HOSPITAL_A, layout),
        folder=tmp_path,
        tls=True,
        channels=["medical-records"],
        peer_organizations=[HOSPITAL_A, "HospitalBMSP"],
    )

    config = load_gateway_config(write(tmp_path, "gateway.yaml", document))

    assert config.name == "gateway0.hospital-a.example.com"
    assert config.listen == "127.0.0.1:7060"
    assert config.msp_dir.resolve() == layout.msp_dir.resolve()
    assert config.tls is not None
    assert config.tls.cert is not None
    assert config.tls.cert.resolve() == layout.tls_cert.resolve()
    assert config.channels == ("medical-records",)
    assert [(p.address, p.mspid) for p in config.peers] == [
        ("127.0.0.1:7051", HOSPITAL_A),
        ("127.0.0.1:8051", "HospitalBMSP"),
    ]
    hospital_b_ca = crypto.organization("HospitalBMSP").tlsca_cert.resolve()
    assert config.peers[1].tls is not None
    assert [p.resolve() for p in config.peers[1].tls.root_cas] == [hospital_b_ca]


def test_gateway_without_tls_dials_peers_in_plaintext(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    organization = spec.organization(HOSPITAL_A)
    document = gateway_document(
        spec,
        organization,
        organization.gateways[0],
        node_material(
            crypto, HOSPITAL_A, crypto.organization(HOSPITAL_A).peer("peer0")
        ),
        folder=tmp_path,
        tls=False,
        channels=["medical-records"],
        peer_organizations=[HOSPITAL_A],
    )

    config = load_gateway_config(write(tmp_path, "gateway.yaml", document))

    assert config.tls is None
    assert [peer.tls for peer in config.peers] == [None]


def test_written_config_says_how_to_start_the_node(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "peer.yaml", {"name": "p"}, kind="peer", source="hospitals.yaml"
    )

    assert path.read_text().splitlines()[:3] == [
        "# Written by medledger from the consortium spec hospitals.yaml.",
        "# Start this node with: medledger peer start -c peer.yaml",
        "name: p",
    ]


def test_orderer_admin_port_comes_from_the_spec(
    spec: ConsortiumSpec, crypto: CryptoLayout, tmp_path: Path
) -> None:
    orderer = dataclasses.replace(
        spec.organization(COMMISSION).orderers[0], admin_port=9443
    )
    material = node_material(
        crypto, COMMISSION, crypto.organization(COMMISSION).orderer("orderer0")
    )
    document = orderer_document(
        orderer, material, folder=tmp_path, storage=tmp_path / "data", tls=True
    )

    assert document["admin"]["listen"] == "127.0.0.1:9443"
