"""Multi-host: the nodes of `network generate` on separate hosts, and the demo across them.

Method: every node of tests/e2e/multihost/consortium.yaml (three hospitals with a peer
and a gateway each; an orderer on a one-member etcd cluster; TLS on; the ehr
chaincode) gets a network namespace of its own with its own IP on a private /24,
linked by a bridge (tests.support.netns); the spec names those IPs as the nodes' hosts.
`network generate` writes one folder per node, and each node starts from its folder
with the command generate wrote, inside its namespace. From the root namespace, over
the bridge, as generate's READMEs tell an operator to: the orderer and the peers join
the channel (curl, `medledger channel join`) and the chaincode is deployed through
the lifecycle (`medledger chaincode install|approve|commit`). Then `medledger demo`'s
story (`network.demo.run_demo` on the generated folder) runs through each hospital's
gateway. Nothing listens on loopback that another node needs: a node that dialled
127.0.0.1 for another would find nothing there.

Skipped, with the reason, where namespaces are not permitted (not root, no `ip`, or a
kernel or container that refuses them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
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
    join_orderers,
    orderer_height,
    place_on_hosts,
    start_node,
    wait_caught_up,
)
from tests.e2e.multihost.readme import (
    join_commands,
    lifecycle_commands,
    run_command,
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
    joins: list[str] = field(default_factory=list)
    """What each join answered (orderers first, then peers)."""
    commits: list[str] = field(default_factory=list)


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
    """etcd, orderers and peers together; their README joins; gateways start while
    the top README's lifecycle commands deploy the chaincode."""
    deployment = running.deployment
    log = running.progress.append
    tiers: dict[str, list[GeneratedNode]] = {}
    for node in deployment.nodes:
        tiers.setdefault(deployment.kind(node), []).append(node)
    assert set(tiers) == {"etcd", "orderer", "peer", "gateway"}, tiers
    _start(running, [*tiers["etcd"], *tiers["orderer"], *tiers["peer"]])
    curl = shutil.which("curl") is not None
    if not curl:
        log("curl is not installed: orderers join through network.admin_calls")
        asyncio.run(join_orderers(deployment, running.joins.append))
    for node in [*(tiers["orderer"] if curl else []), *tiers["peer"]]:
        commands = join_commands(node.folder)
        assert commands, f"{node.folder / 'README.txt'} names no join command"
        for line in commands:
            running.joins.append(run_command(line, cwd=node.folder))
    for node in tiers["gateway"]:
        running.processes[node.name] = start_node(running.lab, deployment, node)
    lifecycle = lifecycle_commands(deployment.folder)
    assert [line.split()[2] for line in lifecycle] == [
        *["install"] * 3,
        *["approve"] * 3,
        "commit",
    ], lifecycle
    for line in lifecycle:
        if line.startswith("medledger chaincode commit "):
            asyncio.run(wait_caught_up(deployment, CHANNEL))
            running.commits.append(run_command(line, cwd=deployment.folder))
        else:
            log(run_command(line, cwd=deployment.folder))
    asyncio.run(wait_caught_up(deployment, CHANNEL))
    for node in tiers["gateway"]:
        running.processes[node.name].wait_ready(READY_TIMEOUT_S)


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


async def test_the_readme_steps_join_and_deploy_across_hosts(
    multihost: MultiHost,
) -> None:
    """Goal: the admin steps generate's READMEs list work across hosts. Method: the
    orderer's curl answered with the channel, each peer's `channel join` printed its
    join, the commit committed VALID, and every peer's height equals the orderer's:
    genesis, three approvals and the commit."""
    deployment = multihost.deployment
    plan = deployment.plan
    peers = [peer for org in plan.spec.organizations for peer in org.peers]

    heights = [
        (await peer_heights(peer_admin(plan, deployment.crypto, peer, peer.address)))[
            CHANNEL
        ]
        for peer in peers
    ]

    assert len(multihost.joins) == 1 + len(peers)
    assert all(CHANNEL in answer for answer in multihost.joins), multihost.joins
    assert all("joined channel" in answer for answer in multihost.joins[1:])
    assert len(multihost.commits) == 1
    assert "committed with status (VALID)" in multihost.commits[0]
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
