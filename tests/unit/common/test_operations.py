"""common.operations: the HTTP endpoint over a real socket, good and bad requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from common.config import ConfigNode, parse_yaml
from common.config_fields import parse_address
from common.errors import ConfigError
from common.metrics import CONTENT_TYPE, Registry
from common.operations import (
    HealthCheck,
    OperationsServer,
    OperationsSettings,
    read_operations,
)

_Served = tuple[str, dict[str, HealthCheck], Registry]


@pytest.fixture
async def served() -> AsyncIterator[_Served]:
    registry = Registry()
    registry.counter("endorser_proposals_received", "Proposals received.").inc(3)
    checks: dict[str, HealthCheck] = {}
    server = OperationsServer(
        OperationsSettings("127.0.0.1:0"),
        registries=(registry,),
        checks=checks,
        version="9.9.9",
    )
    address = await server.start()
    try:
        yield address, checks, registry
    finally:
        await server.stop()


async def _exchange(address: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes the connection)."""
    host, port = parse_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), headers, body


def _get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def test_healthz_ok_without_failing_checks(
    served: _Served,
) -> None:
    address, _, _ = served
    status, headers, body = await _exchange(address, _get("/healthz"))
    document = json.loads(body)
    assert (status, headers["Content-Type"], document["status"]) == (
        200,
        "application/json",
        "OK",
    )
    assert "failed_checks" not in document


async def test_healthz_503_names_each_failed_check(
    served: _Served,
) -> None:
    """A raising check is reported with its reason; a passing one is not listed."""
    address, checks, _ = served

    async def broken() -> None:
        raise RuntimeError("ledger records is closed")

    async def fine() -> None:
        return None

    checks.update(ledger=broken, feeds=fine)
    status, _, body = await _exchange(address, _get("/healthz"))
    document = json.loads(body)
    assert status == 503
    assert document["status"] == "Service Unavailable"
    assert document["failed_checks"] == [
        {"component": "ledger", "reason": "ledger records is closed"}
    ]


async def test_metrics_prometheus_text(served: _Served) -> None:
    address, _, registry = served
    registry.counter("late", "Registered after start.").inc()
    status, headers, body = await _exchange(address, _get("/metrics?x=1"))
    assert (status, headers["Content-Type"]) == (200, CONTENT_TYPE)
    assert "endorser_proposals_received 3\n" in body.decode()
    assert "late 1\n" in body.decode()
    assert int(headers["Content-Length"]) == len(body)


async def test_version_and_head(served: _Served) -> None:
    address, _, _ = served
    status, _, body = await _exchange(address, _get("/version"))
    assert (status, json.loads(body)) == (200, {"Version": "9.9.9"})
    status, headers, body = await _exchange(address, _get("/version", "HEAD"))
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (_get("/nope"), 404),
        (_get("/metrics", "POST"), 405),
        (_get("/healthz", "DELETE"), 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /metrics SPDY/3\r\n\r\n", 400),
        (b"get /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 400),
    ],
)
async def test_bad_requests_get_an_error_status(
    served: _Served, request_bytes: bytes, expected: int
) -> None:
    """Each malformed or unserved request gets its status; the server keeps serving."""
    address, _, _ = served
    status, headers, _ = await _exchange(address, request_bytes)
    assert status == expected
    if expected == 405:
        assert headers["Allow"] == "GET, HEAD"
    assert (await _exchange(address, _get("/healthz")))[0] == 200


async def test_client_closing_early_does_not_harm_the_server(
    served: _Served,
) -> None:
    """Half a request line, then the client goes away."""
    address, _, _ = served
    host, port = parse_address(address)
    _, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /met")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    assert (await _exchange(address, _get("/healthz")))[0] == 200


async def test_stop_ends_open_connections_and_is_idempotent() -> None:
    server = OperationsServer(OperationsSettings("127.0.0.1:0"), registries=())
    host, port = parse_address(await server.start())
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # headers never finished
    await writer.drain()
    await server.stop()
    await server.stop()
    # Ended either way: closed by its handler, or reset if it was still in the backlog.
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(5):
            assert await reader.read() == b""
    writer.close()


def test_read_operations() -> None:
    assert read_operations(None) is None
    node = _node("operations: {listen: 127.0.0.1:9443}")
    assert read_operations(node) == OperationsSettings("127.0.0.1:9443")
    with pytest.raises(ConfigError, match="host:port"):
        read_operations(_node("operations: {listen: nowhere}"))
    with pytest.raises(ConfigError, match="listen"):
        read_operations(_node("operations: {}"))


def _node(text: str) -> ConfigNode:
    return parse_yaml(text, source="node.yaml").as_mapping(optional=("operations",))[
        "operations"
    ]
