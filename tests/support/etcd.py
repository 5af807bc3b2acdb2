"""Real etcd clusters for tests: N members on free loopback ports, faults, teardown.

`await EtcdCluster.start(folder, size=3)` starts `etcd` processes (each with its own
data dir and log file under `folder`) and returns once every member answers
`etcdctl endpoint health`. Members can then be killed (SIGKILL), paused (SIGSTOP),
resumed (SIGCONT) and restarted on their data dir; `leader()` finds the Raft leader.
`EtcdTls.issue(folder)` (tests.support.etcd_tls) makes a TLS CA (an orderer
organisation's, built with `common.crypto.issue`), one server certificate for
127.0.0.1 shared by the members and a client certificate; a cluster started with it
requires client certificates on both the client and the peer ports.

Members run with `--max-request-bytes` raised to 10 MiB (etcd's default is 1.5 MiB) so
that a test may write a block value larger than the ordering backend's own 1.5 MiB
limit and see the backend, not etcd, refuse it; the quota is 1 GiB. Every wait has a
deadline and polls every 50 ms at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from network.ports import free_ports
from tests.conftest import skip_or_fail
from tests.support.etcd_tls import HOST, EtcdTls

__all__ = [
    "EtcdCluster",
    "EtcdMember",
    "EtcdTls",
    "free_ports",
    "require_etcd",
    "running_cluster",
    "wait_for_state",
]

ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")
MAX_REQUEST_BYTES = 10 * 1024 * 1024
QUOTA_BACKEND_BYTES = 1024 * 1024 * 1024
START_TIMEOUT_S = 20.0
_POLL_S = 0.05
_TOKENS = itertools.count()


def require_etcd() -> None:
    """Skip (or fail under CI) when the etcd server or etcdctl is not installed."""
    if ETCD is None or ETCDCTL is None:
        skip_or_fail(
            "etcd and etcdctl are not installed "
            "(Debian: apt-get install etcd-server etcd-client)"
        )


@contextlib.contextmanager
def running_cluster(
    folder: Path, *, size: int = 1, tls: EtcdTls | None = None
) -> Iterator[EtcdCluster]:
    """A started cluster for a synchronous (e.g. module-scoped) fixture; stopped after."""
    cluster = asyncio.run(EtcdCluster.start(folder, size=size, tls=tls))
    try:
        yield cluster
    finally:
        asyncio.run(cluster.stop())


class EtcdMember:
    """One etcd process: its ports, data dir and log; started and faulted by the cluster."""

    def __init__(
        self, name: str, *, client_port: int, peer_port: int, folder: Path, scheme: str
    ):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = folder / f"{name}.etcd"
        self.log_path = folder / f"{name}.log"
        self.scheme = scheme
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """`host:port` of the client listener, as the ordering backend is configured."""
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.peer_port}"

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"etcd member {self.name} is not started")
        return self.process.pid

    def __repr__(self) -> str:
        return f"EtcdMember({self.name}, {self.endpoint}, running={self.is_running})"


class EtcdCluster:
    """A running etcd cluster of real processes; call `stop()` (or use `async with`)."""

    def __init__(
        self, members: Sequence[EtcdMember], *, folder: Path, tls: EtcdTls | None
    ):
        self.members = tuple(members)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self._token = f"medledger-test-{os.getpid()}-{next(_TOKENS)}"

    @classmethod
    async def start(
        cls,
        folder: Path,
        *,
        size: int = 1,
        tls: EtcdTls | None = None,
        timeout_s: float = START_TIMEOUT_S,
    ) -> EtcdCluster:
        """Start `size` members in `folder` and wait until every one is healthy."""
        require_etcd()
        ports = free_ports(2 * size)
        scheme = "https" if tls is not None else "http"
        members = [
            EtcdMember(
                f"m{index}",
                client_port=ports[2 * index],
                peer_port=ports[2 * index + 1],
                folder=folder,
                scheme=scheme,
            )
            for index in range(size)
        ]
        cluster = cls(members, folder=folder, tls=tls)
        try:
            for member in members:
                cluster._spawn(member, state="new")
            await cluster.wait_healthy(timeout_s=timeout_s)
        except BaseException:
            await cluster.stop()
            raise
        return cluster

    async def __aenter__(self) -> EtcdCluster:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # Addresses

    @property
    def endpoints(self) -> tuple[str, ...]:
        """`host:port` of every member's client listener."""
        return tuple(member.endpoint for member in self.members)

    def member(self, name: str) -> EtcdMember:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"no etcd member {name!r}")

    def running(self) -> tuple[EtcdMember, ...]:
        return tuple(member for member in self.members if member.is_running)

    # Faults

    def kill(self, member: EtcdMember) -> None:
        """SIGKILL the member and reap it; its data dir stays for `restart`."""
        process = member.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused process must be able to die
        process.kill()
        process.wait(timeout=10)

    def pause(self, member: EtcdMember) -> None:
        """SIGSTOP: the process stays alive but neither sends nor answers anything.

        Returns once the kernel reports it stopped (a signal is delivered a little
        later than `kill` returns, and etcd answers fast).
        """
        os.kill(member.pid, signal.SIGSTOP)
        wait_for_state(member.pid, stopped=True)

    def resume(self, member: EtcdMember) -> None:
        os.kill(member.pid, signal.SIGCONT)
        wait_for_state(member.pid, stopped=False)

    async def restart(
        self, member: EtcdMember, *, timeout_s: float = START_TIMEOUT_S
    ) -> None:
        """Start a killed member again on its data dir and wait until it is healthy."""
        self.kill(member)
        self._spawn(member, state="existing")
        await self.wait_healthy([member], timeout_s=timeout_s)

    # Queries

    async def wait_healthy(
        self,
        members: Sequence[EtcdMember] | None = None,
        *,
        timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        """Poll `etcdctl endpoint health` (a quorum read) until all answer, or raise."""
        targets = list(self.members if members is None else members)
        deadline = time.monotonic() + timeout_s
        while targets:
            for member in list(targets):
                self._check_alive(member)
                ok, _ = await self.etcdctl(
                    "endpoint", "health", endpoints=[member], timeout_s=2
                )
                if ok:
                    targets.remove(member)
            if targets and time.monotonic() > deadline:
                raise TimeoutError(
                    f"etcd members not healthy after {timeout_s} s: "
                    f"{[m.name for m in targets]}; logs in {self.folder}"
                )
            if targets:
                await asyncio.sleep(_POLL_S)

    async def leader(self, *, timeout_s: float = 10.0) -> EtcdMember:
        """The member that is Raft leader now, as the running members report it."""
        deadline = time.monotonic() + timeout_s
        while True:
            statuses = await asyncio.gather(*(self._status(m) for m in self.running()))
            for member, status in zip(self.running(), statuses, strict=True):
                if (
                    status is not None
                    and status["leader"] == status["header"]["member_id"]
                ):
                    return member
            if time.monotonic() > deadline:
                raise TimeoutError(f"no etcd leader within {timeout_s} s")
            await asyncio.sleep(_POLL_S)

    async def etcdctl(
        self,
        *args: str,
        endpoints: Sequence[EtcdMember] | None = None,
        timeout_s: float = 5.0,
    ) -> tuple[bool, str]:
        """Run etcdctl against `endpoints` (default: all); returns (exit code 0, stdout)."""
        assert ETCDCTL is not None
        chosen = self.members if endpoints is None else endpoints
        command = [
            ETCDCTL,
            f"--endpoints={','.join(m.client_url for m in chosen)}",
            "--dial-timeout=1s",
            f"--command-timeout={max(1, int(timeout_s))}s",
            *(self.tls.etcdctl_flags() if self.tls is not None else []),
            *args,
        ]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        try:
            async with asyncio.timeout(timeout_s + 2):
                stdout, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            return False, ""
        return process.returncode == 0, stdout.decode()

    # Teardown

    async def stop(self) -> None:
        """Terminate every member (SIGKILL after 2 s) and reap it; keeps the folder."""
        for member in self.members:
            process = member.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for member in self.members:
            process = member.process
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.wait, 2)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)

    # Helpers

    def _spawn(self, member: EtcdMember, *, state: str) -> None:
        assert ETCD is not None
        initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        command = [
            ETCD,
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self._token}",
            f"--max-request-bytes={MAX_REQUEST_BYTES}",
            f"--quota-backend-bytes={QUOTA_BACKEND_BYTES}",
            "--logger=zap",
            "--log-outputs=stderr",
            *(self.tls.member_flags() if self.tls is not None else []),
        ]
        with member.log_path.open("ab") as log:
            member.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _check_alive(self, member: EtcdMember) -> None:
        if not member.is_running:
            tail = member.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"etcd member {member.name} exited; log tail:\n{tail}")

    async def _status(self, member: EtcdMember) -> dict[str, Any] | None:
        ok, out = await self.etcdctl(
            "endpoint", "status", "--write-out=json", endpoints=[member], timeout_s=1
        )
        if not ok:
            return None
        rows = json.loads(out)
        status: dict[str, Any] = rows[0]["Status"]
        return status


def wait_for_state(pid: int, *, stopped: bool, timeout_s: float = 5.0) -> None:
    """Wait until process `pid` is (or is no longer) stopped by a signal, per /proc."""
    deadline = time.monotonic() + timeout_s
    while process_stopped(pid) != stopped:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"process {pid} did not {'stop' if stopped else 'resume'}"
            )
        time.sleep(0.001)


def process_stopped(pid: int) -> bool:
    """Whether /proc says the process is stopped (state T); False when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in {"T", "t"}
