"""Run a `medledger` command as a real process and wait for its READY line.

`start_cli(["orderer", "start", "-c", path])` starts `python -m network.cli …` with
stdout piped; `process.wait_ready(timeout_s)` reads lines until the READY line
(common.node) and returns its addresses, failing with the process's stderr if it
exits first or the timeout passes. Never sleep: wait on the line or on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.node import READY_PREFIX, parse_ready_line

DEFAULT_READY_TIMEOUT_S = 30.0


@dataclass
class CliProcess:
    """A running `medledger` process; its stderr goes to `stderr_path`."""

    popen: subprocess.Popen[str]
    stderr_path: Path
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> dict[str, str]:
        """Read stdout until the READY line; return its addresses."""
        found: list[dict[str, str]] = []

        def read() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                self.lines.append(line)
                if line.startswith(READY_PREFIX):
                    found.append(parse_ready_line(line.strip()))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not found:
            self.kill()
            raise AssertionError(
                f"no READY line within {timeout_s}s; exit code {self.popen.poll()}; "
                f"stdout {self.lines!r}; stderr:\n{self.stderr()}"
            )
        return found[0]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        finally:
            self._close_pipe()

    def kill(self) -> None:
        """SIGKILL (no cleanup in the process) and reap it; harmless once it exited."""
        if self.popen.poll() is None:
            self.popen.kill()
        try:
            self.popen.wait(30)
        finally:
            self._close_pipe()

    def stop(self, timeout_s: float = 30.0) -> int:
        """`terminate` if it still runs; its exit code either way, the pipe closed
        (a process that died on its own otherwise leaves its stdout pipe open)."""
        if self.popen.poll() is None:
            return self.terminate(timeout_s)
        self._close_pipe()
        return self.popen.returncode
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def start_cli(
    arguments: Sequence[str], *, stderr_path: Path, env: dict[str, str] | None = None
) -> CliProcess:
    """Start `python -m network.cli ARGUMENTS` from this interpreter."""
    stderr_file = stderr_path.open("w")
    popen = subprocess.Popen(
        [sys.executable, "-m", "network.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
        env={**os.environ, **(env or {})},
    )
    stderr_file.close()
    return CliProcess(popen, stderr_path)
