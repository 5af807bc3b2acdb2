"""A `network generate` deployment across network namespaces, as an operator runs it.

`place_on_hosts` copies the consortium template (consortium.yaml here) with every
orderer, peer and gateway on a namespace of its own: the namespace's IP becomes the
node's `host`, and a gateway's IP joins its peer's `sans` (the gateway presents the
peer's TLS certificate). `generate_deployment` runs `network generate` on it. Each
node is then started from its own folder with the command generate wrote for it,
inside its namespace (`start_node`). The admin steps run from the root namespace over
the bridge in one command, `medledger network deploy --generated DIR` (`network_deploy`,
run as a process as an operator runs it). `wait_caught_up` waits, on each peer's
Deliver service, for the orderer's newest block.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.msp import SigningIdentity
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from common.tls import TlsFiles
from network.admin_calls import admin_identity, orderer_admin, orderer_heights
from network.cryptogen import CryptoLayout, crypto_layout
from network.generate import GeneratedNode, generate
from network.lifecycle_client import Target
from network.plan import Plan, make_plan
from network.spec import NodeSpec, load_spec
from network.spec_network import admin_port
from protos.peer import events_pb2
from tests.support.netns import Host, NetnsLab, NetnsProcess

__all__ = [
    "TEMPLATE",
    "Deployment",
    "generate_deployment",
    "medledger_argv",
    "network_deploy",
    "orderer_height",
    "place_on_hosts",
    "start_node",
    "wait_caught_up",
]

TEMPLATE = Path(__file__).with_name("consortium.yaml")
DELIVER_TIMEOUT_S = 30.0
DEPLOY_TIMEOUT_S = 300.0
MEDLEDGER = (sys.executable, "-m", "network.cli")
"""`medledger` as this interpreter runs it (whether or not its bin/ is on PATH)."""
ETCD_READY = "ready to serve client requests"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Deployment:
    """The generated folders, the plan and crypto layout behind them, and the hosts."""

    folder: Path
    plan: Plan
    crypto: CryptoLayout
    nodes: tuple[GeneratedNode, ...]
    hosts: Mapping[str, Host]

    def node(self, name: str) -> GeneratedNode:
        return next(node for node in self.nodes if node.name == name)

    def kind(self, node: GeneratedNode) -> str:
        """orderer, peer or gateway (the word after `medledger` in its command), etcd
        or chaincode (a server run by its start.sh)."""
        words = shlex.split(node.command)
        if words[0] == "medledger":
            return words[1]
        members = {member.name for member in self.plan.settings.etcd.members}
        return "etcd" if node.name in members else "chaincode"

    def tls_ca(self, mspid: str) -> Path:
        return self.crypto.organization(mspid).tlsca_cert


def place_on_hosts(lab: NetnsLab, folder: Path) -> tuple[Path, dict[str, Host]]:
    """The template with each node on a namespace of its own; node name → host."""
    document: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    hosts: dict[str, Host] = {}
    for organization in document["organizations"]:
        domain = organization["domain"]
        for node in [*organization.get("orderers", []), *organization.get("peers", [])]:
            host = lab.add_host(f"{node['name']}.{domain}")
            node["host"] = host.ip
            hosts[host.name] = host
        for gateway in organization.get("gateways", []):
            host = lab.add_host(f"{gateway['name']}.{domain}")
            gateway["host"] = host.ip
            hosts[host.name] = host
            peer = organization["peers"][0]
            peer["sans"] = [*peer.get("sans", []), host.ip]
    for member in document.get("orderers", {}).get("etcd", {}).get("members", []):
        host = lab.add_host(member["name"])
        member["host"] = host.ip
        hosts[host.name] = host
    for chaincode in document.get("chaincodes", []):
        chaincode["path"] = str((TEMPLATE.parent / chaincode["path"]).resolve())
    path = folder / "consortium.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, hosts


def generate_deployment(
    spec_path: Path, out_dir: Path, hosts: Mapping[str, Host], progress: Progress
) -> Deployment:
    """`medledger network generate -c SPEC -o OUT_DIR`, and how to read its output."""
    nodes = generate(spec_path, out_dir, progress=progress)
    spec = load_spec(spec_path)
    types = {channel.name: str(channel.orderer.type) for channel in spec.channels}
    plan = make_plan(spec, workdir=out_dir, orderer_types=types)
    return Deployment(
        folder=out_dir.resolve(),
        plan=plan,
        crypto=crypto_layout(plan.spec, out_dir.resolve()),
        nodes=tuple(nodes),
        hosts=hosts,
    )


def start_node(
    lab: NetnsLab, deployment: Deployment, node: GeneratedNode
) -> NetnsProcess:
    """Run the node's generated command from its folder, inside its namespace.

    `medledger` is this interpreter's `python -m network.cli` (the same console entry
    point, whether or not the virtualenv's bin/ is on PATH). An etcd member's start.sh
    prints no READY line; it is ready once etcd says it serves clients.
    """
    words = shlex.split(node.command)
    host = deployment.hosts[node.name]
    if words[0] != "medledger":
        ready = ETCD_READY if deployment.kind(node) == "etcd" else None
        return lab.run(host, words, cwd=node.folder, name=node.name, ready_text=ready)
    return lab.run(host, medledger_argv(node), cwd=node.folder, name=node.name)


def medledger_argv(node: GeneratedNode) -> list[str]:
    """The node's generated `medledger …` command, as this interpreter runs it."""
    words = shlex.split(node.command)
    assert words[0] == "medledger", node.command
    return [*MEDLEDGER, *words[1:]]


def network_deploy(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`medledger network deploy --generated FOLDER EXTRA…` as a process; its output.

    Raises:
        AssertionError: it exited with an error (the message holds its output).
    """
    result = subprocess.run(
        [*MEDLEDGER, "network", "deploy", "--generated", str(folder), *extra],
        capture_output=True,
        text=True,
        timeout=DEPLOY_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"network deploy exited with {result.returncode}:\n"
        f"{result.stdout}{result.stderr}"
    )
    return result


async def orderer_height(deployment: Deployment, channel: str) -> int:
    """The channel's height on its first consenter (participation API)."""
    consenter = deployment.plan.channel(channel).orderer.consenters[0]
    admin = orderer_admin(
        deployment.plan,
        deployment.crypto,
        consenter,
        f"{consenter.host}:{admin_port(consenter)}",
    )
    return (await orderer_heights(admin))[channel]


async def wait_caught_up(deployment: Deployment, channel: str) -> int:
    """Every member peer holds the orderer's newest block of `channel`; its number."""
    newest = await orderer_height(deployment, channel) - 1
    plan = deployment.plan
    for peer in _member_peers(plan, plan.channel(channel).members):
        signer = admin_identity(deployment.crypto, plan.organization_of(peer))
        await wait_for_block(_target(deployment, peer), signer, channel, newest)
    return newest


async def wait_for_block(
    target: Target, signer: SigningIdentity, channel: str, number: int
) -> None:
    """Block `number` of `channel` is on the peer (DeliverFiltered, blocking)."""
    position = SeekPosition.specified(number)
    envelope = create_seek_envelope(
        channel_id=channel,
        start=position,
        stop=position,
        behavior=BLOCK_UNTIL_READY,
        creator=signer.serialized,
        signer=signer.sign,
    )
    async with target.open() as grpc_channel:
        # Deliver is a bidirectional stream: one seek request, then read one answer.
        stream = grpc_channel.stream_stream(
            "/protos.Deliver/DeliverFiltered",
            request_serializer=None,
            response_deserializer=events_pb2.DeliverResponse.FromString,
        )(iter([envelope.SerializeToString()]), timeout=DELIVER_TIMEOUT_S)
        async for response in stream:
            assert isinstance(response, events_pb2.DeliverResponse)
            if response.WhichOneof("Type") == "filtered_block":
                assert response.filtered_block.number == number
                return
            raise AssertionError(
                f"{target.address}: no block {number} of {channel}: {response}"
            )
        raise AssertionError(f"{target.address}: Deliver closed before block {number}")


def _member_peers(plan: Plan, members: tuple[str, ...]) -> list[NodeSpec]:
    return [peer for mspid in members for peer in plan.spec.organization(mspid).peers]


def _target(deployment: Deployment, node: NodeSpec) -> Target:
    mspid = deployment.plan.organization_of(node).mspid
    tls = None
    if deployment.plan.settings.tls:
        tls = TlsFiles(root_cas=(deployment.tls_ca(mspid),))
    return Target(address=node.address, tls=tls)
