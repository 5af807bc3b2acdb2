"""What runs in a local network, for people: the table `up` prints, `status`, `logs`.

`summary_lines` is the table of endpoints and identities `up` ends with.
`network_status` reads WORKDIR/state.json, checks which processes are alive and asks
the live orderers and peers for their channels' heights (`status_lines` formats it);
`find_logs` and `follow` serve `network logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from common.errors import MedledgerError
from network.admin_calls import orderer_admin, orderer_heights, peer_admin, peer_heights
from network.cryptogen import CryptoLayout, crypto_layout
from network.launcher import LaunchError, NetworkState, NodeKind, NodeRecord, is_alive
from network.plan import Plan, load_plan

__all__ = [
    "NodeStatus",
    "find_logs",
    "follow",
    "network_status",
    "status_lines",
    "summary_lines",
]

STATUS_TIMEOUT_S = 10.0

_KIND_ORDER = {
    NodeKind.ETCD: 0,
    NodeKind.ORDERER: 1,
    NodeKind.CHAINCODE: 2,
    NodeKind.PEER: 3,
    NodeKind.GATEWAY: 4,
}


@dataclass(frozen=True)
class NodeStatus:
    """One recorded node: alive or not, and (orderers, peers) its channel heights."""

    record: NodeRecord
    alive: bool
    heights: dict[str, int] = field(default_factory=dict)
    problem: str = ""


def summary_lines(plan: Plan, state: NetworkState, crypto: CryptoLayout) -> list[str]:
    """The table `up` prints: endpoints, channels, chaincodes, identities, logs."""
    workdir = _shown(plan.workdir)
    tls = "TLS on" if plan.settings.tls else "TLS off (plaintext)"
    lines = [
        "",
        f"network {plan.spec.name} is up ({tls}); work directory {workdir}",
        "",
        *_node_table(_sorted(list(state.nodes.values()))),
        "",
    ]
    for channel in plan.channels:
        consenters = ", ".join(c.full_name for c in channel.orderer.consenters)
        lines.append(
            f"channel {channel.name}: members {', '.join(channel.members)}; "
            f"ordered by {channel.orderer.type} ({consenters})"
        )
    for key, deployed in sorted(state.chaincodes.items()):
        channel_name, name = key.split("/", 1)
        lines.append(
            f"chaincode {name} {deployed['version']} (sequence {deployed['sequence']}) "
            f"on {channel_name}"
        )
    lines += ["", "identities (MSP folders; TLS pairs in each tls/ next to msp/):"]
    for organization, layout in zip(
        plan.spec.organizations, crypto.organizations, strict=True
    ):
        users = ", ".join(user.name for user in organization.users)
        lines.append(
            f"  {organization.mspid}: {_shown(layout.root / 'users')}/  ({users})"
        )
        lines.append(f"    TLS CA: {_shown(layout.tlsca_cert)}")
    lines += [
        "",
        f"logs: {_shown(plan.workdir / 'logs')}/  (medledger network logs NODE [-f])",
        "stop: medledger network down"
        + (
            ""
            if plan.workdir == Path(".medledger").resolve()
            else f" --workdir {workdir}"
        ),
    ]
    return lines


async def network_status(workdir: Path) -> tuple[NetworkState, list[NodeStatus]]:
    """The recorded nodes, whether each is alive, and live nodes' channel heights."""
    state = NetworkState.load(workdir)
    records = _sorted(list(state.nodes.values()))
    statuses = await asyncio.gather(*(_status(state, record) for record in records))
    return state, list(statuses)


def status_lines(state: NetworkState, statuses: Sequence[NodeStatus]) -> list[str]:
    """`network status` output: one line per node, then the channels' heights."""
    if not statuses:
        return [
            f"no network in {_shown(state.workdir)} (start one with: medledger network up)"
        ]
    alive = sum(1 for status in statuses if status.alive)
    lines = [
        f"network {state.consortium} in {_shown(state.workdir)}: "
        f"{alive} of {len(statuses)} nodes running",
        "",
        f"{'NODE':<40} {'KIND':<9} {'STATE':<8} {'PID':>7}  ADDRESSES",
    ]
    for status in statuses:
        record = status.record
        addresses = ", ".join(f"{k} {v}" for k, v in sorted(record.addresses.items()))
        lines.append(
            f"{record.name:<40} {record.kind:<9} "
            f"{'running' if status.alive else 'stopped':<8} {record.pid:>7}  {addresses}"
        )
        if status.heights:
            heights = ", ".join(f"{c} {h}" for c, h in sorted(status.heights.items()))
            lines.append(f"{'':<40} heights: {heights}")
        if status.problem:
            lines.append(f"{'':<40} {status.problem}")
    return lines


def find_logs(state: NetworkState, node: str | None) -> list[tuple[str, Path]]:
    """The log files of the nodes matching `node` (all without it).

    `node` matches a full name, its first label (``peer0`` when only one node has it)
    or any unique part of a name.

    Raises:
        LaunchError: nothing or several nodes match.
    """
    records = _sorted(list(state.nodes.values()))
    if node is None:
        return [(record.name, Path(record.log)) for record in records]
    for test in (
        lambda name: name == node,
        lambda name: name.split(".")[0] == node,
        lambda name: node in name,
    ):
        matches = [record for record in records if test(record.name)]
        if len(matches) == 1:
            return [(matches[0].name, Path(matches[0].log))]
        if len(matches) > 1:
            names = ", ".join(record.name for record in matches)
            raise LaunchError(f"{node!r} matches several nodes: {names}")
    known = ", ".join(record.name for record in records) or "none"
    raise LaunchError(f"no node {node!r} in {state.workdir} (nodes: {known})")


def follow(path: Path, *, out: TextIO = sys.stdout, poll_s: float = 0.2) -> None:
    """Print the log and then what is appended to it, until interrupted."""
    import time

    with path.open("rb") as log:
        while True:
            data = log.read()
            if data:
                out.write(data.decode(errors="replace"))
                out.flush()
            else:
                time.sleep(poll_s)


async def _status(state: NetworkState, record: NodeRecord) -> NodeStatus:
    if not is_alive(record):
        return NodeStatus(record, alive=False)
    try:
        heights = await _heights(state, record)
    except (MedledgerError, OSError, TimeoutError) as error:
        return NodeStatus(record, alive=True, problem=f"not answering: {error}")
    return NodeStatus(record, alive=True, heights=heights)


async def _heights(state: NetworkState, record: NodeRecord) -> dict[str, int]:
    if record.kind not in (NodeKind.ORDERER, NodeKind.PEER):
        return {}
    plan = load_plan(state)
    found = plan.find_node(record.name)
    if found is None:
        return {}
    _organization, node = found
    crypto = crypto_layout(plan.spec, plan.crypto_dir)
    async with asyncio.timeout(STATUS_TIMEOUT_S):
        if record.kind is NodeKind.ORDERER:
            address = record.addresses.get("admin", "")
            return await orderer_heights(orderer_admin(plan, crypto, node, address))
        address = record.addresses.get("grpc", node.address)
        return await peer_heights(peer_admin(plan, crypto, node, address))


def _node_table(records: Sequence[NodeRecord]) -> list[str]:
    lines = [f"{'NODE':<40} {'KIND':<9} {'PID':>7}  ADDRESSES"]
    for record in records:
        addresses = ", ".join(f"{k} {v}" for k, v in sorted(record.addresses.items()))
        lines.append(f"{record.name:<40} {record.kind:<9} {record.pid:>7}  {addresses}")
    return lines


def _sorted(records: list[NodeRecord]) -> list[NodeRecord]:
    return sorted(records, key=lambda record: (_KIND_ORDER[record.kind], record.name))


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is below it."""
    with contextlib.suppress(ValueError):
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    return str(path)
