"""Network namespaces as stand-in hosts: one namespace per node, joined by a bridge.

    root namespace ── mlr<id> (.1) ═══ uplink ─┐
                                               br0   (in namespace mlnet-<pid>-<id>-hub)
    mlnet-<pid>-<id>-<n>: eth0 (.10+n) ═ h<n> ─┘

`netns_lab()` opens a `NetnsLab` on a random private /24 of 10.0.0.0/8 that no route
or address of this machine already uses, with the test process's pid and a random id
in every name it creates, so parallel runs do not clash (and what a run killed before
it could clean up left behind is swept away by the next one: `sweep_stale`). The
bridge lives in a namespace of its own (the root namespace's firewall never sees the
traffic between hosts); the root namespace gets one veth into it, so tests dial every
host's IP from here. `lab.add_host(name)` makes a namespace with loopback up and its
own IP; `lab.run(host, argv, ...)` starts a process inside it (`ip netns exec`) and
returns a `NetnsProcess` whose `wait_ready` waits for the READY line (common.node) on
its stdout.

`close()` always runs (the context manager calls it, even on failure): SIGTERM to
each process group in the reverse order of starting (clients stop before the servers
they use), SIGKILL to any that outlives its grace and to whatever is left in each
namespace (`ip netns pids`, chaincode children included), then the namespaces and the
root veth are deleted.

Without root, without `ip`, or where the kernel or container refuses namespaces,
bridges or veths, `netns_lab()` skips the test with the reason: that is a property
of the environment, not of medledger.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from common.node import READY_PREFIX, parse_ready_line

__all__ = [
    "Host",
    "NetnsLab",
    "NetnsProcess",
    "netns_lab",
    "sweep_stale",
    "unavailable_reason",
]

IP = "ip"
STOP_GRACE_S = 10.0
KILL_WAIT_S = 10.0
_FIRST_HOST = 10
_SUBNET_TRIES = 64


@dataclass(frozen=True)
class Host:
    """A namespace standing in for one host: its name and its IP on the lab's /24."""

    name: str
    netns: str
    ip: str


@dataclass
class NetnsProcess:
    """A process started inside a namespace; stdout and stderr are read (and logged)
    throughout, since a full pipe would block it.

    It is ready at the READY line on stdout (its addresses), or, when `ready_text` is
    set (for programs without a READY line, such as etcd), at the first line on either
    stream that contains the text (no addresses).
    """

    name: str
    host: Host
    popen: subprocess.Popen[str]
    stdout_log: Path
    stderr_log: Path
    ready_text: str | None = None
    lines: list[str] = field(default_factory=list)
    addresses: dict[str, str] | None = None
    _settled: threading.Event = field(default_factory=threading.Event)
    _readers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def start_reading(self) -> None:
        """One thread per stream, each copying lines to its log file."""
        streams = (
            (self.popen.stdout, self.stdout_log),
            (self.popen.stderr, self.stderr_log),
        )
        for stream, log in streams:
            assert stream is not None
            reader = threading.Thread(
                target=self._read,
                args=(stream, log),
                name=f"{log.name}-{self.name}",
                daemon=True,
            )
            self._readers.append(reader)
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], path: Path) -> None:
        with path.open("w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                self._look_at(line, stdout=stream is self.popen.stdout)
        with self._lock:
            self._finished += 1
            if self._finished == len(self._readers):
                self._settled.set()

    def _look_at(self, line: str, *, stdout: bool) -> None:
        with self._lock:
            if stdout:
                self.lines.append(line)
            if self.addresses is not None:
                return
            if self.ready_text is not None and self.ready_text in line:
                self.addresses = {}
            elif stdout and self.ready_text is None and line.startswith(READY_PREFIX):
                self.addresses = parse_ready_line(line.strip())
            if self.addresses is not None:
                self._settled.set()

    def wait_ready(self, timeout_s: float) -> dict[str, str]:
        """The addresses of the READY line; fails if the process exits or times out."""
        self._settled.wait(timeout_s)
        if self.addresses is None:
            raise AssertionError(
                f"{self.name} in {self.host.netns}: not ready within {timeout_s}s "
                f"(exit code {self.popen.poll()}); stdout {self.lines[-20:]!r}; "
                f"stderr:\n{self.stderr_tail()}"
            )
        return self.addresses

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.stderr_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the process's group (it runs in a session of its own)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signum)

    def reap(self, timeout_s: float) -> int | None:
        """Wait for the exit code (None if it did not exit in time)."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def close_pipes(self) -> None:
        for reader in self._readers:
            reader.join(KILL_WAIT_S)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (None: they may be; creating them tells)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"network namespaces need root (running as uid {os.geteuid()})"
    if shutil.which(IP) is None:
        return "iproute2's `ip` is not installed"
    return None


class NetnsLab:
    """Namespaces on one bridge; see the module docstring. Use it through `netns_lab`."""

    def __init__(
        self, folder: Path, *, label: str = "mlnet", stop_grace_s: float = STOP_GRACE_S
    ) -> None:
        self.stop_grace_s = stop_grace_s
        self.id = secrets.token_hex(3)
        self.folder = folder
        self.label = label
        self.prefix = f"{label}-{os.getpid()}-{self.id}"
        self.hub = f"{self.prefix}-hub"
        self.root_link = f"mlr{self.id}"
        self.subnet = ipaddress.IPv4Network("0.0.0.0/32")
        self.hosts: dict[str, Host] = {}
        self.processes: list[NetnsProcess] = []
        self._namespaces: list[str] = []

    @property
    def root_ip(self) -> str:
        """The root namespace's address on the lab's /24 (where tests dial from)."""
        return str(self.subnet.network_address + 1)

    def open(self) -> None:
        """Pick the subnet, make the hub with its bridge and the root namespace's veth.

        Raises:
            subprocess.CalledProcessError: an `ip` command was refused.
        """
        sweep_stale(self.label)
        self.subnet = _free_subnet()
        self._add_namespace(self.hub)
        _ip("netns", "exec", self.hub, "true")  # needs mount namespaces as well
        hub = ("-n", self.hub)
        _ip(*hub, "link", "set", "lo", "up")
        _ip(*hub, "link", "add", "br0", "type", "bridge")
        _ip(*hub, "link", "set", "br0", "up")
        _ip(
            *("link", "add", self.root_link, "type", "veth"),
            *("peer", "name", "uplink", "netns", self.hub),
        )
        _ip(*hub, "link", "set", "uplink", "master", "br0", "up")
        address = f"{self.root_ip}/{self.subnet.prefixlen}"
        _ip("addr", "add", address, "dev", self.root_link)
        _ip("link", "set", self.root_link, "up")

    def add_host(self, name: str) -> Host:
        """A namespace for `name`: loopback up, eth0 on the bridge with the next IP."""
        index = len(self.hosts)
        address = self.subnet.network_address + _FIRST_HOST + index
        if address not in self.subnet or address == self.subnet.broadcast_address:
            raise ValueError(f"{self.subnet} has no address left for {name}")
        netns = f"{self.prefix}-{index}"
        self._add_namespace(netns)
        port = f"h{index}"
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip(
            *("-n", self.hub, "link", "add", port, "type", "veth"),
            *("peer", "name", "eth0", "netns", netns),
        )
        _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
        _ip(
            *("-n", netns, "addr", "add"),
            *(f"{address}/{self.subnet.prefixlen}", "dev", "eth0"),
        )
        _ip("-n", netns, "link", "set", "eth0", "up")
        host = Host(name=name, netns=netns, ip=str(address))
        self.hosts[name] = host
        return host

    def run(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        cwd: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        ready_text: str | None = None,
    ) -> NetnsProcess:
        """Start `argv` inside `host`'s namespace, in a session of its own.

        `ready_text`: see `NetnsProcess` (None: wait for the READY line).
        """
        label = name or host.name
        logs = self.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        popen = subprocess.Popen(
            [IP, "netns", "exec", host.netns, *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        process = NetnsProcess(
            name=label,
            host=host,
            popen=popen,
            stdout_log=logs / f"{label}.stdout.log",
            stderr_log=logs / f"{label}.stderr.log",
            ready_text=ready_text,
        )
        self.processes.append(process)
        process.start_reading()
        return process

    def namespace_pids(self, netns: str) -> list[int]:
        """Every process inside `netns` (`ip netns pids`)."""
        return _namespace_pids(netns)

    def stop(self, processes: Sequence[NetnsProcess]) -> list[str]:
        """Stop `processes` together: SIGTERM to each group, then wait for each, with
        SIGKILL for any that outlives the grace; returns what had to be killed."""
        problems: list[str] = []
        for process in processes:
            process.signal_group(signal.SIGTERM)
        for process in processes:
            if process.reap(self.stop_grace_s) is None:
                problems.append(f"{process.name} ignored SIGTERM; killed")
                process.signal_group(signal.SIGKILL)
                process.reap(KILL_WAIT_S)
        return problems

    def close(self) -> list[str]:
        """Stop every process (one at a time, the last started first), delete every
        namespace and link; returns what went wrong."""
        problems: list[str] = []
        for process in reversed(self.processes):
            problems += self.stop([process])
        for netns in reversed(self._namespaces):
            left = self.namespace_pids(netns)
            if left:
                problems.append(f"{netns}: killed leftover processes {left}")
            _kill_and_wait(left)
        for process in self.processes:
            process.close_pipes()
        for netns in reversed(self._namespaces):
            result = subprocess.run(
                [IP, "netns", "del", netns], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                problems.append(f"ip netns del {netns}: {result.stderr.strip()}")
        self._namespaces.clear()
        subprocess.run(
            [IP, "link", "del", self.root_link], capture_output=True, check=False
        )
        return problems

    def _add_namespace(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._namespaces.append(netns)


def sweep_stale(label: str = "mlnet") -> list[str]:
    """Delete the namespaces a run that died without closing its lab left behind.

    A lab's namespaces are named ``<label>-<pid>-<id>-...`` after the test process
    that made them; those whose process no longer exists are emptied (SIGKILL to what
    still runs there) and deleted, which also removes their veths. A live run's
    namespaces are never touched. Returns the names deleted.
    """
    listing = subprocess.run(
        [IP, "netns", "list"], capture_output=True, text=True, check=False
    )
    pattern = re.compile(rf"{re.escape(label)}-(\d+)-[0-9a-f]{{6}}-\S+")
    deleted: list[str] = []
    for line in listing.stdout.splitlines():
        match = pattern.match(line.strip())
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        netns = match.group(0)
        _kill_and_wait(_namespace_pids(netns))
        result = subprocess.run(
            [IP, "netns", "del", netns], capture_output=True, check=False
        )
        if result.returncode == 0:
            deleted.append(netns)
    return deleted


@contextlib.contextmanager
def netns_lab(
    folder: Path, *, label: str = "mlnet", stop_grace_s: float = STOP_GRACE_S
) -> Iterator[NetnsLab]:
    """An open `NetnsLab`, closed on exit; skips when namespaces are not permitted.

    `stop_grace_s` is how long each process has to exit after SIGTERM.
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    lab = NetnsLab(folder, label=label, stop_grace_s=stop_grace_s)
    try:
        lab.open()
    except subprocess.CalledProcessError as error:
        lab.close()
        pytest.skip(
            f"network namespaces are not permitted here: `{' '.join(error.cmd)}` "
            f"failed: {(error.stderr or '').strip()}"
        )
    try:
        yield lab
    finally:
        problems = lab.close()
        if problems:
            print("netns teardown:", *problems, sep="\n  ")


def _ip(*arguments: str) -> None:
    subprocess.run(
        [IP, *arguments], capture_output=True, text=True, check=True, timeout=30
    )


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no address or route of the root namespace overlaps."""
    taken = _used_networks()
    chooser = secrets.SystemRandom()
    for _ in range(_SUBNET_TRIES):
        candidate = ipaddress.IPv4Network(
            f"10.{chooser.randrange(200, 255)}.{chooser.randrange(256)}.0/24"
        )
        if not any(candidate.overlaps(network) for network in taken):
            return candidate
    raise subprocess.CalledProcessError(
        1, ["choose-subnet"], stderr="no free 10.x.y.0/24 found"
    )


def _used_networks() -> list[ipaddress.IPv4Network]:
    found: list[ipaddress.IPv4Network] = []
    routes = subprocess.run(
        [IP, "-j", "-4", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=True,
    )
    for route in json.loads(routes.stdout or "[]"):
        destination = route.get("dst", "")
        if destination and destination != "default":
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv4Network(destination, strict=False))
    addresses = subprocess.run(
        [IP, "-j", "-4", "addr"], capture_output=True, text=True, check=True
    )
    for link in json.loads(addresses.stdout or "[]"):
        for info in link.get("addr_info", []):
            found.append(
                ipaddress.IPv4Network(
                    f"{info['local']}/{info['prefixlen']}", strict=False
                )
            )
    return found


def _namespace_pids(netns: str) -> list[int]:
    result = subprocess.run(
        [IP, "netns", "pids", netns], capture_output=True, text=True, check=False
    )
    return [int(word) for word in result.stdout.split()]


def _kill_and_wait(pids: Sequence[int]) -> None:
    """SIGKILL `pids` (not necessarily our children) and wait until they are gone."""
    handles: list[int] = []
    for pid in pids:
        try:
            handles.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        for handle in handles:
            select.select([handle], [], [], KILL_WAIT_S)
    finally:
        for handle in handles:
            os.close(handle)
