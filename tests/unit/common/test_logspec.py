"""common.logspec and the operations /logspec route: parsing, applying, HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from common.config_fields import parse_address
from common.errors import ConfigError
from common.logspec import (
    LogLevels,
    LogSpec,
    assignments,
    level_name,
    parse_logspec,
    python_level,
)
from common.operations import OperationsServer, OperationsSettings

_BASE = "tests.logspec"


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("info", "info"),
        ("DEBUG", "debug"),
        ("", "info"),
        ("warning", "warn"),
        ("notice", "info"),
        ("critical", "error"),
        ("gossip=debug:info", "gossip=debug:info"),
        ("error:gossip=debug", "gossip=debug:error"),
        ("debug:warn", "warn"),  # the last bare level wins
        ("debug:", "info"),  # an empty segment counts as info
        (
            "peer.privdata,peer.committer=debug:orderer.broadcast=Warn:payload",
            "orderer.broadcast=warn:peer.committer=debug:peer.privdata=debug:payload",
        ),
        ("a=debug:a=error", "a=error:info"),  # a later term for the same logger wins
        ("peer.=debug:peer=fatal", "peer=fatal:peer.=debug:info"),
        ("my_mod-2#x=dpanic", "my_mod-2#x=dpanic:info"),
    ],
)
def test_good_specs_normalise(text: str, normalised: str) -> None:
    assert str(parse_logspec(text)) == normalised
    assert parse_logspec(str(parse_logspec(text))) == parse_logspec(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("bogus", "bad segment 'bogus'"),
        ("gossip=verbose:info", "bad segment 'gossip=verbose'"),
        ("gossip=", "bad segment 'gossip='"),
        ("=debug", "no logger in segment '=debug'"),
        ("a=b=debug", "bad segment 'a=b=debug'"),
        ("a,,b=debug", "bad logger name ''"),
        (".peer=debug", "bad logger name '.peer'"),
        ("peer..endorser=debug", "bad logger name 'peer..endorser'"),
        ("peer endorser=debug", "bad logger name 'peer endorser'"),
        ("peer=debug:info:x", "bad segment 'x'"),
    ],
)
def test_bad_specs_name_the_segment(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_logspec(text)
    assert str(raised.value) == f"invalid logging specification '{text}': {why}"


def test_level_for_longest_prefix_exact_then_default() -> None:
    spec = parse_logspec("peer=warn:peer.privdata=debug:peer.=error:info")
    assert spec.level_for("peer") == "error"  # the exact term
    assert spec.level_for("peer.endorser") == "warn"
    assert spec.level_for("peer.privdata") == "debug"
    assert spec.level_for("peer.privdata.reconcile") == "debug"
    assert spec.level_for("peerless") == "info"  # not a name below peer
    assert spec.level_for("orderer") == "info"


def test_python_levels_and_names() -> None:
    assert [python_level(name) for name in ("debug", "info", "warn", "error")] == [
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        logging.ERROR,
    ]
    assert python_level("payload") < logging.DEBUG
    assert python_level("fatal") == python_level("panic") == logging.CRITICAL
    assert level_name(logging.WARNING) == "warn"
    assert level_name(logging.NOTSET) == "payload"
    assert level_name(logging.INFO + 5) == "info"


def test_assignments_pin_loggers_below_an_exact_term() -> None:
    spec = parse_logspec("peer.=debug:peer.privdata=warn:error")
    existing = ["peer", "peer.endorser", "peer.privdata", "peer.privdata.pull", "x"]
    assert assignments(spec, existing) == {
        "peer": logging.DEBUG,
        "peer.endorser": logging.ERROR,  # the default, not peer.'s debug
        "peer.privdata": logging.WARNING,
        "peer.privdata.pull": logging.WARNING,
    }
    assert assignments(parse_logspec("peer=debug"), existing) == {"peer": logging.DEBUG}


@pytest.fixture
def levels() -> Iterator[LogLevels]:
    """A LogLevels whose changes (root level included) are undone after the test."""
    root = logging.getLogger()
    original = root.level
    levels = LogLevels()
    try:
        yield levels
    finally:
        levels.activate(LogSpec())
        root.setLevel(original)


def test_activate_sets_levels_and_replaces_the_previous_spec(
    levels: LogLevels,
) -> None:
    endorser = logging.getLogger(f"{_BASE}.peer.endorser")
    child = logging.getLogger(f"{_BASE}.peer.endorser.sub")
    kept = logging.getLogger(f"{_BASE}.kept")
    kept.setLevel(logging.ERROR)  # a level set by someone else: put back on reset
    try:
        levels.activate(parse_logspec(f"{_BASE}.peer=debug:{_BASE}.kept=info:warn"))
        assert logging.getLogger().level == logging.WARNING
        assert child.getEffectiveLevel() == logging.DEBUG
        assert kept.level == logging.INFO
        assert str(levels.spec()) == f"{_BASE}.kept=info:{_BASE}.peer=debug:warn"

        levels.activate(parse_logspec("error"))
        assert (endorser.getEffectiveLevel(), child.getEffectiveLevel()) == (
            logging.ERROR,
            logging.ERROR,
        )
        assert logging.getLogger(f"{_BASE}.peer").level == logging.NOTSET
        assert kept.level == logging.ERROR
    finally:
        kept.setLevel(logging.NOTSET)


def test_exact_term_leaves_existing_children_at_their_level(
    levels: LogLevels,
) -> None:
    parent = logging.getLogger(f"{_BASE}.exact")
    child = logging.getLogger(f"{_BASE}.exact.child")
    levels.activate(parse_logspec(f"{_BASE}.exact.=debug:warn"))
    assert (parent.getEffectiveLevel(), child.getEffectiveLevel()) == (
        logging.DEBUG,
        logging.WARNING,
    )
    levels.activate(parse_logspec("info"))
    assert (parent.level, child.level) == (logging.NOTSET, logging.NOTSET)


def test_spec_before_any_activation_reports_the_root_level(
    levels: LogLevels,
) -> None:
    logging.getLogger().setLevel(logging.ERROR)
    assert levels.spec() == LogSpec(default="error")


@pytest.fixture
async def endpoint(levels: LogLevels) -> AsyncIterator[str]:
    """The base URL of a real operations listener on a free port, using `levels`."""
    server = OperationsServer(
        OperationsSettings("127.0.0.1:0"), registries=(), log_levels=levels
    )
    address = await server.start()
    try:
        yield f"http://{address}/logspec"
    finally:
        await server.stop()


async def _call(
    url: str, method: str, body: object = None, *, raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else None if body is None else json.dumps(body)
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, data=data) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_get_returns_the_active_spec(endpoint: str, levels: LogLevels) -> None:
    levels.activate(parse_logspec("info"))
    status, headers, body = await _call(endpoint, "GET")
    assert (status, headers["Content-Type"], json.loads(body)) == (
        200,
        "application/json",
        {"spec": "info"},
    )


async def test_put_changes_a_loggers_effective_level(endpoint: str) -> None:
    target = logging.getLogger(f"{_BASE}.http.endorser")
    spec = f"{_BASE}.http=debug:warn"
    status, _, body = await _call(endpoint, "PUT", {"spec": spec})
    assert (status, body) == (204, b"")
    assert target.getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger(f"{_BASE}.other").getEffectiveLevel() == logging.WARNING
    assert json.loads((await _call(endpoint, "GET"))[2]) == {"spec": spec}

    assert (await _call(endpoint, "PUT", {"spec": "error"}))[0] == 204
    assert target.getEffectiveLevel() == logging.ERROR  # the earlier term is gone


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"spec": "gossip=loud:info"}, "bad segment 'gossip=loud'"),
        ({"spec": "=debug"}, "no logger in segment"),
        ({"spec": 3}, '"spec" is not a string'),
        (["info"], "not a JSON object"),
    ],
)
async def test_bad_spec_or_body_is_400_and_changes_nothing(
    endpoint: str, levels: LogLevels, body: object, why: str
) -> None:
    levels.activate(parse_logspec("warn"))
    status, headers, answer = await _call(endpoint, "PUT", body)
    assert (status, headers["Content-Type"]) == (400, "application/json")
    assert why in json.loads(answer)["error"]
    assert str(levels.spec()) == "warn"
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"\xff\xfe", b"[" * 5000, b'{"spec": "info"'], ids=repr
)
async def test_unreadable_body_is_400(endpoint: str, raw: bytes) -> None:
    status, _, answer = await _call(endpoint, "PUT", raw=raw)
    assert status == 400
    assert "not JSON" in json.loads(answer)["error"]


async def test_missing_spec_resets_to_info_as_fabric_does(endpoint: str) -> None:
    assert (await _call(endpoint, "PUT", {"spec": "debug"}))[0] == 204
    assert (await _call(endpoint, "PUT", {"other": 1}))[0] == 204
    assert json.loads((await _call(endpoint, "GET"))[2]) == {"spec": "info"}


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH"])
async def test_other_methods_are_405(endpoint: str, method: str) -> None:
    status, headers, _ = await _call(endpoint, method, {"spec": "debug"})
    assert (status, headers["Allow"]) == (405, "GET, HEAD, PUT")


async def _raw_exchange(url: str, request: bytes) -> int:
    host, port = parse_address(url.removeprefix("http://").split("/")[0])
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 9000\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 1e3\r\n",
        b"Transfer-Encoding: chunked\r\n",
    ],
)
async def test_body_framing_errors_are_400(endpoint: str, headers: bytes) -> None:
    request = b"PUT /logspec HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    assert await _raw_exchange(endpoint, request) == 400
    healthz = b"GET /healthz HTTP/1.1\r\n\r\n"
    assert await _raw_exchange(endpoint, healthz) == 200
