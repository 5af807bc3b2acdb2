"""The steps of `network up` once the plan is made: material, processes, joins, chaincode.

`run_sequence` makes (or reuses) the crypto material and genesis blocks, writes every
node's config, checks every port it is about to need, then starts the network tier by
tier — etcd members, orderers (then joins them to their channels through the
participation API), chaincode servers, peers (then joins them), gateways — and finally
commits the chaincode definitions that are not committed yet. A node counts as started
at its READY line (etcd: its health endpoint). When a step fails, every node this run
started is stopped again before the error propagates.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from common.tls import TlsFiles
from network.admin_calls import (
    admin_identity,
    join_orderer,
    join_peer,
    orderer_admin,
    orderer_heights,
    peer_admin,
    peer_heights,
)
from network.deploy import OrganizationPeers, deploy
from network.launcher import (
    LaunchError,
    NetworkState,
    NodeRecord,
    ProcessSpec,
    is_alive,
    spawn,
    stop_all,
    wait_ready,
)
from network.lifecycle_client import Target
from network.nodeprocs import Material, check_ports, make_material, node_tiers
from network.plan import Plan, Progress
from network.spec import NodeSpec
from network.spec_channels import ChannelSpec
from network.spec_network import admin_port
from network.status import summary_lines

__all__ = [
    "admin_address",
    "join_orderers",
    "join_peers",
    "orderer_target",
    "organization_peers",
    "run_sequence",
    "wait_caught_up",
]

CATCH_UP_TIMEOUT_S = 30.0


async def run_sequence(
    plan: Plan, state: NetworkState, *, ready_timeout_s: float, progress: Progress
) -> NetworkState:
    """Bring the planned network up (see the module docstring); returns the state."""
    material = await asyncio.to_thread(make_material, plan, progress)
    tiers = node_tiers(plan, material)
    check_ports([node for tier in tiers for node in tier], state)
    started: list[NodeRecord] = []
    try:
        etcd, orderers, chaincodes, peers, gateways = tiers
        for tier, after in (
            (etcd, None),
            (orderers, join_orderers),
            (chaincodes, None),
            (peers, join_peers),
            (gateways, None),
        ):
            await _start_tier(
                [node.spec for node in tier],
                state,
                started=started,
                timeout_s=ready_timeout_s,
                progress=progress,
            )
            if after is not None:
                await after(plan, material, state, progress)
        await _deploy_chaincodes(plan, material, state, progress)
    except BaseException:
        if started:
            progress("stopping the nodes this run started")
            await stop_all(started, grace_s=5.0, progress=progress)
        raise
    for line in summary_lines(plan, state, material.crypto):
        progress(line)
    return state


async def _start_tier(
    specs: Sequence[ProcessSpec],
    state: NetworkState,
    *,
    started: list[NodeRecord],
    timeout_s: float,
    progress: Progress,
) -> None:
    """Start the nodes of one tier together; return once all are ready.

    Nodes already running are left alone. Each new node is recorded in state.json as
    soon as it is spawned (so `down` finds it) and again with its READY addresses.
    """
    waiting = []
    for spec in specs:
        record = state.nodes.get(spec.name)
        if record is not None and is_alive(record):
            progress(f"already running: {spec.name} (pid {record.pid})")
            continue
        progress(f"starting {spec.kind} {spec.name}")
        record, offset = spawn(spec)
        state.nodes[spec.name] = record
        started.append(record)
        state.save()
        waiting.append(wait_ready(spec, record, offset, timeout_s=timeout_s))
    results = await asyncio.gather(*waiting, return_exceptions=True)
    for result in results:
        if isinstance(result, NodeRecord):
            state.nodes[result.name] = result
            shown = ", ".join(f"{k} {v}" for k, v in sorted(result.addresses.items()))
            progress(f"ready: {result.name} ({shown})")
    state.save()
    for result in results:
        if isinstance(result, BaseException):
            raise result


# --- joins -----------------------------------------------------------------------


async def join_orderers(
    plan: Plan, material: Material, state: NetworkState, progress: Progress
) -> None:
    """Join each channel's consenters that have not joined it (participation API)."""
    for channel in plan.channels:
        for consenter in channel.orderer.consenters:
            address = _address(state, consenter, "admin", admin_address(consenter))
            admin = orderer_admin(plan, material.crypto, consenter, address)
            if channel.name in await orderer_heights(admin):
                continue
            height = await join_orderer(
                admin, material.blocks[channel.name], channel=channel.name
            )
            progress(
                f"joined {consenter.full_name} to {channel.name} (height {height})"
            )


async def join_peers(
    plan: Plan, material: Material, state: NetworkState, progress: Progress
) -> None:
    """Join each member organisation's peers that have not joined the channel."""
    for channel in plan.channels:
        for mspid in channel.members:
            for peer in plan.spec.organization(mspid).peers:
                address = _address(state, peer, "grpc", peer.address)
                admin = peer_admin(plan, material.crypto, peer, address)
                if channel.name in await peer_heights(admin):
                    continue
                height = await join_peer(
                    admin, material.blocks[channel.name], channel=channel.name
                )
                progress(f"joined {peer.full_name} to {channel.name} (height {height})")


# --- chaincode -------------------------------------------------------------------


async def _deploy_chaincodes(
    plan: Plan, material: Material, state: NetworkState, progress: Progress
) -> None:
    """Deploy each chaincode on its channels through the lifecycle, unless done."""
    for chaincode in plan.chaincodes:
        package = material.packages[chaincode.name]
        for channel_name in chaincode.channels:
            key = f"{channel_name}/{chaincode.name}"
            done = state.chaincodes.get(key)
            if done is not None and int(done.get("sequence", 0)) >= chaincode.sequence:
                if done.get("package_id") != package.package_id:
                    progress(
                        f"chaincode {chaincode.name} changed since sequence "
                        f"{chaincode.sequence} was committed on {channel_name}; the "
                        "peers keep running the committed package until you raise "
                        "its sequence (and version) in the spec"
                    )
                continue
            channel = plan.channel(channel_name)
            caught_up = functools.partial(
                wait_caught_up, plan, material, state, channel
            )
            tx_id = await deploy(
                chaincode,
                package,
                channel=channel_name,
                organizations=organization_peers(plan, material, state, channel),
                orderer=orderer_target(plan, material, state, channel),
                progress=progress,
                caught_up=caught_up,
            )
            await caught_up()
            state.chaincodes[key] = {
                "version": chaincode.version,
                "sequence": chaincode.sequence,
                "package_id": package.package_id,
                "tx_id": tx_id or "",
            }
            state.save()
            if tx_id is not None:
                progress(
                    f"committed chaincode {chaincode.name} {chaincode.version} "
                    f"(sequence {chaincode.sequence}) on {channel_name}: "
                    f"tx {tx_id[:16]}…"
                )


def organization_peers(
    plan: Plan, material: Material, state: NetworkState, channel: ChannelSpec
) -> list[OrganizationPeers]:
    """The channel's members that have peers, with their admins and peer targets."""
    found = []
    for mspid in channel.members:
        organization = plan.spec.organization(mspid)
        if not organization.peers:
            continue
        found.append(
            OrganizationPeers(
                mspid=mspid,
                admin=admin_identity(material.crypto, organization),
                peers=tuple(
                    _target(plan, material, state, peer) for peer in organization.peers
                ),
            )
        )
    return found


def orderer_target(
    plan: Plan, material: Material, state: NetworkState, channel: ChannelSpec
) -> Target:
    """Where lifecycle transactions of `channel` are broadcast: its first consenter."""
    return _target(plan, material, state, channel.orderer.consenters[0])


def _target(
    plan: Plan, material: Material, state: NetworkState, node: NodeSpec
) -> Target:
    mspid = plan.organization_of(node).mspid
    tls = None
    if plan.settings.tls:
        tls = TlsFiles(root_cas=(material.crypto.organization(mspid).tlsca_cert,))
    return Target(address=_address(state, node, "grpc", node.address), tls=tls)


async def wait_caught_up(
    plan: Plan, material: Material, state: NetworkState, channel: ChannelSpec
) -> None:
    """Every member peer has the channel's newest block (so each one can endorse)."""
    admins = []
    for mspid in channel.members:
        for peer in plan.spec.organization(mspid).peers:
            address = _address(state, peer, "grpc", peer.address)
            admins.append(peer_admin(plan, material.crypto, peer, address))
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while True:
        heights = [(await peer_heights(admin)).get(channel.name, 0) for admin in admins]
        if not heights or min(heights) == max(heights):
            return
        if time.monotonic() > deadline:
            raise LaunchError(
                f"the peers of {channel.name} did not catch up within "
                f"{CATCH_UP_TIMEOUT_S:.0f}s (heights {heights})"
            )
        await asyncio.sleep(0.1)


def _address(state: NetworkState, node: NodeSpec, listener: str, default: str) -> str:
    """The address a node's READY line reported for `listener`, else `default`."""
    record = state.nodes.get(node.full_name)
    return record.addresses.get(listener, default) if record is not None else default


def admin_address(orderer: NodeSpec) -> str:
    """The orderer's participation API address from the spec (host and admin port)."""
    host = f"[{orderer.host}]" if ":" in orderer.host else orderer.host
    return f"{host}:{admin_port(orderer)}"
