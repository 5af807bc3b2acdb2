"""One lifecycle for every medledger process: start, run, stop in order.

A process (orderer, peer, gateway) is a `Node`. `start()` opens storage and binds its
listeners, returning the addresses it really listens on (port 0 becomes a real port);
`jobs()` are coroutines that run until shutdown; `stop(grace_s)` stops accepting,
drains in-flight calls, stops background work and closes storage, in that order.

`serve(node)` runs one node as a process: SIGTERM and SIGINT request a graceful stop,
and once the listeners are bound it prints exactly one line, flushed, for launchers
and tests to wait on:

    READY {"admin": "127.0.0.1:7053", "grpc": "127.0.0.1:7050"}

`run(main)` is how a process's `main` runs that: on uvloop's event loop when uvloop is
installed (the `fast` extra; it cuts gRPC's CPU per call by 10-15 %), unless
`MEDLEDGER_EVENT_LOOP=asyncio`. With `MEDLEDGER_PROFILE=DIR` the main thread runs
under cProfile and its statistics go to `DIR/<program>-<pid>.pstats` when `main`
returns (a graceful stop).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

_LOG = logging.getLogger(__name__)

READY_PREFIX = "READY "
DEFAULT_GRACE_S = 5.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EVENT_LOOP_VARIABLE = "MEDLEDGER_EVENT_LOOP"
PROFILE_VARIABLE = "MEDLEDGER_PROFILE"

T = TypeVar("T")


class Node(Protocol):
    """A process's composition root, driven by `serve` or by an in-process test."""

    async def start(self) -> Mapping[str, str]:
        """Open storage and bind; returns listener name → "host:port"."""

    def jobs(self) -> Sequence[Coroutine[Any, Any, None]]:
        """Background coroutines that run until `stop`; empty when there are none."""

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, drain in-flight calls for up to `grace_s`, close storage.

        Must be safe to call more than once.
        """


def ready_line(addresses: Mapping[str, str]) -> str:
    """The READY line for these addresses (JSON object, keys sorted)."""
    return READY_PREFIX + json.dumps(dict(addresses), sort_keys=True)


def parse_ready_line(line: str) -> dict[str, str]:
    """The addresses of a READY line.

    Raises:
        ValueError: the line is not a READY line with a JSON object of strings.
    """
    if not line.startswith(READY_PREFIX):
        raise ValueError(f"not a READY line: {line!r}")
    addresses = json.loads(line[len(READY_PREFIX) :])
    if not isinstance(addresses, dict) or not all(
        isinstance(key, str) and isinstance(value, str)
        for key, value in addresses.items()
    ):
        raise ValueError(f"READY line does not hold a JSON object of strings: {line!r}")
    return addresses


async def serve(
    node: Node, *, grace_s: float = DEFAULT_GRACE_S, stdout: TextIO | None = None
) -> None:
    """Run `node` until SIGTERM/SIGINT (or a failing job), then stop it gracefully.

    Shutdown order: `node.stop` (stop accepting, drain, close storage) runs before the
    remaining jobs are cancelled, so in-flight work can finish.
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for number in _SIGNALS:
        loop.add_signal_handler(number, stop_requested.set)
    try:
        addresses = await node.start()
        try:
            print(ready_line(addresses), file=stdout or sys.stdout, flush=True)
            await _run_jobs(node, stop_requested, grace_s)
        finally:
            await node.stop(grace_s)
    finally:
        for number in _SIGNALS:
            loop.remove_signal_handler(number)


async def _run_jobs(node: Node, stop_requested: asyncio.Event, grace_s: float) -> None:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job) for job in node.jobs()]
        waiter = group.create_task(stop_requested.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        _LOG.info("stopping node grace_s=%s", grace_s)
        await node.stop(grace_s)
        for task in (waiter, *tasks):
            task.cancel()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the preferred event loop (see the module docstring)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        folder = os.environ.get(PROFILE_VARIABLE)
        if not folder:
            return runner.run(main)
        import cProfile

        profile = cProfile.Profile()
        try:
            return profile.runcall(runner.run, main)
        finally:
            profile.dump_stats(Path(folder) / f"{_program()}-{os.getpid()}.pstats")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed and not turned off, else None."""
    if os.environ.get(EVENT_LOOP_VARIABLE, "") == "asyncio":
        return None
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory


def _program() -> str:
    words = [Path(sys.argv[0]).stem] if sys.argv and sys.argv[0] else ["python"]
    if len(sys.argv) > 1 and sys.argv[1].isidentifier():  # a subcommand: "peer"
        words.append(sys.argv[1])
    return "-".join(words)
