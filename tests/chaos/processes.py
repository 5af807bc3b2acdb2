"""`medledger orderer start` processes on the etcd backend, under a steady Broadcast load.

`CliOrderer` writes an orderer.yaml (TLS listener on a fixed loopback port, etcd
backend with TLS client certificates), starts the process through the CLI, joins the
channel over the participation API and keeps one Broadcast stream open to it; it can
SIGKILL, SIGSTOP, SIGCONT and restart the process on its storage. `Load` sends fresh
signed envelopes at a steady rate to the orderers that are up and not paused.
`LoadRecord` keeps what was sent where, every answer (Broadcast answers in order on a
stream) and when it came, so a test can check afterwards that every SUCCESS is in the
chain and measure the longest time without one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio

from common.tls import TlsFiles, channel_credentials
from orderer.registrar import CHANNELS_FOLDER
from protos.common import common_pb2
from protos.orderer import ab_pb2
from tests.chaos.orderers import ORDERER_MSP, ChannelFixture, Consortium
from tests.support.etcd import EtcdTls, wait_for_state
from tests.support.processes import CliProcess, start_cli

BROADCAST = "/orderer.AtomicBroadcast/Broadcast"
STOP_TIMEOUT_S = 15.0
_SUCCESS = common_pb2.SUCCESS


@dataclass
class LoadRecord:
    """Every envelope sent (by digest), every answer, and the time of each SUCCESS."""

    sent: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, digest: str, response: ab_pb2.BroadcastResponse) -> None:
        if response.status == _SUCCESS:
            self.acked[digest] = time.monotonic()
        else:
            self.errors[digest] = f"{response.status} {response.info}"
        self.changed.set()

    def acked_tx(self) -> set[str]:
        return {self.sent[digest][0] for digest in self.acked}

    def acks_since(self, moment: float) -> int:
        """SUCCESS answers to envelopes sent after `moment`."""
        return sum(1 for digest in self.acked if self.sent[digest][2] > moment)

    def longest_silence(self, start: float, end: float) -> float:
        """The longest time in [start, end] without a SUCCESS arriving."""
        times = sorted(at for at in self.acked.values() if start <= at <= end)
        marks = [start, *times, end]
        return max(later - earlier for earlier, later in itertools.pairwise(marks))

    async def wait(self, condition: object, *, timeout_s: float, what: str) -> None:
        """Wait (on answers arriving) until `condition()` holds."""
        assert callable(condition)
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached within {timeout_s} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self.changed.wait()


class CliOrderer:
    """One orderer process of the cluster, with a Broadcast stream to it."""

    def __init__(
        self,
        index: int,
        *,
        folder: Path,
        consortium: Consortium,
        channel: ChannelFixture,
        endpoints: tuple[str, ...],
        etcd_tls: EtcdTls | None,
        port: int,
        record: LoadRecord,
        tls: bool = True,
    ) -> None:
        self.index = index
        self.folder = folder
        self.channel = channel
        self.record = record
        layout = consortium.crypto.organization(ORDERER_MSP).orderer(f"orderer{index}")
        self.name = layout.name
        self.address = f"127.0.0.1:{port}"
        self.tls_ca = layout.tls_ca if tls else None
        self.config_path = _write_config(
            folder / "orderer.yaml",
            consortium=consortium,
            index=index,
            listen=self.address,
            storage=folder / "storage",
            endpoints=endpoints,
            etcd_tls=etcd_tls,
            tls=tls,
        )
        self.process: CliProcess | None = None
        self.log = folder / "orderer-0.log"
        self.paused = False
        self.outstanding: collections.deque[str] = collections.deque()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._stream: _Stream | None = None
        self._starts = itertools.count()

    @property
    def storage(self) -> Path:
        """The channel's block store folder."""
        return self.folder / "storage" / CHANNELS_FOLDER / self.channel.channel_id

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.popen.poll() is None

    @property
    def accepts_load(self) -> bool:
        return self.is_running and not self.paused

    async def start(self) -> None:
        """Start (or restart on its storage), join if new, open the Broadcast stream."""
        log = self.folder / f"orderer-{next(self._starts)}.log"
        self.log = log
        self.process = start_cli(
            ["orderer", "start", "-c", str(self.config_path)],
            stderr_path=log,
            env={"PYTHONFAULTHANDLER": "1"},
        )
        addresses = await asyncio.to_thread(self.process.wait_ready)
        if not self.storage.exists():
            await _join(addresses["admin"], self.channel)
        self.paused = False
        self.outstanding.clear()
        self._queue = asyncio.Queue()
        self._stream = _Stream(self)
        await self._stream.open()

    def send(self, digest: str, envelope: bytes) -> bool:
        """Queue one envelope on the stream; False when the orderer is down or paused."""
        if not self.accepts_load or self._stream is None:
            return False
        self.outstanding.append(digest)
        self._queue.put_nowait(envelope)
        return True

    def kill(self) -> None:
        if self.is_running:
            assert self.process is not None
            self.process.popen.send_signal(signal.SIGCONT)
            self.process.popen.kill()

    def pause(self) -> None:
        assert self.process is not None
        self.process.popen.send_signal(signal.SIGSTOP)
        wait_for_state(self.process.pid, stopped=True)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.popen.send_signal(signal.SIGCONT)
        wait_for_state(self.process.pid, stopped=False)
        self.paused = False

    async def restart(self) -> None:
        self.kill()
        await self.close_stream()
        if self.process is not None:
            await asyncio.to_thread(self.process.kill)
        await self.start()

    async def terminate(self) -> None:
        """Close the stream, SIGTERM (graceful: resign, close the store) and reap.

        An orderer still running after `STOP_TIMEOUT_S` gets SIGABRT first, so that
        its log ends with every thread's stack (PYTHONFAULTHANDLER), then SIGKILL.
        """
        await self.close_stream()
        if self.process is None or not self.is_running:
            return
        popen = self.process.popen
        popen.send_signal(signal.SIGCONT)
        popen.terminate()
        try:
            await asyncio.to_thread(popen.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            popen.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(popen.wait, 5)
            await asyncio.to_thread(self.process.kill)
            raise AssertionError(
                f"{self.name} did not stop; stacks in {self.log}"
            ) from None
        await asyncio.to_thread(self.process.kill)  # reaps it, closes its stdout pipe

    async def close_stream(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None

    def answered(self, response: ab_pb2.BroadcastResponse) -> None:
        digest = self.outstanding.popleft()
        self.record.answer(digest, response)

    async def next_envelope(self) -> bytes:
        return await self._queue.get()


class _Stream:
    """One Broadcast stream: a writer draining the queue, a reader taking answers."""

    def __init__(self, orderer: CliOrderer) -> None:
        self.orderer = orderer
        self.channel = open_channel(orderer)
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        method = self.channel.stream_stream(  # type: ignore[call-arg]
            BROADCAST, response_deserializer=ab_pb2.BroadcastResponse.FromString
        )
        call: Any = method()  # type: ignore[call-arg]
        self.tasks = [
            asyncio.create_task(self._write(call)),
            asyncio.create_task(self._read(call)),
        ]

    async def _write(self, call: Any) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while True:
                await call.write(await self.orderer.next_envelope())

    async def _read(self, call: Any) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for response in call:
                self.orderer.answered(response)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.channel.close(grace=None)


class Load:
    """Fresh envelopes at a steady rate to the orderers that take load."""

    def __init__(
        self,
        record: LoadRecord,
        orderers: list[CliOrderer],
        *,
        channel: ChannelFixture,
        rng: random.Random,
        rate_per_s: float,
    ) -> None:
        self.record = record
        self.orderers = orderers
        self.channel = channel
        self.rng = rng
        self.rate_per_s = rate_per_s
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        tick_s = 0.02
        owed = 0.0
        while not self.stopped.is_set():
            owed += self.rate_per_s * tick_s
            while owed >= 1:
                owed -= 1
                self._send_one()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick_s):
                    await self.stopped.wait()

    def _send_one(self) -> None:
        targets = [o for o in self.orderers if o.accepts_load]
        if not targets:
            return
        target = self.rng.choice(targets)
        payload = os.urandom(self.rng.randint(100, 2000))
        envelope, tx_id = self.channel.envelope(payload)
        digest = hashlib.sha256(envelope).hexdigest()
        self.record.sent[digest] = (tx_id, target.name, time.monotonic())
        if not target.send(digest, envelope):
            del self.record.sent[digest]


def open_channel(orderer: CliOrderer) -> grpc.aio.Channel:
    """A gRPC channel to the orderer's listener (TLS unless it runs plaintext)."""
    if orderer.tls_ca is None:
        return grpc.aio.insecure_channel(orderer.address)
    credentials = channel_credentials(TlsFiles(root_cas=(orderer.tls_ca,)))
    return grpc.aio.secure_channel(orderer.address, credentials)


async def _join(admin: str, channel: ChannelFixture) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block", channel.genesis.SerializeToString(), filename="genesis.block"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{admin}/participation/v1/channels", data=form) as response,
    ):
        assert response.status == 201, await response.text()


def _write_config(
    path: Path,
    *,
    consortium: Consortium,
    index: int,
    listen: str,
    storage: Path,
    endpoints: tuple[str, ...],
    etcd_tls: EtcdTls | None,
    tls: bool,
) -> Path:
    """orderer.yaml (as JSON) for orderer `index` of the ordering organisation."""
    layout = consortium.crypto.organization(ORDERER_MSP).orderer(f"orderer{index}")
    tls_section = {
        "enabled": True,
        "cert": str(layout.tls_cert),
        "key": str(layout.tls_key),
        "client_root_cas": [
            str(org.tlsca_cert) for org in consortium.crypto.organizations
        ],
        "mutual": False,
    }
    etcd: dict[str, object] = {"endpoints": list(endpoints)}
    if etcd_tls is not None:
        etcd["tls"] = {
            "enabled": True,
            "cert": str(etcd_tls.client_cert_file),
            "key": str(etcd_tls.client_key_file),
            "root_cas": [str(etcd_tls.ca_file)],
        }
    document = {
        "name": layout.name,
        "msp": {"id": ORDERER_MSP, "dir": str(layout.msp_dir)},
        "listen": listen,
        "tls": tls_section if tls else {"enabled": False},
        "admin": {"listen": "127.0.0.1:0", "tls": {"enabled": False}},
        "storage": str(storage),
        "backend": {"type": "etcd", "etcd": etcd},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path
