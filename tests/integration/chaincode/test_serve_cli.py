"""`python -m chaincode serve` as a process: READY in both modes, then real invocations."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.unit.chaincode.fakepeer import FakePeer

ROOT = Path(__file__).resolve().parents[3]
STARTUP_S = 30.0
"""Bound on process start (imports) and on every wait for output or exit."""
SERVE = [
    sys.executable,
    "-m",
    "chaincode",
    "serve",
    "--module",
    "chaincode.contracts.asset",
]


async def start(
    *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *SERVE,
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def ready_address(process: asyncio.subprocess.Process) -> str:
    """The address of the one `READY <address>` line the process prints."""
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_S):
        line = await process.stdout.readline()
    assert line.startswith(b"READY "), line
    return line.decode().split()[1]


async def exit_status(process: asyncio.subprocess.Process) -> int:
    async with asyncio.timeout(STARTUP_S):
        return await process.wait()


async def test_dial_mode_registers_prints_ready_and_exits_with_the_stream() -> None:
    """The process dials the peer, says READY once registered, serves, and exits 0."""
    async with FakePeer() as peer:
        address = await peer.start_server()
        process = await start("--peer-address", address, "--chaincode-id", "asset:1a2b")
        try:
            assert await ready_address(process) == address
            created = await peer.submit(
                "CreateAsset", "a1", "blue", "5", "Ann", "9", chaincode="asset"
            )
            assert created.status == 200, created.message
            read = await peer.evaluate("ReadAsset", "a1", chaincode="asset")
            assert read.json() == created.json()
            await peer.stop_server()
            assert await exit_status(process) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_server_mode_from_environment_listens_and_stops_on_sigterm() -> None:
    """CHAINCODE_SERVER_ADDRESS/CHAINCODE_ID start a server; the peer dials it."""
    environment = {
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
        "CHAINCODE_ID": "asset:1a2b",
    }
    process = await start(env=environment)
    try:
        address = await ready_address(process)
        assert address.startswith("127.0.0.1:")
        assert not address.endswith(":0")
        async with FakePeer() as peer:
            connection = await peer.connect(address)
            assert connection.chaincode_id == "asset:1a2b"
            assert (await peer.submit("InitLedger", chaincode="asset")).status == 200
            everything = await peer.evaluate("GetAllAssets", chaincode="asset")
            assert len(everything.json()) == 4  # type: ignore[arg-type]
        process.send_signal(signal.SIGTERM)
        assert await exit_status(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_unreachable_peer_exits_with_status_1() -> None:
    async with FakePeer() as peer:
        address = await peer.start_server()
    process = await start("--peer-address", address, "--chaincode-id", "asset:1a2b")
    assert await exit_status(process) == 1
    assert process.stderr is not None
    assert b"could not register with the peer" in await process.stderr.read()
