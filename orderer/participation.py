"""The channel participation REST API (`/participation/v1/channels`), as osnadmin uses it.

    GET    /participation/v1/channels         200 {"systemChannel": null, "channels": [...]}
    POST   /participation/v1/channels         multipart part `config-block` = a genesis
                                              block: 201 + Location + channel info
    GET    /participation/v1/channels/<name>  200 {"name", "url", "consensusRelation",
                                              "status", "height"}
    DELETE /participation/v1/channels/<name>  204
    GET    /participation/v1/                 302 to /participation/v1/channels

Errors are `{"error": "..."}` with Fabric's codes: 400 bad request or invalid join
block, 404 unknown channel, 405 (with Allow) for an existing channel or a wrong method,
406 when the client does not accept JSON. As Fabric, an empty channel list is `null`.
Responses are JSON followed by a newline, as Go's encoder writes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, web

from common.errors import WireError
from common.protoutil import parse_block
from orderer.errors import ChannelExists, ChannelNotJoined, JoinRejected
from orderer.registrar import ChannelInfo, Registrar, is_valid_channel_name

__all__ = ["CHANNELS_PATH", "build_app"]

_LOG = logging.getLogger(__name__)

BASE_PATH = "/participation/v1/"
CHANNELS_PATH = BASE_PATH + "channels"
CONFIG_BLOCK_PART = "config-block"
MAX_BODY_BYTES = 100 * 1024 * 1024

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(registrar: Registrar) -> web.Application:
    """The aiohttp application serving the participation API for `registrar`."""
    api = _ParticipationApi(registrar)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get(CHANNELS_PATH, _json_only(api.list_channels))
    app.router.add_post(CHANNELS_PATH, _json_only(api.join))
    app.router.add_route("*", CHANNELS_PATH, _not_allowed("GET, POST"))
    channel = CHANNELS_PATH + "/{name}"
    app.router.add_get(channel, _json_only(api.channel_info))
    app.router.add_delete(channel, _json_only(api.remove))
    app.router.add_route("*", channel, _not_allowed("GET, DELETE"))
    app.router.add_get(BASE_PATH, _redirect_to_channels)
    return app


class _ParticipationApi:
    def __init__(self, registrar: Registrar) -> None:
        self._registrar = registrar

    async def list_channels(self, _request: web.Request) -> web.Response:
        channels = [
            {"name": name, "url": _channel_url(name)}
            for name in self._registrar.names()
        ]
        body = {"systemChannel": None, "channels": channels or None}
        return _json(200, body, headers={"Cache-Control": "no-store"})

    async def channel_info(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not is_valid_channel_name(name):
            return _error(400, f"invalid channel ID: {name!r}")
        try:
            info = self._registrar.info(name)
        except ChannelNotJoined as error:
            return _error(404, str(error))
        return _json(200, _info_json(info), headers={"Cache-Control": "no-store"})

    async def join(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/form-data"):
            return _error(
                400,
                f"unsupported Content-Type: [{request.headers.get('Content-Type')}]",
            )
        try:
            block_bytes = await _read_config_block(request)
            block = parse_block(block_bytes)
        except (_FormError, WireError) as error:
            return _error(400, str(error))
        try:
            info = await self._registrar.join(block)
        except JoinRejected as error:
            return _error(400, f"cannot join: {error}")
        except ChannelExists as error:
            return _error(405, f"cannot join: {error}", allow="GET, DELETE")
        url = _channel_url(info.name)
        return _json(201, _info_json(info), headers={"Location": url})

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not is_valid_channel_name(name):
            return _error(400, f"invalid channel ID: {name!r}")
        try:
            await self._registrar.remove(name)
        except ChannelNotJoined as error:
            return _error(404, f"cannot remove: {error}")
        return web.Response(status=204)


class _FormError(Exception):
    """The multipart body is not a single `config-block` file part."""


async def _read_config_block(request: web.Request) -> bytes:
    try:
        reader = await request.multipart()
        parts: dict[str, bytes] = {}
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise _FormError("form contains nested multipart parts")
            parts[part.name or ""] = bytes(await part.read(decode=False))
    except (ValueError, AssertionError) as error:
        raise _FormError(f"cannot read form from request body: {error}") from None
    if CONFIG_BLOCK_PART not in parts:
        raise _FormError(f"form does not contains part key: {CONFIG_BLOCK_PART}")
    if len(parts) != 1:
        raise _FormError("form contains too many parts")
    return parts[CONFIG_BLOCK_PART]


def _json_only(handler: _Handler) -> _Handler:
    """Answer 406 unless the client accepts JSON (no Accept header accepts anything)."""

    async def negotiated(request: web.Request) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        options = [option.strip() for option in accept.split(",")]
        if accept and not any(
            kind in option
            for option in options
            for kind in ("application/json", "application/*", "*/*")
        ):
            return _error(406, "response Content-Type is application/json only")
        return await handler(request)

    return negotiated


def _not_allowed(allow: str) -> _Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _error(405, f"invalid request method: {request.method}", allow=allow)

    return handler


async def _redirect_to_channels(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(CHANNELS_PATH)


def _channel_url(name: str) -> str:
    return f"{CHANNELS_PATH}/{name}"


def _info_json(info: ChannelInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "url": _channel_url(info.name),
        "consensusRelation": info.consensus_relation,
        "status": info.status,
        "height": info.height,
    }


def _error(status: int, message: str, *, allow: str | None = None) -> web.Response:
    headers = {"Allow": allow} if allow else None
    return _json(status, {"error": message}, headers=headers)


def _json(
    status: int, body: object, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body) + "\n",
        content_type="application/json",
        headers=headers,
    )
