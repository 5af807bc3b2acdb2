"""Unit tests for network.launcher: detached processes, READY lines, stopping, state.json.

Method: tiny real processes (`python -c ...`) stand in for nodes: one prints a READY
line and waits, one exits at once, one never gets ready, one ignores SIGTERM. The
launcher must report each case with the node's name and log, and leave nothing behind.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from network.launcher import (
    LaunchError,
    NetworkState,
    NodeKind,
    NodeRecord,
    ProcessSpec,
    check_port_free,
    is_alive,
    spawn,
    stop,
    stop_all,
    wait_ready,
)

SERVE = (
    "import signal, sys, time\n"
    "print('booting', flush=True)\n"
    'print(\'READY {"grpc": "127.0.0.1:7051"}\', flush=True)\n'
    "signal.sigwait([signal.SIGTERM])\n"
)
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('READY {}', flush=True)\n"
    "time.sleep(60)\n"
)


def node(tmp_path: Path, script: str, name: str = "peer0.example.com") -> ProcessSpec:
    return ProcessSpec(
        name=name,
        kind=NodeKind.PEER,
        argv=(sys.executable, "-c", script),
        log=tmp_path / "logs" / f"{name}.log",
    )


async def test_ready_line_gives_the_addresses_and_stop_ends_the_process(
    tmp_path: Path,
) -> None:
    spec = node(tmp_path, SERVE)
    record, offset = spawn(spec)

    ready = await wait_ready(spec, record, offset, timeout_s=10)

    assert ready.addresses == {"grpc": "127.0.0.1:7051"}
    assert is_alive(ready)
    assert await stop(ready, grace_s=10) is False
    assert not is_alive(ready)


async def test_a_chaincode_server_ready_line_is_one_address(tmp_path: Path) -> None:
    spec = node(tmp_path, "print('READY 127.0.0.1:9999', flush=True); input()")
    record, offset = spawn(spec)
    try:
        ready = await wait_ready(spec, record, offset, timeout_s=10)
        assert ready.addresses == {"grpc": "127.0.0.1:9999"}
    finally:
        await stop(record, grace_s=5)


async def test_a_node_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    spec = node(tmp_path, "import sys; print('bad config: no such key'); sys.exit(1)")
    record, offset = spawn(spec)

    with pytest.raises(LaunchError) as raised:
        await wait_ready(spec, record, offset, timeout_s=10)

    message = str(raised.value)
    assert message.startswith("peer0.example.com exited (exit status 1) before it")
    assert "bad config: no such key" in message


async def test_a_node_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    spec = node(tmp_path, "import time; print('working'); time.sleep(60)")
    record, offset = spawn(spec)

    with pytest.raises(LaunchError, match=r"was not ready within 0s \(stopped it\)"):
        await wait_ready(spec, record, offset, timeout_s=0.2)

    assert not is_alive(record)


async def test_an_old_ready_line_in_the_log_does_not_count(tmp_path: Path) -> None:
    """A restart appends to the log: only lines after this start's offset count."""
    spec = node(tmp_path, "import sys; sys.exit(3)")
    spec.log.parent.mkdir(parents=True)
    spec.log.write_text('READY {"grpc": "127.0.0.1:1"}\n')
    record, offset = spawn(spec)

    with pytest.raises(LaunchError, match="exit status 3"):
        await wait_ready(spec, record, offset, timeout_s=10)


async def test_stop_kills_a_node_that_ignores_sigterm(tmp_path: Path) -> None:
    spec = node(tmp_path, STUBBORN)
    record, offset = spawn(spec)
    ready = await wait_ready(spec, record, offset, timeout_s=10)

    assert await stop(ready, grace_s=0.3) is True
    assert not is_alive(ready)


async def test_stop_all_reports_each_node(tmp_path: Path) -> None:
    records = []
    for name in ("a", "b"):
        spec = node(tmp_path, SERVE, name=name)
        record, offset = spawn(spec)
        records.append(await wait_ready(spec, record, offset, timeout_s=10))
    lines: list[str] = []

    await stop_all(records, grace_s=10, progress=lines.append)

    assert sorted(lines) == [
        f"stopped: a (pid {records[0].pid})",
        f"stopped: b (pid {records[1].pid})",
    ]


def test_missing_program_is_a_launch_error(tmp_path: Path) -> None:
    spec = ProcessSpec(
        name="etcd0",
        kind=NodeKind.ETCD,
        argv=("no-such-program-medledger",),
        log=tmp_path / "etcd0.log",
    )

    with pytest.raises(LaunchError, match="etcd0: cannot start no-such-program"):
        spawn(spec)


def test_port_in_use_names_the_node_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(LaunchError) as raised:
            check_port_free("peer0.example.com", "gRPC", "127.0.0.1", port)

    assert str(raised.value).startswith(
        f"peer0.example.com: its gRPC port {port} on 127.0.0.1 is already in use"
    )


async def test_state_round_trips(tmp_path: Path) -> None:
    spec = node(tmp_path, SERVE)
    record, offset = spawn(spec)
    ready = await wait_ready(spec, record, offset, timeout_s=10)
    try:
        state = NetworkState(tmp_path, consortium="c", orderer_types={"ch": "solo"})
        state.nodes[ready.name] = ready
        state.chaincodes["ch/asset"] = {"sequence": 1}
        state.save()

        loaded = NetworkState.load(tmp_path)

        assert loaded.nodes == state.nodes
        assert (loaded.consortium, loaded.orderer_types) == ("c", {"ch": "solo"})
        assert loaded.chaincodes == {"ch/asset": {"sequence": 1}}
        assert is_alive(loaded.nodes[ready.name])
    finally:
        await stop(ready, grace_s=5)


def test_unreadable_state_is_a_launch_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")

    with pytest.raises(LaunchError, match="unreadable network state"):
        NetworkState.load(tmp_path)


def test_a_reused_pid_is_not_the_node() -> None:
    """The recorded start time must match, else another process has the PID now."""
    record = NodeRecord(
        name="x",
        kind=NodeKind.PEER,
        pid=os.getpid(),
        start_ticks=1,
        argv=(),
        log="x.log",
        config=None,
        addresses={},
        started_at=0.0,
    )

    assert not is_alive(record)
