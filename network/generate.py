"""`medledger network generate -c FILE -o DIR`: one folder per node, for a deployment across hosts.

    DIR/README.txt                     what is where, and the order to start things in
    DIR/organizations/<domain>/...     all crypto material, CA keys included: keep it safe,
                                       the admins' MSP folders are here
    DIR/channels/<channel>.block       genesis blocks
    DIR/consortium.generated.yaml      the spec, read by `medledger network deploy`
    DIR/<node>/                        one folder per orderer, peer, gateway, etcd member
                                       and chaincode server: its YAML config (or command
                                       line), its MSP and TLS material (msp/, tls/), the
                                       TLS CAs it trusts (tlsca/<MSP id>.pem), the genesis
                                       blocks it joins (channels/), chaincode sources
                                       (chaincode/), and a README.txt with its start command

Every path in a node's folder is relative to the folder, so it can be copied to its
host as it is; start each node from inside its folder. The spec's host names and ports
are the addresses nodes dial one another on, so each host must be reachable there.
Material is kept when it exists: running the command again after adding a node only
makes what is new.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from network.cryptogen import CryptoLayout, IdentityLayout, generate_crypto
from network.deploy import (
    ChaincodePackageFile,
    chaincode_package,
    module_root,
    served_module,
)
from network.deploy_generated import write_spec_copy
from network.generate_readme import Instructions, write_top_readme
from network.genesis import build_channel_config, build_genesis_block, write_block
from network.nodeconfigs import (
    EtcdClientTls,
    NodeMaterial,
    gateway_document,
    orderer_document,
    peer_document,
    write_config,
)
from network.plan import Plan, make_plan
from network.service_tls import ensure_server_pair
from network.spec import GatewaySpec, NodeSpec, OrganizationSpec, load_spec
from network.spec_chaincodes import (
    ChaincodeLanguage,
    ChaincodeSpec,
)
from network.spec_channels import OrdererType
from network.spec_network import EtcdMemberSpec

__all__ = ["GeneratedNode", "generate"]

REMOTE_PYTHON = "python3"
"""The interpreter a peer on another host starts Python chaincode with."""


@dataclass(frozen=True)
class GeneratedNode:
    """One node's folder and the command that starts it (run inside the folder)."""

    name: str
    folder: Path
    command: str


def generate(
    spec_path: Path, out_dir: Path, *, progress: Callable[[str], None] = print
) -> list[GeneratedNode]:
    """Write the folders of every node of the spec under `out_dir`.

    Raises:
        ConfigError: the spec is wrong (nothing is written).
    """
    spec = load_spec(spec_path)
    out_dir = out_dir.resolve()
    types = {channel.name: str(channel.orderer.type) for channel in spec.channels}
    plan = make_plan(spec, workdir=out_dir, orderer_types=types)
    crypto = generate_crypto(plan.spec, out_dir)
    _write_blocks(plan, crypto, out_dir)
    writer = _Writer(plan, crypto, out_dir)
    nodes = writer.all_nodes()
    write_top_readme(plan, out_dir, nodes, writer.write_packages())
    write_spec_copy(plan, out_dir)
    for node in nodes:
        progress(f"{node.name}: {node.folder}  (start: {node.command})")
    progress(f"read {out_dir / 'README.txt'} for the order to start them in")
    return nodes


@dataclass(frozen=True)
class _Writer:
    plan: Plan
    crypto: CryptoLayout
    out_dir: Path

    @property
    def texts(self) -> Instructions:
        return Instructions(self.plan, self.crypto, self.out_dir)

    def all_nodes(self) -> list[GeneratedNode]:
        plan = self.plan
        nodes: list[GeneratedNode] = []
        if plan.uses_etcd:
            nodes += [self.etcd_member(member) for member in plan.settings.etcd.members]
        for organization in plan.spec.organizations:
            nodes += [
                self.orderer(organization, orderer)
                for orderer in organization.orderers
                if plan.channels_ordered_by(orderer)
            ]
        nodes += [
            self.chaincode_server(chaincode)
            for chaincode in plan.chaincodes
            if chaincode.language is ChaincodeLanguage.CCAAS
        ]
        for organization in plan.spec.organizations:
            nodes += [self.peer(organization, peer) for peer in organization.peers]
        for organization in plan.spec.organizations:
            if plan.member_channels(organization):
                nodes += [
                    self.gateway(organization, gateway)
                    for gateway in organization.gateways
                ]
        return nodes

    def orderer(
        self, organization: OrganizationSpec, orderer: NodeSpec
    ) -> GeneratedNode:
        folder = self.out_dir / orderer.full_name
        identity = self.crypto.organization(organization.mspid).orderer(orderer.name)
        material = self._copy_identity(identity, organization.mspid, folder)
        channels = self.plan.channels_ordered_by(orderer)
        uses_etcd = channels[0].orderer.type is OrdererType.ETCD
        etcd_tls = None
        if uses_etcd and self.plan.settings.tls:
            etcd_tls = EtcdClientTls(ca_cert=self._copy_etcd_ca(folder))
        document = orderer_document(
            orderer,
            material,
            folder=folder,
            storage=folder / "data",
            tls=self.plan.settings.tls,
            etcd=self.plan.settings.etcd if uses_etcd else None,
            etcd_tls=etcd_tls,
        )
        self._copy_blocks(folder, [channel.name for channel in channels])
        write_config(
            folder / "orderer.yaml", document, kind="orderer", source=self._source
        )
        command = "medledger orderer start -c orderer.yaml"
        join = [
            self.texts.orderer_join_line(organization, orderer, channel.name)
            for channel in channels
        ]
        self.texts.node_readme(folder, orderer.full_name, command, join)
        return GeneratedNode(orderer.full_name, folder, command)

    def peer(self, organization: OrganizationSpec, peer: NodeSpec) -> GeneratedNode:
        folder = self.out_dir / peer.full_name
        identity = self.crypto.organization(organization.mspid).peer(peer.name)
        material = self._copy_identity(identity, organization.mspid, folder)
        channels = [c.name for c in self.plan.member_channels(organization)]
        document = peer_document(
            peer,
            material,
            folder=folder,
            storage=folder / "data",
            tls=self.plan.settings.tls,
        )
        self._copy_blocks(folder, channels)
        write_config(folder / "peer.yaml", document, kind="peer", source=self._source)
        command = "medledger peer start -c peer.yaml"
        join = [
            self.texts.peer_join_line(organization, peer, channel)
            for channel in channels
        ]
        self.texts.node_readme(folder, peer.full_name, command, join)
        return GeneratedNode(peer.full_name, folder, command)

    def gateway(
        self, organization: OrganizationSpec, gateway: GatewaySpec
    ) -> GeneratedNode:
        folder = self.out_dir / gateway.full_name
        identity = self.crypto.organization(organization.mspid).peer(gateway.peer)
        material = self._copy_identity(identity, organization.mspid, folder)
        channels = self.plan.member_channels(organization)
        members = [mspid for channel in channels for mspid in channel.members]
        document = gateway_document(
            self.plan.spec,
            organization,
            gateway,
            material,
            folder=folder,
            tls=self.plan.settings.tls,
            channels=[channel.name for channel in channels],
            peer_organizations=list(dict.fromkeys([organization.mspid, *members])),
        )
        write_config(
            folder / "gateway.yaml", document, kind="gateway", source=self._source
        )
        command = "medledger gateway start -c gateway.yaml"
        self.texts.node_readme(folder, gateway.full_name, command, [])
        return GeneratedNode(gateway.full_name, folder, command)

    def etcd_member(self, member: EtcdMemberSpec) -> GeneratedNode:
        folder = self.out_dir / member.name
        folder.mkdir(parents=True, exist_ok=True)
        tls = self.plan.settings.tls
        scheme = "https" if tls else "http"
        cluster = ",".join(
            f"{m.name}={scheme}://{m.peer_address}"
            for m in self.plan.settings.etcd.members
        )
        flags = [
            f"--name={member.name}",
            "--data-dir=data",
            f"--listen-client-urls={scheme}://{member.client_address}",
            f"--advertise-client-urls={scheme}://{member.client_address}",
            f"--listen-peer-urls={scheme}://{member.peer_address}",
            f"--initial-advertise-peer-urls={scheme}://{member.peer_address}",
            f"--initial-cluster={cluster}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={self.plan.spec.name}",
            "--max-request-bytes=10485760",
        ]
        if tls:
            organization = self.crypto.organization(self._etcd_organizations()[0])
            ensure_server_pair(
                organization,
                common_name=f"{member.name}.etcd.{organization.domain}",
                names=(member.host,),
                folder=folder / "tls",
            )
            self._copy_etcd_ca(folder)
            flags += [
                "--cert-file=tls/server.crt",
                "--key-file=tls/server.key",
                "--trusted-ca-file=tlsca/etcd-clients.pem",
                "--client-cert-auth",
                "--peer-cert-file=tls/server.crt",
                "--peer-key-file=tls/server.key",
                "--peer-trusted-ca-file=tlsca/etcd-clients.pem",
                "--peer-client-cert-auth",
            ]
        command = "etcd " + " ".join(flags)
        _write_script(folder / "start.sh", command)
        self.texts.node_readme(folder, member.name, "./start.sh", [])
        return GeneratedNode(member.name, folder, "./start.sh")

    def chaincode_server(self, chaincode: ChaincodeSpec) -> GeneratedNode:
        name = f"chaincode-{chaincode.name}"
        folder = self.out_dir / name
        source = self._copy_source(chaincode, folder)
        words = [
            f"PYTHONPATH={source}",
            REMOTE_PYTHON,
            "-m",
            "chaincode",
            "serve",
            "--module",
            served_module(chaincode),
            "--listen",
            str(chaincode.address),
            "--chaincode-id",
            self.package(chaincode).package_id,
        ]
        if self.plan.settings.tls:
            words += ["--tls-cert", "tls/server.crt", "--tls-key", "tls/server.key"]
        command = " ".join(words)
        _write_script(folder / "start.sh", f"env {command}")
        self.texts.node_readme(folder, name, "./start.sh", [])
        return GeneratedNode(name, folder, "./start.sh")

    def package(self, chaincode: ChaincodeSpec) -> ChaincodePackageFile:
        """The chaincode's install package (a ccaas one trusts its server's TLS CA)."""
        root_cert = None
        if chaincode.language is ChaincodeLanguage.CCAAS and self.plan.settings.tls:
            channel = self.plan.channel(chaincode.channels[0])
            organization = self.crypto.organization(channel.members[0])
            pair = ensure_server_pair(
                organization,
                common_name=f"{chaincode.name}.chaincode.{organization.domain}",
                names=(chaincode.host,),
                folder=self.out_dir / f"chaincode-{chaincode.name}" / "tls",
            )
            root_cert = pair.ca_cert.read_bytes()
        return chaincode_package(chaincode, ccaas_root_cert=root_cert)

    def write_packages(self) -> list[str]:
        """chaincode/<name>.tar.gz per chaincode; the lifecycle commands to deploy them."""
        lines: list[str] = []
        for chaincode in self.plan.chaincodes:
            package = self.package(chaincode)
            path = self.out_dir / "chaincode" / f"{chaincode.name}.tar.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(package.data)
            for channel_name in chaincode.channels:
                lines += self.texts.lifecycle_lines(
                    chaincode, package, channel_name, path
                )
        return lines

    @property
    def _source(self) -> str:
        return self.plan.spec.source.name if self.plan.spec.source else "the spec"

    def _copy_identity(
        self, identity: IdentityLayout, mspid: str, folder: Path
    ) -> NodeMaterial:
        _copy_tree(identity.msp_dir, folder / "msp")
        _copy_tree(identity.tls_dir, folder / "tls")
        trusted = {}
        for organization in self.crypto.organizations:
            target = folder / "tlsca" / f"{organization.mspid}.pem"
            _copy_file(organization.tlsca_cert, target)
            trusted[organization.mspid] = target
        return NodeMaterial(
            mspid=mspid,
            msp_dir=folder / "msp",
            tls_cert=folder / "tls" / identity.tls_cert.name,
            tls_key=folder / "tls" / identity.tls_key.name,
            tls_cas=trusted,
        )

    def _copy_blocks(self, folder: Path, channels: Sequence[str]) -> None:
        for channel in channels:
            _copy_file(
                self.out_dir / "channels" / f"{channel}.block",
                folder / "channels" / f"{channel}.block",
            )

    def _etcd_organizations(self) -> list[str]:
        return list(
            dict.fromkeys(
                mspid
                for channel in self.plan.channels
                if channel.orderer.type is OrdererType.ETCD
                for mspid in channel.orderer.organizations
            )
        )

    def _copy_etcd_ca(self, folder: Path) -> Path:
        """The TLS CAs of the etcd-ordering organisations, in one file."""
        target = folder / "tlsca" / "etcd-clients.pem"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(
            b"".join(
                self.crypto.organization(mspid).tlsca_cert.read_bytes()
                for mspid in self._etcd_organizations()
            )
        )
        return target

    def _copy_source(self, chaincode: ChaincodeSpec, folder: Path) -> str:
        """Copy the chaincode's source into the node folder; its PYTHONPATH entry.

        Python: the folder's package path under ``chaincode/<name>/`` (so the module
        imports from there); Node: the project under ``chaincode/<name>``.
        """
        base = Path("chaincode") / chaincode.name
        if chaincode.language is ChaincodeLanguage.NODE:
            _copy_tree(chaincode.path, folder / base, skip_dependencies=True)
            return str(base)
        root = module_root(chaincode)
        relative = chaincode.path.relative_to(root)
        _copy_tree(chaincode.path, folder / base / relative, skip_dependencies=True)
        return str(base)


def _write_blocks(plan: Plan, crypto: CryptoLayout, out_dir: Path) -> None:
    for channel in plan.channels:
        path = out_dir / "channels" / f"{channel.name}.block"
        if not path.exists():
            config = build_channel_config(plan.spec, channel.name, crypto)
            write_block(path, build_genesis_block(config, channel.name))


def _write_script(path: Path, command: str) -> None:
    """A shell script that runs `command` from its own folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\ncd "$(dirname "$0")"\nexec {command}\n')
    path.chmod(0o755)


def _copy_tree(source: Path, target: Path, *, skip_dependencies: bool = False) -> None:
    ignore = (
        shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", ".git")
        if skip_dependencies
        else None
    )
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=ignore)


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
