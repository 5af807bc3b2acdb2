"""ChaincodeLauncher: command lines, restarts with backoff, output capture and stop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from peer.chaincode.launcher import (
    DEFAULT_STREAMS,
    ChaincodeLauncher,
    LaunchSpec,
    PeerTlsFiles,
    node_launch_spec,
    python_launch_spec,
)
from peer.chaincode.registry import ChaincodeRegistry


def test_python_spec_passes_address_and_package_id() -> None:
    tls = PeerTlsFiles("/tls/ca.pem", "/tls/key.b64", "/tls/cert.b64")
    spec = python_launch_spec(
        "cc:1", "127.0.0.1:7052", ["a.b:C", "d"], python="py", msp_id="Org1MSP", tls=tls
    )
    assert spec.argv == (
        "py", "-m", "chaincode", "serve", "--module", "a.b:C", "--module", "d",
        "--peer-address", "127.0.0.1:7052", "--chaincode-id", "cc:1",
        "--tls-root-cert", "/tls/ca.pem", "--tls-client-key", "/tls/key.b64",
        "--tls-client-cert", "/tls/cert.b64",
    )  # fmt: skip
    assert spec.env["CORE_PEER_ADDRESS"] == "127.0.0.1:7052"
    assert spec.env["CORE_CHAINCODE_ID_NAME"] == "cc:1"
    assert spec.env["CORE_PEER_LOCALMSPID"] == "Org1MSP"
    assert spec.env["CORE_PEER_TLS_ENABLED"] == "true"
    assert spec.env["CORE_TLS_CLIENT_KEY_PATH"] == "/tls/key.b64"


def test_launched_chaincodes_are_told_how_many_streams_to_open() -> None:
    """4 streams unless the spec's environment sets MEDLEDGER_CHAINCODE_STREAMS."""
    assert LaunchSpec("p:1", ("true",)).stream_count == DEFAULT_STREAMS == 4
    one = {"MEDLEDGER_CHAINCODE_STREAMS": "1"}
    assert LaunchSpec("p:1", ("true",), env=one).stream_count == 1
    bad = {"MEDLEDGER_CHAINCODE_STREAMS": "lots"}
    assert LaunchSpec("p:1", ("true",), env=bad).stream_count == 1


def test_node_spec_prefers_the_local_binary(tmp_path: Path) -> None:
    binary = tmp_path / "node_modules" / ".bin" / "fabric-chaincode-node"
    binary.parent.mkdir(parents=True)
    binary.touch()
    spec = node_launch_spec("cc:1", "127.0.0.1:7052", tmp_path)
    assert spec.argv == (
        str(binary), "start", "--peer.address", "127.0.0.1:7052",
        "--chaincode-id-name", "cc:1", "--module-path", str(tmp_path),
    )  # fmt: skip
    assert spec.cwd == str(tmp_path)
    assert spec.env["CORE_PEER_TLS_ENABLED"] == "false"


async def test_a_crashing_process_is_restarted_with_growing_backoff() -> None:
    registry = ChaincodeRegistry()
    launcher = ChaincodeLauncher(registry, backoff_initial_s=0.01, backoff_max_s=0.02)
    spec = LaunchSpec(
        "crash:1", (sys.executable, "-c", "print('starting'); raise SystemExit(3)")
    )
    status = launcher.launch(spec)
    assert registry.is_expected("crash:1")
    try:
        for _ in range(3):
            await asyncio.wait_for(status.exited.wait(), 10)
            status.exited.clear()
    finally:
        await launcher.stop("crash:1")
    assert status.exit_codes[:3] == [3, 3, 3]
    assert status.starts >= 3
    assert "starting" in status.output
    assert not registry.is_expected("crash:1")


async def test_stop_ends_a_running_process() -> None:
    launcher = ChaincodeLauncher(ChaincodeRegistry(), stop_grace_s=5)
    code = "import sys, time; print('up', flush=True); time.sleep(60)"
    status = launcher.launch(LaunchSpec("idle:1", (sys.executable, "-c", code)))
    assert launcher.launch(status.spec) is status
    await asyncio.wait_for(status.started.wait(), 10)
    assert status.pid is not None
    await launcher.stop("idle:1")
    assert launcher.status("idle:1") is status
    assert status.starts == 1
    assert status.exit_codes == []


async def test_stop_right_after_launch_leaves_no_process() -> None:
    launcher = ChaincodeLauncher(ChaincodeRegistry())
    code = "import time; time.sleep(60)"
    status = launcher.launch(LaunchSpec("quick:1", (sys.executable, "-c", code)))
    await asyncio.sleep(0)  # the supervisor is now inside the spawn
    await launcher.stop("quick:1")
    assert status.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(status.pid, 0)


async def test_a_missing_executable_is_reported_and_retried(tmp_path: Path) -> None:
    launcher = ChaincodeLauncher(ChaincodeRegistry(), backoff_initial_s=0.01)
    status = launcher.launch(LaunchSpec("ghost:1", (str(tmp_path / "missing"),)))
    try:
        await asyncio.wait_for(status.exited.wait(), 10)
    finally:
        await launcher.stop("ghost:1")
    assert status.exit_codes[0] == -1
    assert status.output[0].startswith("cannot start:")
