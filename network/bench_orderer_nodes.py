"""The orderer processes `medledger bench orderer` measures: solo, or an etcd cluster.

`running_orderers(folder, backend=..., tls=...)` makes the crypto material and genesis
block of a small consortium (a hospital with one client, a commission running the
orderers), starts the orderers through the CLI (each on a core of its own choosing),
joins each one to the channel over the participation API and yields an
`OrderingNodes`. Solo: one orderer. etcd: a local three-member etcd cluster
(network.etcd_local) and three orderers on fixed loopback ports, all consenters of the
channel; `cutter_index()` tells which one won the channel's election.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from common.node import READY_PREFIX, parse_ready_line
from network.etcd_local import LocalEtcd, free_ports
from network.orderer_material import (
    ORDERING,
    OrdererMaterial,
    build_orderer_material,
    small_spec,
    write_orderer_yaml,
)
from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import CutterInfo
from orderer.consensus.etcd_log import ChannelKeys

__all__ = ["OrdererProcess", "OrderingNodes", "running_orderers"]

READY_TIMEOUT_S = 60.0
ELECTION_TIMEOUT_S = 30.0
ETCD_PREFIX = "/medledger-bench"
ETCD_ORDERERS = 3
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class OrdererProcess:
    """One started orderer: its name, gRPC address and process."""

    name: str
    address: str
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class OrderingNodes:
    """The running ordering service of one benchmark."""

    backend: str
    material: OrdererMaterial
    orderers: list[OrdererProcess] = field(default_factory=list)
    etcd: LocalEtcd | None = None

    @property
    def tls_ca(self) -> Path:
        return self.material.crypto.organization(ORDERING).orderer("orderer0").tls_ca

    def pids(self) -> dict[str, int]:
        """Every process of the service by a short name (orderers, then etcd members)."""
        found = {f"orderer{index}": o.pid for index, o in enumerate(self.orderers)}
        for member in self.etcd.members if self.etcd is not None else ():
            found[member.name] = member.process.pid
        return found

    def worker_pids(self) -> dict[str, list[int]]:
        """The live child processes of each orderer (e.g. its signature worker), by the
        orderer's short name in `pids`."""
        return {
            f"orderer{index}": _children(orderer.pid)
            for index, orderer in enumerate(self.orderers)
        }

    async def cutter_index(self) -> int:
        """Which orderer cuts the channel's blocks (0 for solo)."""
        if self.etcd is None:
            return 0
        client = EtcdClient(self.etcd.endpoints)
        keys = ChannelKeys.under(ETCD_PREFIX, self.material.channel)
        deadline = time.monotonic() + ELECTION_TIMEOUT_S
        try:
            while (current := await client.get(keys.cutter)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no cutter elected")
                await asyncio.sleep(_POLL_S)
        finally:
            await client.close()
        name = CutterInfo.decode(current.value).orderer_name
        return next(i for i, o in enumerate(self.orderers) if o.name == name)

    async def close(self) -> None:
        for orderer in self.orderers:
            if orderer.process.returncode is None:
                orderer.process.terminate()
        for orderer in self.orderers:
            await orderer.process.wait()
        if self.etcd is not None:
            await self.etcd.stop()


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc; none elsewhere)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.extend(int(c) for c in (task / "children").read_text().split())
    return sorted(children)


@contextlib.asynccontextmanager
async def running_orderers(
    folder: Path, *, backend: str, tls: bool
) -> AsyncIterator[OrderingNodes]:
    """The started, joined ordering service; stopped on exit."""
    if backend not in ("solo", "etcd"):
        raise ValueError(f"unknown backend {backend!r} (solo or etcd)")
    ports = free_ports(ETCD_ORDERERS) if backend == "etcd" else [0]
    material = build_orderer_material(
        folder / "material", small_spec(orderer_type=backend, orderer_ports=ports)
    )
    nodes = OrderingNodes(backend, material)
    try:
        if backend == "etcd":
            nodes.etcd = await LocalEtcd.start(folder / "etcd", size=3)
        configs = [
            _orderer_yaml(folder, material, nodes.etcd, index=index, port=port, tls=tls)
            for index, port in enumerate(ports)
        ]
        started = await asyncio.gather(*(_start(*config) for config in configs))
        nodes.orderers.extend(orderer for orderer, _ in started)
        await asyncio.gather(*(_join(admin, material) for _, admin in started))
        yield nodes
    finally:
        await nodes.close()


def _orderer_yaml(
    folder: Path,
    material: OrdererMaterial,
    etcd: LocalEtcd | None,
    *,
    index: int,
    port: int,
    tls: bool,
) -> tuple[str, Path]:
    """(name, orderer<index>.yaml): the solo file of network.orderer_material, adapted."""
    path = write_orderer_yaml(
        folder / f"orderer{index}.yaml",
        material,
        storage=folder / f"storage{index}",
        tls=tls,
        listen=f"127.0.0.1:{port}",
    )
    if etcd is None:
        return material.orderer.name, path
    document = json.loads(path.read_text())
    layout = material.crypto.organization(ORDERING).orderer(f"orderer{index}")
    document["name"] = layout.name
    document["msp"]["dir"] = str(layout.msp_dir)
    if tls:
        document["tls"]["cert"] = str(layout.tls_cert)
        document["tls"]["key"] = str(layout.tls_key)
    document["backend"] = {
        "type": "etcd",
        "etcd": {"endpoints": list(etcd.endpoints), "prefix": ETCD_PREFIX},
    }
    path.write_text(json.dumps(document, indent=2))
    return layout.name, path


async def _start(name: str, config: Path) -> tuple[OrdererProcess, str]:
    """Start `medledger orderer start -c config`; (the process, its admin address)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        "orderer",
        "start",
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        addresses = await _wait_ready(process)
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    return OrdererProcess(name, addresses["grpc"], process), addresses["admin"]


async def _wait_ready(process: asyncio.subprocess.Process) -> dict[str, str]:
    assert process.stdout is not None
    async with asyncio.timeout(READY_TIMEOUT_S):
        while line := await process.stdout.readline():
            text = line.decode()
            if text.startswith(READY_PREFIX):
                return parse_ready_line(text.strip())
    raise RuntimeError(f"orderer exited before READY (code {process.returncode})")


async def _join(admin: str, material: OrdererMaterial) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block",
        material.genesis_file.read_bytes(),
        filename="genesis.block",
        content_type="application/octet-stream",
    )
    url = f"http://{admin}/participation/v1/channels"
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=form) as response,
    ):
        if response.status != 201:
            raise RuntimeError(
                f"join failed: {response.status} {await response.text()}"
            )
