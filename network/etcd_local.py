"""A throw-away local etcd cluster (plaintext loopback) for benchmarks.

`await LocalEtcd.start(folder, size=3)` starts `size` `etcd` processes on free
127.0.0.1 ports, each with its data dir and log under `folder`, and returns once every
member reports healthy on its `/health` endpoint; `stop()` terminates and reaps them.
Consortium networks start their etcd members through `medledger network up` instead.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from common.errors import ConfigError
from network.ports import free_ports

__all__ = ["LocalEtcd", "free_ports"]

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 10 * 1024 * 1024
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class EtcdMember:
    """One running member: its name, ports and process."""

    name: str
    client_port: int
    peer_port: int
    process: asyncio.subprocess.Process

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"


class LocalEtcd:
    """Running etcd members; `stop()` (or `async with`) ends them."""

    def __init__(self, members: list[EtcdMember]) -> None:
        self.members = members

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(member.endpoint for member in self.members)

    @classmethod
    async def start(
        cls, folder: Path, *, size: int = 3, timeout_s: float = START_TIMEOUT_S
    ) -> LocalEtcd:
        """Start the members and wait until each is healthy.

        Raises:
            ConfigError: `etcd` is not installed.
            TimeoutError: a member is not healthy within `timeout_s`.
        """
        binary = shutil.which("etcd")
        if binary is None:
            raise ConfigError(
                "etcd is not installed (Debian: apt-get install etcd-server)"
            )
        _make_folder(folder)
        ports = free_ports(2 * size)
        names = [f"etcd{index}" for index in range(size)]
        peers = ",".join(
            f"{name}=http://{HOST}:{ports[2 * index + 1]}"
            for index, name in enumerate(names)
        )
        cluster = cls([])
        try:
            for index, name in enumerate(names):
                client_port, peer_port = ports[2 * index], ports[2 * index + 1]
                process = await _spawn(
                    binary,
                    name=name,
                    folder=folder,
                    client_port=client_port,
                    peer_port=peer_port,
                    peers=peers,
                )
                cluster.members.append(
                    EtcdMember(name, client_port, peer_port, process)
                )
            await cluster._wait_healthy(timeout_s)
        except BaseException:
            await cluster.stop()
            raise
        return cluster

    async def __aenter__(self) -> LocalEtcd:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM every member, SIGKILL those still running after a few seconds."""
        for member in self.members:
            if member.process.returncode is None:
                member.process.terminate()
        for member in self.members:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await member.process.wait()
            except TimeoutError:
                member.process.kill()
                await member.process.wait()

    async def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(self.members)
        async with aiohttp.ClientSession() as session:
            while waiting:
                for member in list(waiting):
                    if member.process.returncode is not None:
                        raise RuntimeError(
                            f"etcd member {member.name} exited "
                            f"(code {member.process.returncode})"
                        )
                    if await _is_healthy(session, member):
                        waiting.remove(member)
                if waiting and time.monotonic() > deadline:
                    names = [member.name for member in waiting]
                    raise TimeoutError(f"etcd members not healthy: {names}")
                if waiting:
                    await asyncio.sleep(_POLL_S)


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


async def _spawn(
    binary: str,
    *,
    name: str,
    folder: Path,
    client_port: int,
    peer_port: int,
    peers: str,
) -> asyncio.subprocess.Process:
    client_url = f"http://{HOST}:{client_port}"
    peer_url = f"http://{HOST}:{peer_port}"
    with (folder / f"{name}.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            binary,
            f"--name={name}",
            f"--data-dir={folder / f'{name}.etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={peers}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token=medledger-local-{folder.name}",
            f"--max-request-bytes={MAX_REQUEST_BYTES}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )


async def _is_healthy(session: aiohttp.ClientSession, member: EtcdMember) -> bool:
    url = f"http://{member.endpoint}/health"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as reply:
            if reply.status != 200:
                return False
            document = await reply.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(document, dict) and document.get("health") == "true"
