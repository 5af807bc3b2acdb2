"""The process supervisor of a local network: start nodes detached, wait for READY, stop.

`spawn(spec)` starts one node (`medledger orderer|peer|gateway start -c FILE`, an etcd
member, a chaincode server) in a session of its own with stdout and stderr appended to
its log file, so it outlives the command that started it. `wait_ready` reads the log
from where this start began until the node's READY line (`common.node`), its health
check passes, the process exits, or the deadline passes; every failure names the node
and shows the end of its log. `stop` sends SIGTERM to the node's process group and
SIGKILL after a grace period, then kills any descendant that survived (chaincode
processes a peer started in groups of their own). `check_port_free` fails clearly when
another process holds a port a node needs.

The records these functions return are kept in WORKDIR/state.json (`network.netstate`,
whose names this module re-exports).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.node import READY_PREFIX, parse_ready_line
from network.netstate import (
    STATE_FILE,
    LaunchError,
    NetworkState,
    NodeKind,
    NodeRecord,
)

__all__ = [
    "DEFAULT_GRACE_S",
    "DEFAULT_READY_TIMEOUT_S",
    "STATE_FILE",
    "LaunchError",
    "NetworkState",
    "NodeKind",
    "NodeRecord",
    "ProcessSpec",
    "check_port_free",
    "is_alive",
    "log_tail",
    "spawn",
    "stop",
    "stop_all",
    "wait_ready",
]

DEFAULT_READY_TIMEOUT_S = 60.0
DEFAULT_GRACE_S = 10.0
LOG_TAIL_LINES = 30
_POLL_S = 0.05
_READ_CHUNK_BYTES = 64 * 1024

HealthCheck = Callable[[], Awaitable[bool]]


STOP_ORDER = (
    NodeKind.GATEWAY,
    NodeKind.PEER,
    NodeKind.CHAINCODE,
    NodeKind.ORDERER,
    NodeKind.ETCD,
)


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """How to start one node and know it is ready.

    With `health` None the node is ready at its READY line; otherwise (etcd, which
    prints none) when `health()` returns true.
    """

    name: str
    kind: NodeKind
    argv: tuple[str, ...]
    log: Path
    config: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    addresses: Mapping[str, str] = field(default_factory=dict)
    """Known in advance (nodes without a READY line); merged with READY's."""
    health: HealthCheck | None = None


def spawn(spec: ProcessSpec) -> tuple[NodeRecord, int]:
    """Start the node detached; returns its record and the log offset it starts at.

    Raises:
        LaunchError: the program cannot be started (not found, not executable).
    """
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with spec.log.open("ab") as log:
        log.write(
            f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode()
        )
        offset = log.tell()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(spec.log), os.O_WRONLY | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
    try:
        pid = os.posix_spawnp(
            spec.argv[0],
            list(spec.argv),
            environment,
            file_actions=actions,
            setsid=True,
        )
    except OSError as error:
        raise LaunchError(
            f"{spec.name}: cannot start {spec.argv[0]}: {error.strerror}"
        ) from None
    record = NodeRecord(
        name=spec.name,
        kind=spec.kind,
        pid=pid,
        start_ticks=_start_ticks(pid),
        argv=spec.argv,
        log=str(spec.log),
        config=None if spec.config is None else str(spec.config),
        addresses=dict(spec.addresses),
        started_at=time.time(),
    )
    return record, offset


async def wait_ready(
    spec: ProcessSpec,
    record: NodeRecord,
    offset: int,
    *,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> NodeRecord:
    """Wait until the node is ready; returns its record with the READY addresses.

    Raises:
        LaunchError: the process exited, or was not ready within `timeout_s`; the
            message holds the end of its log. A node that did not get ready is killed.
    """
    deadline = time.monotonic() + timeout_s
    reader = _LogReader(spec.log, offset)
    while True:
        addresses = reader.ready_addresses()
        if addresses is not None and spec.health is None:
            return _with_addresses(record, addresses)
        if spec.health is not None and await _healthy(spec.health):
            return record
        exit_status = _reap(record.pid)
        if exit_status is not None:
            raise LaunchError(
                f"{spec.name} exited ({_describe_exit(exit_status)}) before it was "
                f"ready; the end of {spec.log}:\n{log_tail(spec.log, offset=offset)}"
            )
        if time.monotonic() > deadline:
            _kill_group(record.pid)
            await _wait_gone(record, DEFAULT_GRACE_S)
            raise LaunchError(
                f"{spec.name} was not ready within {timeout_s:.0f}s (stopped it); the "
                f"end of {spec.log}:\n{log_tail(spec.log, offset=offset)}"
            )
        await asyncio.sleep(_POLL_S)


def is_alive(record: NodeRecord) -> bool:
    """Whether the recorded process still runs (and is the same process)."""
    _reap(record.pid)
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    stat = _proc_stat(record.pid)
    if stat is None:
        return True
    state, ticks = stat
    if state == "Z":
        return False
    return record.start_ticks is None or ticks == record.start_ticks


async def stop(record: NodeRecord, *, grace_s: float = DEFAULT_GRACE_S) -> bool:
    """Stop the node: SIGTERM its group, SIGKILL after `grace_s`; True if it had to be killed.

    Descendants outside its group (processes it started in sessions or groups of their
    own) that are still alive once it has gone are killed too.
    """
    if not is_alive(record):
        return False
    # Noted with their start times: by the time they are signalled they may have
    # exited and their PIDs gone to unrelated processes.
    descendants = [(pid, _start_ticks(pid)) for pid in _descendants(record.pid)]
    _signal_group(record.pid, signal.SIGTERM)
    killed = False
    if not await _wait_gone(record, grace_s):
        _kill_group(record.pid)
        killed = True
        await _wait_gone(record, grace_s)
    for pid, ticks in descendants:
        await _stop_leftover(pid, ticks, grace_s)
    return killed


async def stop_all(
    records: Sequence[NodeRecord],
    *,
    grace_s: float = DEFAULT_GRACE_S,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Stop nodes tier by tier (`STOP_ORDER`), the nodes of a tier in parallel."""
    for kind in STOP_ORDER:
        tier = [record for record in records if record.kind is kind]
        if not tier:
            continue
        results = await asyncio.gather(
            *(stop(record, grace_s=grace_s) for record in tier)
        )
        if progress is not None:
            for record, killed in zip(tier, results, strict=True):
                how = "killed after the grace period" if killed else "stopped"
                progress(f"{how}: {record.name} (pid {record.pid})")


def check_port_free(node: str, what: str, host: str, port: int) -> None:
    """Fail clearly when something already listens on host:port.

    Raises:
        LaunchError: naming the node, the port and what to do.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LaunchError(
                    f"{node}: its {what} port {port} on {host} is already in use by "
                    "another process; stop that process or change the port in the "
                    "consortium file"
                ) from None
            raise LaunchError(
                f"{node}: cannot listen on {host}:{port} ({what}): {error.strerror}"
            ) from None


def log_tail(path: Path, *, lines: int = LOG_TAIL_LINES, offset: int = 0) -> str:
    """The last `lines` lines of a log from `offset` on (empty when unreadable)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _LogReader:
    """Reads a growing log file from an offset, line by line, looking for READY."""

    def __init__(self, path: Path, offset: int) -> None:
        self._path = path
        self._offset = offset
        self._partial = b""

    def ready_addresses(self) -> dict[str, str] | None:
        try:
            with self._path.open("rb") as log:
                log.seek(self._offset)
                data = log.read(_READ_CHUNK_BYTES)
        except OSError:
            return None
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            if line.startswith(READY_PREFIX):
                return _parse_ready(line)
        return None


def _parse_ready(line: str) -> dict[str, str]:
    """READY's addresses: a JSON object (our nodes) or one address (chaincode servers)."""
    try:
        return parse_ready_line(line)
    except ValueError:
        return {"grpc": line[len(READY_PREFIX) :].strip()}


def _with_addresses(record: NodeRecord, addresses: Mapping[str, str]) -> NodeRecord:
    merged = {**record.addresses, **addresses}
    return NodeRecord(**{**asdict(record), "kind": record.kind, "addresses": merged})


async def _healthy(health: HealthCheck) -> bool:
    try:
        async with asyncio.timeout(2.0):
            return await health()
    except (TimeoutError, OSError):
        return False


def _reap(pid: int) -> int | None:
    """Collect our child's exit status if it has exited; None if running (or not ours)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if done == pid else None


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, None where /proc is missing."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _descendants(pid: int) -> list[int]:
    """Every descendant PID (Linux /proc children lists; empty elsewhere)."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 10_000:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                children = [int(child) for child in task.read_text().split()]
                found.extend(children)
                pending.extend(children)
    return found


async def _wait_gone(record: NodeRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_alive(record):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


async def _stop_leftover(pid: int, ticks: int | None, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`, a descendant noted before its node
    stopped, for as long as `pid` is still that process (started at `ticks`).

    A descendant usually exits with its node (a peer stops its chaincodes), and its
    PID may then be reused: signalling it unchecked could stop an unrelated process.
    """
    if not _same_process(pid, ticks):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not _same_process(pid, ticks):
                return
            await asyncio.sleep(_POLL_S)
        if _same_process(pid, ticks):
            os.kill(pid, signal.SIGKILL)


def _same_process(pid: int, ticks: int | None) -> bool:
    """Whether `pid` is still the live process that started at `ticks` (a zombie has
    exited: there is nothing left to stop)."""
    stat = _proc_stat(pid)
    return (
        ticks is not None and stat is not None and stat[0] != "Z" and stat[1] == ticks
    )


def _signal_group(pid: int, number: signal.Signals) -> None:
    """Signal the node's process group (it leads its own session), else the process."""
    try:
        os.killpg(pid, number)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)
    except PermissionError:
        return


def _kill_group(pid: int) -> None:
    _signal_group(pid, signal.SIGKILL)
    _reap(pid)
