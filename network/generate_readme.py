"""The instructions `network generate` writes: READMEs and the lifecycle commands.

Every node's folder gets a README.txt with its start command and, for orderers and
peers, how to join its channels; the output folder's README.txt lists the nodes in
start order, `medledger network deploy --generated .` (every join and chaincode in one
command) and, as the step-by-step alternative, the `medledger chaincode
install|approve|commit` commands that deploy each chaincode (with Fabric's collection
config JSON written next to its package).

Paths in the READMEs are relative, so the output folder can be moved or copied whole:
the top README's commands run inside the output folder, a node README's inside the
node's folder (its admin commands reach the admins' material as ../organizations/…).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from network.cryptogen import CryptoLayout
from network.deploy import ChaincodePackageFile
from network.plan import Plan
from network.spec import NodeSpec, OrganizationSpec
from network.spec_chaincodes import DEFAULT_ENDORSEMENT_REFERENCE, ChaincodeSpec
from network.spec_network import admin_port

__all__ = ["Instructions", "StartedNode", "write_top_readme"]


class StartedNode(Protocol):
    """A generated node: where its folder is and the command that starts it."""

    @property
    def folder(self) -> Path: ...

    @property
    def command(self) -> str: ...


@dataclass(frozen=True)
class Instructions:
    """Writes the READMEs and builds the commands for one generated consortium."""

    plan: Plan
    crypto: CryptoLayout
    out_dir: Path

    def lifecycle_lines(
        self,
        chaincode: ChaincodeSpec,
        package: ChaincodePackageFile,
        channel_name: str,
        path: Path,
    ) -> list[str]:
        """install on every member peer, approve per organisation, then commit."""
        channel = self.plan.channel(channel_name)
        members = [self.plan.spec.organization(mspid) for mspid in channel.members]
        organizations = [organization for organization in members if organization.peers]
        if not organizations:
            return []
        definition = " ".join(
            [
                f"-C {channel_name} -n {chaincode.name} -v {chaincode.version}",
                f"--sequence {chaincode.sequence}",
                *self._definition_flags(chaincode),
            ]
        )
        orderer = channel.orderer.consenters[0]
        orderer_flags = f"-o {orderer.address}"
        if self.plan.settings.tls:
            orderer_org = self.plan.organization_of(orderer).mspid
            orderer_flags += (
                " --orderer-tls-ca "
                f"{self._top(self.crypto.organization(orderer_org).tlsca_cert)}"
            )
        lines = [
            f"# {chaincode.name} on {channel_name}: install on every member peer, "
            "each organisation approves, one admin commits"
        ]
        for organization in organizations:
            admin = self._admin_flags(organization)
            lines += [
                f"medledger chaincode install {self._top(path)} --peer {peer.address} "
                f"{admin}"
                for peer in organization.peers
            ]
        for organization in organizations:
            lines.append(
                f"medledger chaincode approve {definition} --package-id "
                f"{package.package_id} --peer {organization.peers[0].address} "
                f"{self._admin_flags(organization)} {orderer_flags}"
            )
        peers = " ".join(f"--peer {o.peers[0].address}" for o in organizations)
        extra_cas = "".join(
            f" --tls-ca {self._top(self.crypto.organization(o.mspid).tlsca_cert)}"
            for o in organizations[1:]
            if self.plan.settings.tls
        )
        lines.append(
            f"medledger chaincode commit {definition} {peers} "
            f"{self._admin_flags(organizations[0])}{extra_cas} {orderer_flags}"
        )
        if chaincode.init_required:
            call = " ".join([chaincode.init_function, *chaincode.init_args])
            lines.append(
                f"# then, before any other transaction, its init transaction: a "
                f"proposal flagged is_init calling {call}, endorsed by a peer of every "
                "member (`medledger network up` sends it itself)"
            )
        return [*lines, ""]

    def _definition_flags(self, chaincode: ChaincodeSpec) -> list[str]:
        flags = []
        policy = chaincode.endorsement_policy
        if policy != DEFAULT_ENDORSEMENT_REFERENCE:
            kind = (
                "channel-config-policy"
                if policy.startswith("/")
                else "signature-policy"
            )
            flags.append(f"--{kind} {shlex.quote(policy)}")
        if chaincode.init_required:
            flags.append("--init-required")
        if chaincode.collections:
            path = self.out_dir / "chaincode" / f"{chaincode.name}-collections.json"
            path.write_text(json.dumps(_collections_json(chaincode), indent=2) + "\n")
            flags.append(f"--collections-config {self._top(path)}")
        return flags

    def _admin_flags(self, organization: OrganizationSpec) -> str:
        layout = self.crypto.organization(organization.mspid)
        admin = layout.user(organization.admins[0].name)
        flags = f"--identity {self._top(admin.msp_dir)} --mspid {organization.mspid}"
        if self.plan.settings.tls:
            flags += f" --tls-ca {self._top(layout.tlsca_cert)}"
        return flags

    def _top(self, path: Path) -> str:
        """`path` relative to the output folder (where the top README's commands run)."""
        return _relative(path, self.out_dir)

    def _from_node(self, path: Path, node: NodeSpec) -> str:
        """`path` relative to a node's folder (where its README's commands run)."""
        return _relative(path, self.out_dir / node.full_name)

    def peer_join_line(
        self, organization: OrganizationSpec, peer: NodeSpec, channel: str
    ) -> str:
        """`medledger channel join` for a peer, run inside the peer's folder."""
        admin = self.crypto.organization(organization.mspid).user(
            organization.admins[0].name
        )
        tls = (
            f" --tls-ca tlsca/{organization.mspid}.pem"
            if self.plan.settings.tls
            else ""
        )
        return (
            f"medledger channel join -b channels/{channel}.block --peer "
            f"{peer.address} --identity {self._from_node(admin.msp_dir, peer)}{tls}"
        )

    def orderer_join_line(
        self, organization: OrganizationSpec, orderer: NodeSpec, channel: str
    ) -> str:
        admin = self.crypto.organization(organization.mspid).user(
            organization.admins[0].name
        )
        host = f"[{orderer.host}]" if ":" in orderer.host else orderer.host
        if not self.plan.settings.tls:
            return (
                f"curl -X POST http://{host}:{admin_port(orderer)}"
                f"/participation/v1/channels -F config-block=@channels/{channel}.block"
            )
        return (
            f"curl --cacert tlsca/{organization.mspid}.pem "
            f"--cert {self._from_node(admin.tls_cert, orderer)} "
            f"--key {self._from_node(admin.tls_key, orderer)} "
            f"-X POST https://{host}:{admin_port(orderer)}/participation/v1/channels "
            f"-F config-block=@channels/{channel}.block"
        )

    def node_readme(
        self, folder: Path, name: str, command: str, then: Sequence[str]
    ) -> None:
        lines = [
            f"{name}",
            "",
            "Copy this folder to the node's host, then, inside it:",
            "",
            f"    {command}",
            "",
            "It prints a READY line once it listens; stop it with SIGTERM (Ctrl-C).",
        ]
        if then:
            lines += [
                "",
                "The first time, join its channels: an admin of its organisation does",
                "this on the generating host, inside this folder there (the admin's",
                "material is in ../organizations/):",
                "",
                *(f"    {line}" for line in then),
            ]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "README.txt").write_text("\n".join(lines) + "\n")


def _relative(path: Path, start: Path) -> str:
    """`path` relative to `start` (both resolved), as the shell should see it."""
    return shlex.quote(os.path.relpath(path.resolve(), start.resolve()))


def _collections_json(chaincode: ChaincodeSpec) -> list[dict[str, object]]:
    """The chaincode's collections in Fabric's collection config JSON."""
    document: list[dict[str, object]] = []
    for collection in chaincode.collections:
        entry: dict[str, object] = {
            "name": collection.name,
            "policy": collection.policy,
            "requiredPeerCount": collection.required_peer_count,
            "maxPeerCount": collection.max_peer_count,
            "blockToLive": collection.block_to_live,
            "memberOnlyRead": collection.member_only_read,
            "memberOnlyWrite": collection.member_only_write,
        }
        if collection.endorsement_policy is not None:
            entry["endorsementPolicy"] = {
                "signaturePolicy": collection.endorsement_policy
            }
        document.append(entry)
    return document


def write_top_readme(
    plan: Plan,
    out_dir: Path,
    nodes: Sequence[StartedNode],
    lifecycle: Sequence[str],
) -> None:
    lines = [
        f"Consortium {plan.spec.name}: one folder per node.",
        "",
        "organizations/ holds all crypto material, CA keys and admins included: keep it",
        "on a trusted host. channels/ holds the genesis blocks.",
        "",
        "Start the nodes in this order (each folder's README.txt has its command):",
        "",
        *(f"    {node.folder.name:<40} {node.command}" for node in nodes),
        "",
        "Then, inside this folder (the admins' material is here), one command joins",
        "each orderer and then each peer to its channels and deploys the chaincode; it",
        "waits for the nodes to answer, skips what is done, and may be run again. At",
        "the end it checks that every gateway answers for its channels and fails",
        "naming those that do not (add --no-gateways when they start later):",
        "",
        "    medledger network deploy --generated .",
        "",
        "Or do the same by hand: join each orderer and then each peer to its channels",
        "once (each node's README.txt has the commands).",
    ]
    if lifecycle:
        lines += [
            "Then deploy the chaincode (packages in chaincode/) through the lifecycle,",
            "inside this folder:",
            "",
            *(f"    {line}" if line else "" for line in lifecycle),
        ]
    (out_dir / "README.txt").write_text("\n".join(lines) + "\n")
