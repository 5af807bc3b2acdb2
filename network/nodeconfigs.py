"""Per-node configuration files (orderer.yaml, peer.yaml, gateway.yaml) from the spec.

Each builder returns the document of one node as a dict (written as YAML by
`write_config`) from the spec, the node's `NodeMaterial` (where its MSP and TLS files
are) and a few decisions made by the caller (backend, chaincode packages). Every path
in a document is relative to the folder the file is written to, so a folder holding a
config and its material can be moved or copied to another host as a whole.

TLS is on unless the spec says ``tls: false``: every gRPC listener serves TLS with the
node's certificate and trusts the TLS CAs of every organisation for client
certificates (mutual TLS stays off); an orderer's participation API requires a client
certificate of its own organisation's TLS CA, as osnadmin presents; orderers reach
etcd with their TLS pair. A gateway signs and presents TLS as the peer it runs with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from network.cryptogen import CryptoLayout, IdentityLayout
from network.spec import ConsortiumSpec, GatewaySpec, NodeSpec, OrganizationSpec
from network.spec_network import EtcdSpec, admin_port

__all__ = [
    "CONFIG_FILES",
    "ChaincodePackageEntry",
    "EtcdClientTls",
    "NodeMaterial",
    "gateway_document",
    "node_material",
    "orderer_document",
    "peer_document",
    "write_config",
]

CONFIG_FILES = {
    "orderer": "orderer.yaml",
    "peer": "peer.yaml",
    "gateway": "gateway.yaml",
}
"""The file name of each kind of node's configuration."""

_HEADER = (
    "# Written by medledger from the consortium spec {source}.\n"
    "# Start this node with: medledger {kind} start -c {file}\n"
)


@dataclass(frozen=True, kw_only=True)
class NodeMaterial:
    """Where one node's identity and trust material is (absolute paths).

    `tls_cas` maps every organisation's MSP id to its TLS CA certificate.
    """

    mspid: str
    msp_dir: Path
    tls_cert: Path
    tls_key: Path
    tls_cas: Mapping[str, Path]


@dataclass(frozen=True, kw_only=True)
class ChaincodePackageEntry:
    """How a peer runs one chaincode: a launch command, or a server address to dial."""

    name: str
    package_id: str
    launch: tuple[str, ...] = ()
    address: str | None = None
    tls_root_cert: Path | None = None


@dataclass(frozen=True, kw_only=True)
class EtcdClientTls:
    """The CA an orderer trusts for etcd's certificates (its own pair is its TLS pair)."""

    ca_cert: Path


@dataclass(frozen=True, kw_only=True)
class _Relative:
    """Renders paths relative to the folder a config is written to."""

    folder: Path

    def __call__(self, path: Path) -> str:
        return os.path.relpath(path, self.folder)


def node_material(
    crypto: CryptoLayout, mspid: str, identity: IdentityLayout
) -> NodeMaterial:
    """A node's material in the crypto generator's layout."""
    return NodeMaterial(
        mspid=mspid,
        msp_dir=identity.msp_dir,
        tls_cert=identity.tls_cert,
        tls_key=identity.tls_key,
        tls_cas={org.mspid: org.tlsca_cert for org in crypto.organizations},
    )


def orderer_document(
    orderer: NodeSpec,
    material: NodeMaterial,
    *,
    folder: Path,
    storage: Path,
    tls: bool,
    etcd: EtcdSpec | None = None,
    etcd_tls: EtcdClientTls | None = None,
) -> dict[str, Any]:
    """orderer.yaml of one orderer; `etcd` set means the etcd backend."""
    relative = _Relative(folder=folder)
    own_ca = material.tls_cas[material.mspid]
    backend: dict[str, Any] = {"type": "solo"}
    if etcd is not None:
        client: dict[str, Any] = {
            "endpoints": [member.client_address for member in etcd.members],
            "prefix": etcd.prefix,
        }
        if tls and etcd_tls is not None:
            client["tls"] = {
                "enabled": True,
                "cert": relative(material.tls_cert),
                "key": relative(material.tls_key),
                "root_cas": [relative(etcd_tls.ca_cert)],
            }
        backend = {"type": "etcd", "etcd": client}
    return {
        "name": orderer.full_name,
        "msp": {"id": material.mspid, "dir": relative(material.msp_dir)},
        "listen": orderer.address,
        "tls": _listener_tls(material, relative, tls=tls),
        "admin": {
            "listen": _address(orderer.host, admin_port(orderer)),
            "tls": (
                {
                    "enabled": True,
                    "cert": relative(material.tls_cert),
                    "key": relative(material.tls_key),
                    "client_root_cas": [relative(own_ca)],
                    "mutual": True,
                }
                if tls
                else {"enabled": False}
            ),
        },
        "storage": relative(storage),
        "backend": backend,
    }


def peer_document(
    peer: NodeSpec,
    material: NodeMaterial,
    *,
    folder: Path,
    storage: Path,
    tls: bool,
    packages: Sequence[ChaincodePackageEntry] = (),
) -> dict[str, Any]:
    """peer.yaml of one peer, with the chaincodes it runs."""
    relative = _Relative(folder=folder)
    document: dict[str, Any] = {
        "name": peer.full_name,
        "msp": {"id": material.mspid, "dir": relative(material.msp_dir)},
        "listen": peer.address,
        "tls": _listener_tls(material, relative, tls=tls),
        "storage": relative(storage),
    }
    chaincodes: dict[str, Any] = {}
    if tls:
        chaincodes["peer_tls_ca"] = relative(material.tls_cas[material.mspid])
    if packages:
        chaincodes["packages"] = {
            package.name: _package(package, relative, tls=tls) for package in packages
        }
    if chaincodes:
        document["chaincodes"] = chaincodes
    return document


def gateway_document(
    spec: ConsortiumSpec,
    organization: OrganizationSpec,
    gateway: GatewaySpec,
    material: NodeMaterial,
    *,
    folder: Path,
    tls: bool,
    channels: Sequence[str],
    peer_organizations: Sequence[str],
) -> dict[str, Any]:
    """gateway.yaml of one gateway: its organisation's channels and their peers.

    `material` is the material of the peer the gateway runs with; `peer_organizations`
    are the MSP ids whose peers it may ask for endorsements (its own first).
    """
    relative = _Relative(folder=folder)
    peers: list[dict[str, Any]] = []
    for mspid in peer_organizations:
        for peer in spec.organization(mspid).peers:
            entry: dict[str, Any] = {"address": peer.address, "mspid": mspid}
            if tls:
                entry["tls_root_cas"] = [relative(material.tls_cas[mspid])]
            else:
                entry["tls"] = False
            peers.append(entry)
    return {
        "name": gateway.full_name,
        "msp": {"id": organization.mspid, "dir": relative(material.msp_dir)},
        "listen": gateway.address,
        "tls": _listener_tls(material, relative, tls=tls),
        "channels": list(channels),
        "peers": peers,
    }


def write_config(
    path: Path, document: Mapping[str, Any], *, kind: str, source: str
) -> Path:
    """Write a node's document as YAML with a header saying how to start the node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = _HEADER.format(source=source, kind=kind, file=path.name)
    body = yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(header + body)
    os.replace(temporary, path)
    return path


def _listener_tls(
    material: NodeMaterial, relative: _Relative, *, tls: bool
) -> dict[str, Any]:
    if not tls:
        return {"enabled": False}
    return {
        "enabled": True,
        "cert": relative(material.tls_cert),
        "key": relative(material.tls_key),
        "client_root_cas": [relative(ca) for ca in _unique(material.tls_cas.values())],
        "mutual": False,
    }


def _package(
    package: ChaincodePackageEntry, relative: _Relative, *, tls: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"package_id": package.package_id}
    if package.launch:
        entry["launch"] = list(package.launch)
        return entry
    assert package.address is not None, "a package is launched or dialled"
    entry["address"] = package.address
    if tls and package.tls_root_cert is not None:
        entry["tls"] = {"root_cert": relative(package.tls_root_cert)}
    return entry


def _unique(paths: Any) -> list[Path]:
    return list(dict.fromkeys(paths))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
