"""common.node and common.tls helpers: the READY line, serve's stop order, cert hashes.

Method: a fake Node records its calls; `serve` runs until a job ends by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from common.node import parse_ready_line, ready_line, serve
from common.tls import cert_hash
from network.orderer_material import build_orderer_material


class FakeNode:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.finish = asyncio.Event()

    async def start(self) -> dict[str, str]:
        self.calls.append("start")
        return {"grpc": "127.0.0.1:7050"}

    def jobs(self) -> list[Coroutine[Any, Any, None]]:
        return [self._job()]

    async def _job(self) -> None:
        try:
            await self.finish.wait()
        finally:
            self.calls.append("job ended")

    async def stop(self, grace_s: float) -> None:
        self.calls.append(f"stop {grace_s}")


def test_ready_line_round_trips() -> None:
    line = ready_line({"grpc": "127.0.0.1:1", "admin": "127.0.0.1:2"})

    assert line == 'READY {"admin": "127.0.0.1:2", "grpc": "127.0.0.1:1"}'
    assert parse_ready_line(line) == {"admin": "127.0.0.1:2", "grpc": "127.0.0.1:1"}
    with pytest.raises(ValueError, match="READY"):
        parse_ready_line("READY [1, 2]")


async def test_serve_prints_one_ready_line_and_stops_before_cancelling_jobs() -> None:
    node = FakeNode()
    out = io.StringIO()
    node.finish.set()  # the job ends right after start, which ends serve

    await asyncio.wait_for(serve(node, grace_s=1.5, stdout=out), 5)

    assert out.getvalue() == 'READY {"grpc": "127.0.0.1:7050"}\n'
    assert node.calls == ["start", "job ended", "stop 1.5", "stop 1.5"]


def test_cert_hash_is_sha256_of_der_for_pem_and_der(tmp_path: Path) -> None:
    material = build_orderer_material(tmp_path)
    pem = material.orderer.tls_cert.read_bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())

    assert cert_hash(pem) == cert_hash(der) == hashlib.sha256(der).digest()
