"""The gRPC runtime defaults: set when absent, an operator's value kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from common.grpc_runtime import (
    GRPC_EXPERIMENTS_DEFAULT,
    RUNTIME_DEFAULTS,
    apply_runtime_defaults,
)
from tests.support import spawning_echo


def test_the_default_is_set_when_absent() -> None:
    environ: dict[str, str] = {}
    apply_runtime_defaults(environ)
    assert environ == {
        "GRPC_EXPERIMENTS": GRPC_EXPERIMENTS_DEFAULT,
        "GRPC_ENABLE_FORK_SUPPORT": "0",
    }


def test_an_operator_value_is_kept() -> None:
    environ = {
        "GRPC_EXPERIMENTS": "event_engine_client",
        "GRPC_ENABLE_FORK_SUPPORT": "1",
    }
    apply_runtime_defaults(environ)
    assert environ == {
        "GRPC_EXPERIMENTS": "event_engine_client",
        "GRPC_ENABLE_FORK_SUPPORT": "1",
    }


def test_the_command_sets_it_before_grpc_is_imported() -> None:
    script = (
        "import os, sys\n"
        "os.environ.pop('GRPC_EXPERIMENTS', None)\n"
        "from network.cli import main\n"
        "assert 'grpc' not in sys.modules\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ['GRPC_EXPERIMENTS'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == GRPC_EXPERIMENTS_DEFAULT


def test_the_test_process_runs_with_the_node_defaults() -> None:
    """The pytest plugin applied the defaults before gRPC was imported here."""
    import os

    for name, value in RUNTIME_DEFAULTS.items():
        assert os.environ.get(name) == value


async def test_a_process_starting_children_keeps_its_connections_intact(
    tmp_path: Path,
) -> None:
    """Goal: spawning children (a peer launching chaincode) never disturbs live gRPC
    connections. Method: a TLS server under uvloop spawns `/bin/true` back to back
    for 3 s while 8 clients call it without pause; every call must succeed. With
    gRPC's fork support on, thousands failed (TSI_DATA_CORRUPTED, Socket closed)."""
    import grpc

    from network.bench_grpc import write_certificate

    cert, key = write_certificate(tmp_path)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.spawning_echo",
        str(cert),
        str(key),
        "3",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None
    async with asyncio.timeout(30):
        ready = (await server.stdout.readline()).decode().split()
    assert ready[:1] == ["READY"], f"the server did not start: {ready}"
    failures: list[str] = []
    calls = 0

    async def caller(channel: grpc.aio.Channel) -> None:
        nonlocal calls
        echo = channel.unary_unary(spawning_echo.METHOD)
        while server.returncode is None and not done.is_set():
            try:
                assert await echo(b"x" * 3000, timeout=10) == b"x" * 3000
                calls += 1
            except grpc.aio.AioRpcError as error:
                failures.append(f"{error.code().name}: {error.details()}")

    done = asyncio.Event()
    credentials = grpc.ssl_channel_credentials(cert.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{ready[1]}", credentials) as channel:
        callers = [asyncio.create_task(caller(channel)) for _ in range(8)]
        async with asyncio.timeout(60):
            spawned = (await server.stdout.readline()).decode().split()
            done.set()
            await asyncio.gather(*callers)
            assert server.stdin is not None
            server.stdin.close()
            await server.wait()
    assert spawned[:1] == ["SPAWNED"], spawned
    assert int(spawned[1]) > 0, spawned
    assert calls > 0
    assert failures == [], f"{len(failures)} of {calls + len(failures)}: {failures[:3]}"
