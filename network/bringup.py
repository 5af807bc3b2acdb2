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
from collections.abc import Sequence

from common.msp import load_signing_identity
from network.admin_calls import (
    admin_identity,
    join_orderer,
    join_peer,
    orderer_admin,
    orderer_heights,
    peer_admin,
    peer_heights,
)
from network.cryptogen import CryptoLayout
from network.deploy import Endpoint, chaincode_definition, commit_definition
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
from network.nodeprocs import Material, check_ports, make_material, node_tiers
from network.plan import Plan, Progress
from network.spec import NodeSpec
from network.spec_chaincodes import ChaincodeSpec
from network.spec_channels import ChannelSpec
from network.spec_network import admin_port
from network.status import summary_lines

__all__ = ["run_sequence"]


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
            (orderers, _join_orderers),
            (chaincodes, None),
            (peers, _join_peers),
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


async def _join_orderers(
    plan: Plan, material: Material, state: NetworkState, progress: Progress
) -> None:
    for channel in plan.channels:
        for consenter in channel.orderer.consenters:
            address = _address(state, consenter, "admin", _admin_address(consenter))
            admin = orderer_admin(plan, material.crypto, consenter, address)
            if channel.name in await orderer_heights(admin):
                continue
            height = await join_orderer(
                admin, material.blocks[channel.name], channel=channel.name
            )
            progress(
                f"joined {consenter.full_name} to {channel.name} (height {height})"
            )


async def _join_peers(
    plan: Plan, material: Material, state: NetworkState, progress: Progress
) -> None:
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
    """Commit each chaincode's definition on its channels unless already committed."""
    for chaincode in plan.chaincodes:
        for channel_name in chaincode.channels:
            key = f"{channel_name}/{chaincode.name}"
            done = state.chaincodes.get(key)
            if done is not None and int(done.get("sequence", 0)) >= chaincode.sequence:
                continue
            channel = plan.channel(channel_name)
            tx_id = await _commit(plan, material, state, channel, chaincode)
            state.chaincodes[key] = {
                "version": chaincode.version,
                "sequence": chaincode.sequence,
                "package_id": material.packages[chaincode.name],
                "tx_id": tx_id,
            }
            state.save()
            progress(
                f"defined chaincode {chaincode.name} {chaincode.version} (sequence "
                f"{chaincode.sequence}) on {channel_name}: tx {tx_id[:16]}…"
            )


async def _commit(
    plan: Plan,
    material: Material,
    state: NetworkState,
    channel: ChannelSpec,
    chaincode: ChaincodeSpec,
) -> str:
    """Endorsed by the first peer of every member with peers; awaited on all peers."""
    crypto = material.crypto
    members = [plan.spec.organization(mspid) for mspid in channel.members]
    with_peers = [organization for organization in members if organization.peers]
    if not with_peers:
        raise LaunchError(
            f"channel {channel.name} has no peers to run {chaincode.name}"
        )
    endorsers = [
        load_signing_identity(
            crypto.organization(o.mspid).peer(o.peers[0].name).msp_dir, mspid=o.mspid
        )
        for o in with_peers
    ]
    waits = []
    for organization in with_peers:
        for peer in organization.peers:
            address = _address(state, peer, "grpc", peer.address)
            heights = await peer_heights(peer_admin(plan, crypto, peer, address))
            waits.append(
                (_endpoint(plan, crypto, peer, address), heights.get(channel.name, 0))
            )
    orderer = channel.orderer.consenters[0]
    creator = admin_identity(crypto, with_peers[0])
    return await commit_definition(
        chaincode_definition(chaincode),
        channel=channel.name,
        creator=creator,
        endorsers=endorsers,
        orderer=_endpoint(
            plan, crypto, orderer, _address(state, orderer, "grpc", orderer.address)
        ),
        peers=waits,
        reader=creator,
    )


def _endpoint(
    plan: Plan, crypto: CryptoLayout, node: NodeSpec, address: str
) -> Endpoint:
    mspid = plan.organization_of(node).mspid
    tls_ca = crypto.organization(mspid).tlsca_cert if plan.settings.tls else None
    return Endpoint(name=node.full_name, address=address, tls_ca=tls_ca)


def _address(state: NetworkState, node: NodeSpec, listener: str, default: str) -> str:
    """The address a node's READY line reported for `listener`, else `default`."""
    record = state.nodes.get(node.full_name)
    return record.addresses.get(listener, default) if record is not None else default


def _admin_address(orderer: NodeSpec) -> str:
    host = f"[{orderer.host}]" if ":" in orderer.host else orderer.host
    return f"{host}:{admin_port(orderer)}"
