"""The operations endpoint of a node: health, metrics and version over plain HTTP.

Like Fabric's operations service, a peer, orderer or gateway whose config has an
``operations: {listen: host:port}`` key serves, on a listener of its own:

    GET /healthz   200 {"status": "OK", "time": ...}, or 503 {"status":
                   "Service Unavailable", "time": ..., "failed_checks": [{"component",
                   "reason"}]} when a health check fails
    GET /metrics   the Prometheus text exposition (format 0.0.4) of the registries
    GET /version   {"Version": ...}
    GET /logspec   {"spec": "peer.endorser=debug:info"}, the process's active log spec
    PUT /logspec   body {"spec": ...}: replaces the active spec (common.logspec has the
                   syntax and how logger names map), 204; a bad body or spec gets 400
                   {"error": why}

Other paths answer 404, other methods 405 (HEAD is served like GET, without body).
One request per connection (the answer closes it); requests are read with a deadline
and bounded sizes (a body needs Content-Length), so a slow or malformed client gets a 400
or is dropped, never crashes the listener. The listener has no TLS and no
authentication, /logspec included: bind it to a loopback or management address.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata

from common.config import ConfigNode
from common.config_fields import format_address, parse_address, read_address
from common.errors import ConfigError
from common.logspec import LOG_LEVELS, LogLevels, parse_logspec
from common.metrics import CONTENT_TYPE, REGISTRY, Registry, render

__all__ = [
    "HealthCheck",
    "OperationsServer",
    "OperationsSettings",
    "read_operations",
]

_LOG = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[None]]
"""Returns when the component is healthy; raises (with the reason) when it is not."""

READ_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 5.0
MAX_LINE_BYTES = 8 * 1024
MAX_HEADERS = 100
MAX_BODY_BYTES = 8 * 1024
MAX_CONNECTIONS = 64

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
_ALLOWED = ("GET", "HEAD")
_LOGSPEC_ALLOWED = ("GET", "HEAD", "PUT")


@dataclass(frozen=True, slots=True)
class OperationsSettings:
    """Where a node serves its operations endpoint."""

    listen: str


def read_operations(node: ConfigNode | None) -> OperationsSettings | None:
    """The optional ``operations:`` block of a node config (None when absent)."""
    if node is None:
        return None
    fields = node.as_mapping(required=("listen",))
    return OperationsSettings(listen=read_address(fields["listen"]))


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    body: bytes = b""


_Handler = Callable[[_Request], Awaitable[_Response]]


class OperationsServer:
    """The HTTP listener; `start()` binds and returns "host:port", `stop()` closes."""

    def __init__(
        self,
        settings: OperationsSettings,
        *,
        registries: Sequence[Registry] = (REGISTRY,),
        checks: Mapping[str, HealthCheck] | None = None,
        version: str | None = None,
        log_levels: LogLevels = LOG_LEVELS,
    ) -> None:
        self._settings = settings
        self._registries = tuple(registries)
        self._checks: Mapping[str, HealthCheck] = checks if checks is not None else {}
        self._version = version or _package_version()
        self._log_levels = log_levels
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> str:
        host, port = parse_address(self._settings.listen)
        self._server = await asyncio.start_server(
            self._on_connection, host, port, limit=MAX_LINE_BYTES
        )
        bound = self._server.sockets[0].getsockname()
        return format_address(host, int(bound[1]))

    async def stop(self) -> None:
        """Stop accepting and end open connections; safe to call more than once."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in self._connections.values():
            writer.close()  # its handler then reads end-of-file and returns
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            if len(self._connections) > MAX_CONNECTIONS:
                await _write(writer, _text(503, "too many connections\n"), "GET")
                return
            await self._serve_one(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or was too slow: nothing to answer
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async with asyncio.timeout(READ_TIMEOUT_S):
            try:
                request = await _read_request(reader)
            except _BadRequest as error:
                await _write(writer, _text(400, f"{error}\n"), "GET")
                return
        response = await self._route(request)
        await _write(writer, response, request.method)

    async def _route(self, request: _Request) -> _Response:
        routes: dict[str, tuple[tuple[str, ...], _Handler]] = {
            "/healthz": (_ALLOWED, lambda _: self._healthz()),
            "/metrics": (_ALLOWED, lambda _: self._metrics()),
            "/version": (_ALLOWED, lambda _: self._version_info()),
            "/logspec": (_LOGSPEC_ALLOWED, self._logspec),
        }
        route = routes.get(request.path)
        if route is None:
            return _text(404, f"no such path {request.path}\n")
        allowed, handler = route
        if request.method not in allowed:
            return _Response(
                405,
                "text/plain; charset=utf-8",
                f"method {request.method} not allowed\n".encode(),
                headers=(("Allow", ", ".join(allowed)),),
            )
        return await handler(request)

    async def _healthz(self) -> _Response:
        failed = [
            {"component": name, "reason": reason}
            for name, reason in await self._failed_checks()
        ]
        document: dict[str, object] = {
            "status": "Service Unavailable" if failed else "OK",
            "time": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        if failed:
            document["failed_checks"] = failed
        return _json(503 if failed else 200, document)

    async def _failed_checks(self) -> list[tuple[str, str]]:
        names = sorted(self._checks)
        outcomes = await asyncio.gather(
            *(_run_check(self._checks[name]) for name in names)
        )
        return [
            (name, reason)
            for name, reason in zip(names, outcomes, strict=True)
            if reason is not None
        ]

    async def _metrics(self) -> _Response:
        families = [
            family for registry in self._registries for family in registry.collect()
        ]
        return _Response(200, CONTENT_TYPE, render(families).encode())

    async def _version_info(self) -> _Response:
        return _json(200, {"Version": self._version})

    async def _logspec(self, request: _Request) -> _Response:
        """GET: the active spec; PUT {"spec": ...}: replace it (Fabric answers 204)."""
        if request.method != "PUT":
            return _json(200, {"spec": str(self._log_levels.spec())})
        try:
            spec = parse_logspec(_spec_field(request.body))
        except ConfigError as error:
            return _json(400, {"error": str(error)})
        self._log_levels.activate(spec)
        return _Response(204, "", b"")


class _BadRequest(Exception):
    """The request is not an HTTP/1.x request we can read."""


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    """The request: method, path without query, and the body its Content-Length names."""
    parts = (await _read_line(reader)).split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("malformed request line")
    method, target, _ = parts
    if not method.isalpha() or not method.isupper() or not target.startswith("/"):
        raise _BadRequest("malformed request line")
    length = 0
    for _ in range(MAX_HEADERS):
        line = await _read_line(reader)
        if not line:
            body = await reader.readexactly(length) if length else b""
            return _Request(method, target.split("?", 1)[0], body)
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = _content_length(value.strip())
        elif name.strip().lower() == "transfer-encoding":
            raise _BadRequest("a body needs Content-Length, not Transfer-Encoding")
    raise _BadRequest("too many header lines")


def _content_length(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise _BadRequest("malformed Content-Length")
    if int(value) > MAX_BODY_BYTES:
        raise _BadRequest(f"body longer than {MAX_BODY_BYTES} bytes")
    return int(value)


def _spec_field(body: bytes) -> str:
    """The "spec" of a PUT /logspec body; a missing one is "" (info), as in Fabric."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, too deep
        raise ConfigError(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError('the body is not a JSON object like {"spec": "info"}')
    spec = document.get("spec", "")
    if not isinstance(spec, str):
        raise ConfigError('"spec" is not a string')
    return spec


async def _read_line(reader: asyncio.StreamReader) -> str:
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise _BadRequest("line too long") from None
    if not line.endswith(b"\n"):
        raise asyncio.IncompleteReadError(line, None)
    try:
        return line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _BadRequest("request line or header is not ASCII") from None


async def _run_check(check: HealthCheck) -> str | None:
    """The reason the check failed, or None when it passed."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:.0f}s"
    except Exception as error:  # a failing check is reported, never raised
        return str(error) or type(error).__name__
    return None


async def _write(
    writer: asyncio.StreamWriter, response: _Response, method: str
) -> None:
    head = [f"HTTP/1.1 {response.status} {_REASONS[response.status]}"]
    if response.status != 204:  # a 204 has neither body nor body headers
        head += [
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
    head += [
        "Connection: close",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
    if method != "HEAD":
        writer.write(response.body)
    async with asyncio.timeout(READ_TIMEOUT_S):
        await writer.drain()


def _text(status: int, text: str) -> _Response:
    return _Response(status, "text/plain; charset=utf-8", text.encode())


def _json(status: int, document: Mapping[str, object]) -> _Response:
    return _Response(status, "application/json", json.dumps(document).encode())


def _package_version() -> str:
    try:
        return metadata.version("medledger")
    except metadata.PackageNotFoundError:
        return "unknown"
