"""The processes of a local network: material, per-node configs, command lines, ports.

`make_material` makes (or reuses) what must exist before anything starts: the crypto
material, each channel's genesis block, TLS pairs for etcd members and chaincode
servers, and the package id of each chaincode. `node_tiers` writes every node's config
and returns the processes in start order — etcd members, orderers (those that are a
consenter of some channel), chaincode servers, peers, gateways (of organisations that
are a member of some channel) — each with the ports it will listen on, which
`check_ports` checks before anything starts.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from common.tls import TlsFiles, client_ssl_context
from network.cryptogen import CryptoLayout, generate_crypto
from network.deploy import ChaincodePackageFile, ccaas_command, chaincode_package
from network.genesis import build_channel_config, build_genesis_block, write_block
from network.launcher import (
    NetworkState,
    NodeKind,
    ProcessSpec,
    check_port_free,
    is_alive,
)
from network.nodeconfigs import (
    EtcdClientTls,
    gateway_document,
    node_material,
    orderer_document,
    peer_document,
    write_config,
)
from network.plan import Plan, Progress
from network.service_tls import ServerPair, ensure_server_pair
from network.spec import GatewaySpec, NodeSpec, OrganizationSpec
from network.spec_chaincodes import ChaincodeLanguage, ChaincodeSpec
from network.spec_channels import OrdererType
from network.spec_network import EtcdMemberSpec, Listener, admin_port

__all__ = ["Material", "NodeProcess", "check_ports", "make_material", "node_tiers"]


@dataclass(frozen=True)
class NodeProcess:
    """A process to start and the ports it will listen on."""

    spec: ProcessSpec
    needs: tuple[Listener, ...]


@dataclass(frozen=True)
class Material:
    """Everything made before any process starts."""

    crypto: CryptoLayout
    blocks: dict[str, bytes]
    etcd_pairs: dict[str, ServerPair]
    ccaas_pairs: dict[str, ServerPair]
    packages: dict[str, ChaincodePackageFile]


def make_material(plan: Plan, progress: Progress) -> Material:
    fresh = not plan.crypto_dir.exists()
    crypto = generate_crypto(plan.spec, plan.crypto_dir)
    if fresh:
        progress(
            f"crypto material for {len(plan.spec.organizations)} organisations: "
            f"{plan.crypto_dir}"
        )
    blocks: dict[str, bytes] = {}
    for channel in plan.channels:
        path = plan.block_file(channel.name)
        if not path.exists():
            config = build_channel_config(plan.spec, channel.name, crypto)
            write_block(path, build_genesis_block(config, channel.name))
            progress(
                f"genesis block of {channel.name} ({channel.orderer.type}): {path}"
            )
        blocks[channel.name] = path.read_bytes()
    ccaas_pairs = _ccaas_pairs(plan, crypto) if plan.settings.tls else {}
    return Material(
        crypto=crypto,
        blocks=blocks,
        etcd_pairs=_etcd_pairs(plan, crypto) if plan.settings.tls else {},
        ccaas_pairs=ccaas_pairs,
        packages=_packages(plan, ccaas_pairs),
    )


def node_tiers(plan: Plan, material: Material) -> list[list[NodeProcess]]:
    """etcd, orderers, chaincode servers, peers, gateways: configs written, in order."""
    etcd = [_etcd_node(plan, member, material) for member in plan.settings.etcd.members]
    return [
        etcd if plan.uses_etcd else [],
        [
            _orderer_node(plan, organization, orderer, material)
            for organization in plan.spec.organizations
            for orderer in organization.orderers
            if plan.channels_ordered_by(orderer)
        ],
        [
            _ccaas_node(plan, chaincode, material)
            for chaincode in plan.chaincodes
            if chaincode.language is ChaincodeLanguage.CCAAS
        ],
        [
            _peer_node(plan, organization, peer, material)
            for organization in plan.spec.organizations
            for peer in organization.peers
        ],
        [
            _gateway_node(plan, organization, gateway, material)
            for organization in plan.spec.organizations
            for gateway in organization.gateways
            if plan.member_channels(organization)
        ],
    ]


def check_ports(nodes: Sequence[NodeProcess], state: NetworkState) -> None:
    """Every port of a node that is not running yet must be free (nothing starts else)."""
    for node in nodes:
        record = state.nodes.get(node.spec.name)
        if record is not None and is_alive(record):
            continue
        for listener in node.needs:
            check_port_free(listener.node, listener.what, listener.host, listener.port)


# --- nodes -----------------------------------------------------------------------


def _python_node(
    plan: Plan, kind: NodeKind, name: str, config_file: str
) -> ProcessSpec:
    config = plan.node_dir(name) / config_file
    return ProcessSpec(
        name=name,
        kind=kind,
        argv=(plan.python, "-m", "network.cli", str(kind), "start", "-c", str(config)),
        log=plan.log_file(name),
        config=config,
    )


def _orderer_node(
    plan: Plan, organization: OrganizationSpec, orderer: NodeSpec, material: Material
) -> NodeProcess:
    folder = plan.node_dir(orderer.full_name)
    channels = plan.channels_ordered_by(orderer)
    uses_etcd = channels[0].orderer.type is OrdererType.ETCD
    identity = material.crypto.organization(organization.mspid).orderer(orderer.name)
    pairs = list(material.etcd_pairs.values())
    document = orderer_document(
        orderer,
        node_material(material.crypto, organization.mspid, identity),
        folder=folder,
        storage=folder / "data",
        tls=plan.settings.tls,
        etcd=plan.settings.etcd if uses_etcd else None,
        etcd_tls=EtcdClientTls(ca_cert=_etcd_bundle(plan)) if pairs else None,
    )
    write_config(folder / "orderer.yaml", document, kind="orderer", source=plan.source)
    spec = _python_node(plan, NodeKind.ORDERER, orderer.full_name, "orderer.yaml")
    needs = (
        Listener(orderer.full_name, "gRPC", orderer.host, orderer.port),
        Listener(orderer.full_name, "admin", orderer.host, admin_port(orderer)),
    )
    return NodeProcess(spec, needs)


def _peer_node(
    plan: Plan, organization: OrganizationSpec, peer: NodeSpec, material: Material
) -> NodeProcess:
    folder = plan.node_dir(peer.full_name)
    identity = material.crypto.organization(organization.mspid).peer(peer.name)
    document = peer_document(
        peer,
        node_material(material.crypto, organization.mspid, identity),
        folder=folder,
        storage=folder / "data",
        tls=plan.settings.tls,
    )
    write_config(folder / "peer.yaml", document, kind="peer", source=plan.source)
    spec = _python_node(plan, NodeKind.PEER, peer.full_name, "peer.yaml")
    return NodeProcess(spec, (Listener(peer.full_name, "gRPC", peer.host, peer.port),))


def _gateway_node(
    plan: Plan,
    organization: OrganizationSpec,
    gateway: GatewaySpec,
    material: Material,
) -> NodeProcess:
    folder = plan.node_dir(gateway.full_name)
    channels = plan.member_channels(organization)
    others = [m for channel in channels for m in channel.members]
    identity = material.crypto.organization(organization.mspid).peer(gateway.peer)
    document = gateway_document(
        plan.spec,
        organization,
        gateway,
        node_material(material.crypto, organization.mspid, identity),
        folder=folder,
        tls=plan.settings.tls,
        channels=[channel.name for channel in channels],
        peer_organizations=list(dict.fromkeys([organization.mspid, *others])),
    )
    write_config(folder / "gateway.yaml", document, kind="gateway", source=plan.source)
    spec = _python_node(plan, NodeKind.GATEWAY, gateway.full_name, "gateway.yaml")
    return NodeProcess(
        spec, (Listener(gateway.full_name, "gRPC", gateway.host, gateway.port),)
    )


def _etcd_node(plan: Plan, member: EtcdMemberSpec, material: Material) -> NodeProcess:
    folder = plan.workdir / "etcd" / member.name
    scheme = "https" if plan.settings.tls else "http"
    cluster = ",".join(
        f"{m.name}={scheme}://{m.peer_address}" for m in plan.settings.etcd.members
    )
    argv = [
        "etcd",
        f"--name={member.name}",
        f"--data-dir={folder / 'data'}",
        f"--listen-client-urls={scheme}://{member.client_address}",
        f"--advertise-client-urls={scheme}://{member.client_address}",
        f"--listen-peer-urls={scheme}://{member.peer_address}",
        f"--initial-advertise-peer-urls={scheme}://{member.peer_address}",
        f"--initial-cluster={cluster}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={plan.spec.name}",
        "--max-request-bytes=10485760",
    ]
    pair = material.etcd_pairs.get(member.name)
    client_tls: TlsFiles | None = None
    if pair is not None:
        bundle = _etcd_bundle(plan)
        argv += [
            f"--cert-file={pair.cert}",
            f"--key-file={pair.key}",
            f"--trusted-ca-file={bundle}",
            "--client-cert-auth",
            f"--peer-cert-file={pair.cert}",
            f"--peer-key-file={pair.key}",
            f"--peer-trusted-ca-file={bundle}",
            "--peer-client-cert-auth",
        ]
        client_tls = TlsFiles(cert=pair.cert, key=pair.key, root_cas=(pair.ca_cert,))
    url = f"{scheme}://{member.client_address}/health"
    spec = ProcessSpec(
        name=member.name,
        kind=NodeKind.ETCD,
        argv=tuple(argv),
        log=plan.log_file(member.name),
        addresses={"client": member.client_address, "peer": member.peer_address},
        health=lambda: _etcd_healthy(url, client_tls),
    )
    needs = (
        Listener(member.name, "etcd client", member.host, member.client_port),
        Listener(member.name, "etcd peer", member.host, member.peer_port),
    )
    return NodeProcess(spec, needs)


def _ccaas_node(
    plan: Plan, chaincode: ChaincodeSpec, material: Material
) -> NodeProcess:
    name = f"chaincode-{chaincode.name}"
    pair = material.ccaas_pairs.get(chaincode.name)
    argv = ccaas_command(
        chaincode,
        package=material.packages[chaincode.name].package_id,
        tls_cert=None if pair is None else pair.cert,
        tls_key=None if pair is None else pair.key,
        python=plan.python,
    )
    spec = ProcessSpec(
        name=name, kind=NodeKind.CHAINCODE, argv=argv, log=plan.log_file(name)
    )
    assert chaincode.port is not None
    return NodeProcess(
        spec, (Listener(name, "chaincode", chaincode.host, chaincode.port),)
    )


async def _etcd_healthy(url: str, tls: TlsFiles | None) -> bool:
    context: ssl.SSLContext | bool = (
        client_ssl_context(tls) if tls is not None else False
    )
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(url) as response,
    ):
        if response.status != 200:
            return False
        document = await response.json(content_type=None)
    return isinstance(document, dict) and document.get("health") == "true"


# --- material ----------------------------------------------------------------------


def _etcd_pairs(plan: Plan, crypto: CryptoLayout) -> dict[str, ServerPair]:
    if not plan.uses_etcd:
        return {}
    organization = crypto.organization(_etcd_organizations(plan)[0])
    return {
        member.name: ensure_server_pair(
            organization,
            common_name=f"{member.name}.etcd.{organization.domain}",
            names=(member.host,),
            folder=plan.workdir / "etcd" / member.name / "tls",
        )
        for member in plan.settings.etcd.members
    }


def _etcd_organizations(plan: Plan) -> list[str]:
    return list(
        dict.fromkeys(
            mspid
            for channel in plan.channels
            if channel.orderer.type is OrdererType.ETCD
            for mspid in channel.orderer.organizations
        )
    )


def _etcd_bundle(plan: Plan) -> Path:
    """One file with the TLS CAs of every etcd-ordering organisation (written once)."""
    path = plan.workdir / "etcd" / "ca-bundle.pem"
    if not path.exists():
        crypto_root = plan.crypto_dir / "organizations"
        pems = [
            (
                crypto_root / org.domain / "tlsca" / f"tlsca.{org.domain}-cert.pem"
            ).read_bytes()
            for mspid in _etcd_organizations(plan)
            for org in [plan.spec.organization(mspid)]
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(pems))
    return path


def _ccaas_pairs(plan: Plan, crypto: CryptoLayout) -> dict[str, ServerPair]:
    pairs: dict[str, ServerPair] = {}
    for chaincode in plan.chaincodes:
        if chaincode.language is not ChaincodeLanguage.CCAAS:
            continue
        channel = plan.channel(chaincode.channels[0])
        organization = crypto.organization(channel.members[0])
        pairs[chaincode.name] = ensure_server_pair(
            organization,
            common_name=f"{chaincode.name}.chaincode.{organization.domain}",
            names=(chaincode.host,),
            folder=plan.workdir / "chaincode" / chaincode.name / "tls",
        )
    return pairs


def _packages(
    plan: Plan, ccaas_pairs: dict[str, ServerPair]
) -> dict[str, ChaincodePackageFile]:
    """Each chaincode's install package (a ccaas one trusts its server's TLS CA)."""
    packages = {}
    for chaincode in plan.chaincodes:
        pair = ccaas_pairs.get(chaincode.name)
        root_cert = pair.ca_cert.read_bytes() if pair is not None else None
        packages[chaincode.name] = chaincode_package(
            chaincode, ccaas_root_cert=root_cert
        )
    return packages
