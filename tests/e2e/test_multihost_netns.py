"""Multi-host: the nodes of `network generate` on separate hosts, and the demo across them.

Method: every node of tests/e2e/multihost/consortium.yaml (three hospitals with a peer
and a gateway each; an orderer on a one-member etcd cluster; TLS on; the ehr
chaincode) gets a network namespace of its own with its own IP on a private /24,
linked by a bridge (tests.support.netns); the spec names those IPs as the nodes' hosts.
`network generate` writes one folder per node, and each node starts from its folder
with the command generate wrote, inside its namespace. From the root namespace, over
the bridge, one command does the admin steps generate's READMEs list: `medledger
network deploy --generated DIR` joins the orderer and the peers to the channel and
deploys the chaincode through the lifecycle (run twice: the second run changes
nothing). Then `medledger demo`'s
story (`network.demo.run_demo` on the generated folder) runs through each hospital's
gateway. Nothing listens on loopback that another node needs: a node that dialled
127.0.0.1 for another would find nothing there.

Skipped, with the reason, where namespaces are not permitted (not root, no `ip`, or a
kernel or container that refuses them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from network.admin_calls import peer_admin, peer_heights
from network.demo import run_demo
from network.generate import GeneratedNode
from tests.e2e.multihost.deployment import (
    Deployment,
    generate_deployment,
    network_deploy,
    orderer_height,
    place_on_hosts,
    start_node,
    wait_caught_up,
)
from tests.support.netns import (
    NetnsLab,
    NetnsProcess,
    netns_lab,
    sweep_stale,
    unavailable_reason,
)

pytestmark = pytest.mark.e2e

READY_TIMEOUT_S = 60.0
CHANNEL = "medical-records"


@dataclass
class MultiHost:
    """The running deployment: its namespaces, folders and processes."""

    lab: NetnsLab
    deployment: Deployment
    processes: dict[str, NetnsProcess]
    progress: list[str] = field(default_factory=list)
    deploys: list[str] = field(default_factory=list)
    """What each `network deploy` printed (the first run, then the second)."""


@pytest.fixture(scope="module")
def multihost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHost]:
    folder = tmp_path_factory.mktemp("multihost")
    with netns_lab(folder) as lab:
        print(f"netns lab {lab.id}: {lab.subnet}, logs in {folder / 'logs'}")
        spec, hosts = place_on_hosts(lab, folder)
        progress: list[str] = []
        deployment = generate_deployment(
            spec, folder / "generated", hosts, progress.append
        )
        running = MultiHost(lab, deployment, {}, progress)
        try:
            _bring_up(running)
        except BaseException:
            print(*progress, sep="\n")
            raise
        yield running
        for kind in ("gateway", "peer", "orderer", "etcd"):
            lab.stop(
                [
                    process
                    for name, process in running.processes.items()
                    if deployment.kind(deployment.node(name)) == kind
                ]
            )


def _bring_up(running: MultiHost) -> None:
    """etcd, orderers and peers together; `network deploy --no-gateways` (twice)
    joins the channel and deploys the chaincode; then the gateways (started after the
    joins, they need not wait for a peer they found unjoined to be asked again)."""
    deployment = running.deployment
    tiers: dict[str, list[GeneratedNode]] = {}
    for node in deployment.nodes:
        tiers.setdefault(deployment.kind(node), []).append(node)
    assert set(tiers) == {"etcd", "orderer", "peer", "gateway"}, tiers
    _start(running, [*tiers["etcd"], *tiers["orderer"], *tiers["peer"]])
    for _ in range(2):
        running.deploys.append(
            network_deploy(deployment.folder, "--no-gateways").stdout
        )
    asyncio.run(wait_caught_up(deployment, CHANNEL))
    _start(running, tiers["gateway"])


def _start(running: MultiHost, nodes: list[GeneratedNode]) -> None:
    for node in nodes:
        process = start_node(running.lab, running.deployment, node)
        running.processes[process.name] = process
    for process in list(running.processes.values()):
        process.wait_ready(READY_TIMEOUT_S)


def test_every_node_runs_in_a_namespace_of_its_own(multihost: MultiHost) -> None:
    """Goal: separate hosts. Method: each node's READY address is its namespace's IP
    and the port of the spec; each process's network namespace (the etcd member's
    too) differs from every other's and from the test's."""
    spec = multihost.deployment.plan.spec
    expected = {
        node.full_name: node.address
        for organization in spec.organizations
        for node in organization.nodes
    } | {
        gateway.full_name: gateway.address
        for organization in spec.organizations
        for gateway in organization.gateways
    }

    found = {
        name: process.addresses["grpc"]
        for name, process in multihost.processes.items()
        if process.addresses
    }

    assert found == expected
    for name, address in found.items():
        assert address.startswith(multihost.deployment.hosts[name].ip + ":")
    namespaces = {
        name: os.stat(f"/proc/{process.pid}/ns/net").st_ino
        for name, process in multihost.processes.items()
    }
    assert "etcd0" in namespaces
    assert len(set(namespaces.values())) == len(namespaces)
    assert os.stat("/proc/self/ns/net").st_ino not in namespaces.values()


async def test_network_deploy_joins_and_deploys_across_hosts(
    multihost: MultiHost,
) -> None:
    """Goal: one command does the admin steps across hosts. Method: the first `network
    deploy` joined the orderer and each peer, and committed the chaincode; the second
    changed nothing; every peer's height equals the orderer's: genesis, three
    approvals and the commit."""
    deployment = multihost.deployment
    plan = deployment.plan
    peers = [peer for org in plan.spec.organizations for peer in org.peers]

    heights = [
        (await peer_heights(peer_admin(plan, deployment.crypto, peer, peer.address)))[
            CHANNEL
        ]
        for peer in peers
    ]

    first, second = multihost.deploys
    joined = [line for line in first.splitlines() if line.startswith("joined ")]
    assert len(joined) == 1 + len(peers), first
    assert all(CHANNEL in line for line in joined), first
    assert "deployed chaincode ehr 1.0 (sequence 1)" in first
    assert second.splitlines()[-1].startswith("nothing to do"), second
    assert heights == [5, 5, 5]
    assert await orderer_height(deployment, CHANNEL) == 5


async def test_the_demo_passes_across_hosts(multihost: MultiHost) -> None:
    """Goal: `medledger demo`'s story across hosts (issue 8). Method: `run_demo` on
    generate's output folder, from the root namespace through the gateways' IPs: all
    eight steps go as expected (B's peer got the plaintext from A's peer over the
    bridge; C is refused at endorsement, so nothing is ordered), each transaction
    commits in a later block than the one before, and afterwards every peer and the
    orderer are at the same height."""
    lines: list[str] = []
    deployment = multihost.deployment

    steps = run_demo(generated=deployment.folder, out=lines.append)

    assert [step.passed for step in steps] == [True] * 8, "\n".join(lines)
    committed = [step for step in steps if step.block is not None]
    assert [step.number for step in committed] == [1, 2, 3, 4, 7]
    blocks = [step.block for step in steps if step.block is not None]
    assert blocks == sorted(set(blocks)), blocks
    assert all(step.tx_id for step in committed)
    assert "refused" in steps[4].outcome, steps[4]
    newest = await wait_caught_up(deployment, CHANNEL)
    assert newest == blocks[-1]


def test_the_lab_leaves_nothing_behind(tmp_path: Path) -> None:
    """Goal: teardown always cleans up. Method: a lab with two hosts and a process
    that ignores SIGTERM in one of them; after closing, its namespaces, its root
    link and its process are gone."""
    with netns_lab(tmp_path, stop_grace_s=0.2) as lab:
        host = lab.add_host("stubborn")
        lab.add_host("idle")
        process = lab.run(
            host,
            [
                sys.executable,
                "-c",
                "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                'print(\'READY {"grpc": "-"}\', flush=True); signal.pause()',
            ],
            cwd=tmp_path,
        )
        process.wait_ready(10.0)
        names = [lab.hub, *(h.netns for h in lab.hosts.values())]
        root_link = lab.root_link
        pid = process.pid

    assert process.popen.returncode is not None
    assert not Path(f"/proc/{pid}").exists()
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert [name for name in names if name in listed] == []
    assert not Path(f"/sys/class/net/{root_link}").exists()


def test_without_root_the_lab_skips_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Goal: where namespaces are not permitted the test says why instead of failing."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    skipped = pytest.raises(pytest.skip.Exception, match=r"need root \(running as uid")
    with skipped, netns_lab(tmp_path):
        pytest.fail("the lab opened without root")


def test_a_dead_runs_namespaces_are_swept(tmp_path: Path) -> None:
    """Goal: a run killed before its teardown leaves nothing for long. Method: a
    namespace named after a process that has exited, with a process still inside;
    `sweep_stale` kills that process and deletes the namespace, and leaves a
    namespace of a live process alone."""
    if unavailable_reason() is not None:
        pytest.skip(str(unavailable_reason()))
    exited = subprocess.Popen(["true"])
    exited.wait()
    dead = f"mltest-{exited.pid}-abcdef-0"
    alive = f"mltest-{os.getpid()}-abcdef-0"
    for name in (dead, alive):
        subprocess.run(["ip", "netns", "add", name], check=True)
    left = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            dead,
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
        ]
    )
    try:
        swept = sweep_stale("mltest")

        assert swept == [dead]
        assert left.wait(10) != 0
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
        assert dead not in listed
        assert alive in listed
    finally:
        left.kill()
        left.wait()
        for name in (dead, alive):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
