"""Launch mode: the peer starts chaincode processes, which dial back, and restarts them.

A `LaunchSpec` is the command line of one chaincode process; `python_launch_spec`
builds it for our SDK (`python -m chaincode serve`), `node_launch_spec` for the
official Node shim (`fabric-chaincode-node start`). Both get the peer's chaincode
address and the package id the process must register with, on the command line
and in Fabric's environment variables (`CORE_PEER_ADDRESS`,
`CORE_CHAINCODE_ID_NAME`, `CORE_PEER_LOCALMSPID`, and the TLS ones).

Every launched process also finds `MEDLEDGER_CHAINCODE_STREAMS` (`LaunchSpec.streams`,
4 unless the spec's own environment says otherwise): our SDK opens that many streams
under its package id and the registry accepts them (see `peer.chaincode.registry`);
Fabric's shims ignore the variable and open one, as they do with a Fabric peer.

`ChaincodeLauncher` supervises each process: its output goes to the log (and
the last lines are kept for diagnostics); when it exits the exit is logged as a
crash and the process is started again after a backoff that doubles up to
`backoff_max_s` and starts over once a process has lived `stable_after_s`.
`stop` ends it: SIGTERM to its process group, SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaincode.shim.dial import STREAMS_VARIABLE
from peer.chaincode.registry import ChaincodeRegistry

__all__ = [
    "DEFAULT_STREAMS",
    "ChaincodeLauncher",
    "LaunchSpec",
    "PeerTlsFiles",
    "ProcessStatus",
    "node_launch_spec",
    "python_launch_spec",
]

_LOG = logging.getLogger(__name__)

OUTPUT_LINES_KEPT = 200
DEFAULT_STREAMS = 4
"""Streams a launched chaincode of our SDK opens (measured: 4 and 8 alike, 1 costs more)."""
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """How to start one chaincode process."""

    package_id: str
    argv: tuple[str, ...]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to (and overriding) the peer's own environment."""
    streams: int = DEFAULT_STREAMS
    """How many streams the process may open (told through `STREAMS_VARIABLE`)."""

    @property
    def stream_count(self) -> int:
        """The streams the process is told to open: `env`'s setting, else `streams`."""
        try:
            return max(1, int(self.env.get(STREAMS_VARIABLE, self.streams)))
        except ValueError:
            return 1


@dataclass(frozen=True, slots=True)
class PeerTlsFiles:
    """TLS material a launched chaincode uses to dial the peer, as file paths.

    The Node shim reads the client key and certificate files as base64 of the
    PEM text (Fabric's peer writes them that way); the root certificate as PEM.
    """

    root_cert_file: str
    client_key_file: str
    client_cert_file: str


def _fabric_env(
    package_id: str, peer_address: str, msp_id: str, tls: PeerTlsFiles | None
) -> dict[str, str]:
    env = {
        "CORE_PEER_ADDRESS": peer_address,
        "CORE_CHAINCODE_ID_NAME": package_id,
        "CORE_PEER_TLS_ENABLED": "true" if tls is not None else "false",
    }
    if msp_id:
        env["CORE_PEER_LOCALMSPID"] = msp_id
    if tls is not None:
        env["CORE_PEER_TLS_ROOTCERT_FILE"] = tls.root_cert_file
        env["CORE_TLS_CLIENT_KEY_PATH"] = tls.client_key_file
        env["CORE_TLS_CLIENT_CERT_PATH"] = tls.client_cert_file
    return env


def python_launch_spec(
    package_id: str,
    peer_address: str,
    modules: Sequence[str],
    *,
    python: str = sys.executable,
    cwd: str | None = None,
    msp_id: str = "",
    tls: PeerTlsFiles | None = None,
    env: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """`python -m chaincode serve --module M ... --peer-address A --chaincode-id P`."""
    argv = [python, "-m", "chaincode", "serve"]
    for module in modules:
        argv += ["--module", module]
    argv += ["--peer-address", peer_address, "--chaincode-id", package_id]
    if tls is not None:
        argv += [
            "--tls-root-cert",
            tls.root_cert_file,
            "--tls-client-key",
            tls.client_key_file,
            "--tls-client-cert",
            tls.client_cert_file,
        ]
    merged = _fabric_env(package_id, peer_address, msp_id, tls) | dict(env or {})
    return LaunchSpec(package_id, tuple(argv), cwd, merged)


def node_launch_spec(
    package_id: str,
    peer_address: str,
    module_dir: str | Path,
    *,
    msp_id: str = "",
    tls: PeerTlsFiles | None = None,
    env: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """`fabric-chaincode-node start --peer.address A --chaincode-id-name P` in `module_dir`.

    Uses the package's own `node_modules/.bin/fabric-chaincode-node` when
    installed, else `npx`.
    """
    folder = Path(module_dir)
    local = folder / "node_modules" / ".bin" / "fabric-chaincode-node"
    command = (
        [str(local)]
        if local.exists()
        else [shutil.which("npx") or "npx", "fabric-chaincode-node"]
    )
    argv = [
        *command,
        "start",
        "--peer.address",
        peer_address,
        "--chaincode-id-name",
        package_id,
        "--module-path",
        str(folder),
    ]
    merged = _fabric_env(package_id, peer_address, msp_id, tls) | dict(env or {})
    return LaunchSpec(package_id, tuple(argv), str(folder), merged)


@dataclass(slots=True)
class ProcessStatus:
    """What the launcher knows about one supervised chaincode."""

    spec: LaunchSpec
    pid: int | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES_KEPT))
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the process has been started (the first time)."""
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    """Set each time the process exits (cleared when it is started again)."""


class ChaincodeLauncher:
    """Starts chaincode processes, restarts them when they exit, stops them."""

    def __init__(
        self,
        registry: ChaincodeRegistry,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 60.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        self._registry = registry
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._stable_after_s = stable_after_s
        self._stop_grace_s = stop_grace_s
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._status: dict[str, ProcessStatus] = {}

    def launch(self, spec: LaunchSpec) -> ProcessStatus:
        """Start supervising `spec` (a no-op if the package is already supervised)."""
        if spec.package_id in self._supervisors:
            return self._status[spec.package_id]
        status = ProcessStatus(spec)
        self._status[spec.package_id] = status
        self._registry.expect(spec.package_id, streams=spec.stream_count)
        self._supervisors[spec.package_id] = asyncio.create_task(
            self._supervise(status), name=f"chaincode {spec.package_id}"
        )
        return status

    def status(self, package_id: str) -> ProcessStatus | None:
        return self._status.get(package_id)

    async def stop(self, package_id: str) -> None:
        """Stop restarting the chaincode and end its process."""
        supervisor = self._supervisors.pop(package_id, None)
        if supervisor is None:
            return
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        process = self._processes.pop(package_id, None)
        if process is not None:
            await self._terminate(process)
        self._registry.forget(package_id)

    async def stop_all(self) -> None:
        for package_id in list(self._supervisors):
            await self.stop(package_id)

    # ------------------------------------------------------------ supervision

    async def _supervise(self, status: ProcessStatus) -> None:
        loop = asyncio.get_running_loop()
        package_id = status.spec.package_id
        delay = self._backoff_initial_s
        while True:
            started = loop.time()
            code = await self._run_once(status)
            lived = loop.time() - started
            if lived >= self._stable_after_s:
                delay = self._backoff_initial_s
            _LOG.warning(
                "chaincode %s exited with status %s after %.1f s; restarting in %.1f s",
                package_id,
                code,
                lived,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max_s)

    async def _run_once(self, status: ProcessStatus) -> int:
        spec = status.spec
        status.exited.clear()
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *spec.argv,
                cwd=spec.cwd,
                env={
                    **os.environ,
                    STREAMS_VARIABLE: str(spec.stream_count),
                    **spec.env,
                },
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                limit=MAX_LINE_BYTES,
            )
        )
        try:
            # Shielded: a `stop` arriving mid-spawn must still find the process to end it.
            process = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                process = await spawn
                self._processes[spec.package_id] = process
                status.pid = process.pid
            raise
        except OSError as error:
            _LOG.error("cannot start chaincode %s: %s", spec.package_id, error)
            status.output.append(f"cannot start: {error}")
            status.exit_codes.append(-1)
            status.exited.set()
            return -1
        self._processes[spec.package_id] = process
        status.pid = process.pid
        status.starts += 1
        status.started.set()
        _LOG.info("started chaincode %s (pid %d)", spec.package_id, process.pid)
        assert process.stdout is not None
        await self._pump(spec.package_id, process.stdout, status)
        code = await process.wait()
        self._processes.pop(spec.package_id, None)
        status.pid = None
        status.exit_codes.append(code)
        status.exited.set()
        return code

    @staticmethod
    async def _pump(
        package_id: str, stream: asyncio.StreamReader, status: ProcessStatus
    ) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is buffered
                line = await stream.read(MAX_LINE_BYTES)
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip()
            status.output.append(text)
            _LOG.info("chaincode %s: %s", package_id, text)

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        self._signal_group(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._stop_grace_s)
        except TimeoutError:
            self._signal_group(process, signal.SIGKILL)
            await process.wait()

    @staticmethod
    def _signal_group(
        process: asyncio.subprocess.Process, number: signal.Signals
    ) -> None:
        """Signal the process group the launcher created for this process (npx spawns node)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, number)
