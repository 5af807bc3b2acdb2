"""`medledger network up` and `down`: the whole consortium of a spec on this machine.

The sequence, each step printing a progress line:

    read and check the spec (all sections, every port) ── nothing starts on an error
    crypto material ─ genesis block per channel ─ per-node configs   (WORKDIR, reused)
    etcd members ─ orderers ─ join orderers to channels (participation API)
    chaincode servers ─ peers ─ join peers to channels ─ gateways
    chaincode definitions committed ─ a table of endpoints and identities

Everything lives in WORKDIR (default ``./.medledger``; layout in `network.plan`).
Material is made once: an `up` after `down` reuses the crypto, the genesis blocks and
the ledgers, starts only nodes that are not running, joins only channels not joined
and commits only definitions not yet committed, so it resumes the same network.
`fresh` stops it and wipes WORKDIR first.

A channel the spec orders with etcd uses etcd when `etcd` is installed; otherwise (or
with `solo`) it is ordered by solo on its first consenter, decided at the first `up`
and kept in state.json. If a node fails to start, the nodes this `up` started are
stopped again and the error shows the end of the node's log.

`bring_up` and `bring_down` are the in-process entry points (for a pytest fixture);
`up` and `down` their synchronous forms for the command line.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from network.bringup import run_sequence
from network.launcher import (
    DEFAULT_GRACE_S,
    DEFAULT_READY_TIMEOUT_S,
    STATE_FILE,
    LaunchError,
    NetworkState,
    is_alive,
    stop_all,
)
from network.plan import Progress, decide_orderer_types, make_plan
from network.spec import ConsortiumSpec, load_spec

__all__ = [
    "DEFAULT_SPEC",
    "DEFAULT_WORKDIR",
    "UpOptions",
    "bring_down",
    "bring_up",
    "down",
    "up",
]

DEFAULT_SPEC = Path(__file__).parent / "examples" / "hospital-consortium.yaml"
DEFAULT_WORKDIR = Path(".medledger")


@dataclass(frozen=True, kw_only=True)
class UpOptions:
    """What `up` starts and where; the defaults are the command line's."""

    spec_path: Path = DEFAULT_SPEC
    workdir: Path = DEFAULT_WORKDIR
    fresh: bool = False
    solo: bool = False
    """Order etcd channels with solo even when etcd is installed."""
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    python: str = sys.executable


def up(options: UpOptions, progress: Progress = print) -> NetworkState:
    """`bring_up` for synchronous callers (the command line)."""
    return asyncio.run(bring_up(options, progress))


def down(workdir: Path, progress: Progress = print) -> NetworkState:
    """`bring_down` for synchronous callers."""
    return asyncio.run(bring_down(workdir, progress))


async def bring_up(options: UpOptions, progress: Progress = print) -> NetworkState:
    """Start (or resume) the network of `options.spec_path` in `options.workdir`.

    Raises:
        ConfigError: the spec is wrong (nothing was started).
        LaunchError: a port is taken (nothing was started), or a node or step failed
            (the nodes this call started were stopped again).
    """
    spec = load_spec(options.spec_path)
    workdir = options.workdir.resolve()
    if options.fresh:
        await _wipe(workdir, progress)
    state = NetworkState.load(workdir)
    _check_same_network(state, spec, workdir)
    types = state.orderer_types or decide_orderer_types(
        spec.channels, solo=options.solo, progress=progress
    )
    plan = make_plan(spec, workdir=workdir, orderer_types=types, python=options.python)
    state.consortium = spec.name
    state.spec = str(options.spec_path.resolve())
    state.tls = plan.settings.tls
    state.orderer_types = dict(types)
    state.save()
    return await run_sequence(
        plan, state, ready_timeout_s=options.ready_timeout_s, progress=progress
    )


async def bring_down(
    workdir: Path, progress: Progress = print, *, grace_s: float = DEFAULT_GRACE_S
) -> NetworkState:
    """Stop every node recorded in `workdir` (clients first); the ledgers stay."""
    state = await asyncio.to_thread(_load_state, workdir)
    running = [record for record in state.nodes.values() if is_alive(record)]
    if not running:
        progress(f"no node of {workdir} is running")
        return state
    await stop_all(running, grace_s=grace_s, progress=progress)
    progress(f"network {state.consortium} stopped; its ledgers stay in {workdir}")
    return state


def _check_same_network(
    state: NetworkState, spec: ConsortiumSpec, workdir: Path
) -> None:
    if state.consortium and state.consortium != spec.name:
        raise LaunchError(
            f"{workdir} holds the network of consortium {state.consortium!r}, not "
            f"{spec.name!r}; use another --workdir, or --fresh to replace it"
        )


async def _wipe(workdir: Path, progress: Progress) -> None:
    """Stop the network of `workdir` and delete the folder (only a medledger workdir)."""
    if not _is_workdir(workdir):
        raise LaunchError(
            f"{workdir} is not empty and not a medledger work directory (no "
            f"{STATE_FILE}); --fresh deletes the work directory, so choose another"
        )
    await bring_down(workdir, progress)
    if await asyncio.to_thread(_remove, workdir):
        progress(f"removed {workdir}")


def _load_state(workdir: Path) -> NetworkState:
    return NetworkState.load(workdir.absolute())


def _is_workdir(workdir: Path) -> bool:
    """Missing, empty, or holding a state file."""
    if not workdir.exists():
        return True
    return (workdir / STATE_FILE).exists() or not any(workdir.iterdir())


def _remove(workdir: Path) -> bool:
    if not workdir.exists():
        return False
    shutil.rmtree(workdir)
    return True
