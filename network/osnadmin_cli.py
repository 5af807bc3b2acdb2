"""`medledger orderer channel join|list|info|remove`: osnadmin for our orderers.

Each command makes one call to an orderer's channel participation REST API
(`/participation/v1/channels` on its admin listener) with osnadmin's options:
`-o/--orderer-address`, `--ca-file` (HTTPS when given) with `--client-cert` and
`--client-key` (mutual TLS), `-c/--channelID`, `-b/--config-block`, `--no-status`.
As osnadmin, an answer prints `Status: N` and the JSON body indented with tabs.
Unlike osnadmin, a refused request (HTTP 4xx/5xx) exits 1 with one line on stderr
that carries the orderer's error JSON; an unreachable orderer is one line too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import quote

import aiohttp

from common.errors import ConfigError, WireError
from common.protoutil import parse_block, parse_envelope
from common.tls import TlsFiles
from network.admin_calls import OrdererAdmin, participation_session
from network.channel_common import (
    DEFAULT_TIMEOUT_S,
    ChannelCommandError,
    add_timeout_argument,
    read_bytes,
)
from network.cli import EXIT_OK, add_command_group

__all__ = [
    "CONFIG_BLOCK_PART",
    "ParticipationReply",
    "ParticipationRequest",
    "add_orderer_channel_commands",
    "block_channel_id",
    "call_participation",
    "is_refused",
    "orderer_admin_of",
    "refusal_message",
    "response_output",
    "run_orderer_channel",
]

CONFIG_BLOCK_PART = "config-block"

if TYPE_CHECKING:
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


@dataclass(frozen=True, slots=True)
class ParticipationRequest:
    """One call: a method, a path below the channels URL ("" or "/NAME"), a block."""

    method: str
    path: str = ""
    config_block: bytes | None = None


@dataclass(frozen=True, slots=True)
class ParticipationReply:
    """The orderer's answer: the HTTP status and the body as text."""

    status: int
    body: str


RequestBuilder = Callable[[argparse.Namespace], ParticipationRequest]


def add_orderer_channel_commands(orderer_commands: _Commands) -> None:
    """Add `channel join|list|info|remove` under `medledger orderer`."""
    channel_commands = add_command_group(
        orderer_commands,
        "channel",
        summary="join, list, inspect or remove an orderer's channels (osnadmin)",
    )
    join = _add_command(
        channel_commands,
        "join",
        summary="join the orderer to a channel from its config block",
        description=(
            "POST the channel's genesis (or latest config) block to the orderer's "
            "participation API; the orderer creates the channel and answers 201 "
            "with the channel's information."
        ),
        build=join_request,
    )
    _add_channel_id(join, required=True)
    join.add_argument(
        "-b",
        "--config-block",
        type=Path,
        required=True,
        help="the file holding the channel's genesis or latest config block",
    )
    listing = _add_command(
        channel_commands,
        "list",
        summary="list the orderer's channels (one channel's details with -c)",
        description="GET the channels the orderer has joined, or one with -c.",
        build=list_request,
    )
    _add_channel_id(listing, required=False)
    info = _add_command(
        channel_commands,
        "info",
        summary="one channel's status, consensus relation and height",
        description="GET one channel's information (as `list -c CHANNEL`).",
        build=info_request,
    )
    _add_channel_id(info, required=True)
    remove = _add_command(
        channel_commands,
        "remove",
        summary="remove a channel from the orderer (its ledger is deleted)",
        description="DELETE the channel on the orderer; it answers 204.",
        build=remove_request,
    )
    _add_channel_id(remove, required=True)


def run_orderer_channel(args: argparse.Namespace) -> int:
    """Make the command's call; print the answer, or raise on a refusal.

    Raises:
        ChannelCommandError: bad options or files, the orderer is unreachable, or
            it refused (the message carries its status and error JSON).
    """
    admin = orderer_admin_of(args)
    build: RequestBuilder = args.build_request
    request = build(args)
    reply = asyncio.run(call_participation(admin, request, timeout_s=args.timeout))
    if is_refused(reply.status):
        raise ChannelCommandError(refusal_message(admin.address, reply))
    print(response_output(reply, show_status=not args.no_status))
    return EXIT_OK


def join_request(args: argparse.Namespace) -> ParticipationRequest:
    """POST the block, once it is known to be a block of the channel named.

    Raises:
        ChannelCommandError: unreadable, not a block, or of another channel.
    """
    block = read_bytes(args.config_block)
    channel_id = block_channel_id(block, source=args.config_block)
    if channel_id != args.channel_id:
        raise ChannelCommandError(
            f"specified --channelID {args.channel_id} does not match channel ID "
            f"{channel_id} in the config block {args.config_block}"
        )
    return ParticipationRequest("POST", config_block=block)


def list_request(args: argparse.Namespace) -> ParticipationRequest:
    if args.channel_id:
        return info_request(args)
    return ParticipationRequest("GET")


def info_request(args: argparse.Namespace) -> ParticipationRequest:
    return ParticipationRequest("GET", _channel_path(args.channel_id))


def remove_request(args: argparse.Namespace) -> ParticipationRequest:
    return ParticipationRequest("DELETE", _channel_path(args.channel_id))


def block_channel_id(block: bytes, *, source: Path) -> str:
    """The channel id in the channel header of the block's first envelope.

    Raises:
        ChannelCommandError: the bytes are no block, or it has no envelope.
    """
    try:
        parsed = parse_block(block)
        if not parsed.data.data:
            raise WireError("the block holds no envelope")
        return parse_envelope(parsed.data.data[0]).channel_id
    except WireError as error:
        raise ChannelCommandError(f"{source}: not a config block: {error}") from None


def orderer_admin_of(args: argparse.Namespace) -> OrdererAdmin:
    """The admin listener the options name, with TLS when --ca-file is given.

    Raises:
        ChannelCommandError: a client pair without --ca-file, half a pair, or a
            TLS file that does not exist.
    """
    pair = (args.client_cert, args.client_key)
    if args.ca_file is None and pair != (None, None):
        raise ChannelCommandError("--client-cert and --client-key need --ca-file")
    if (args.client_cert is None) != (args.client_key is None):
        raise ChannelCommandError("--client-cert and --client-key go together")
    address = args.orderer_address
    if args.ca_file is None:
        return OrdererAdmin(name=f"orderer {address}", address=address)
    for path in (args.ca_file, *pair):
        if path is not None and not path.is_file():
            raise ChannelCommandError(f"{path}: no such file")
    tls = TlsFiles(cert=args.client_cert, key=args.client_key, root_cas=(args.ca_file,))
    return OrdererAdmin(name=f"orderer {address}", address=address, tls=tls)


async def call_participation(
    admin: OrdererAdmin,
    request: ParticipationRequest,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ParticipationReply:
    """Send one request to the participation API; any HTTP answer is a reply.

    Raises:
        ChannelCommandError: the TLS files do not load, or the orderer cannot be
            reached or does not answer within `timeout_s`.
    """
    try:
        session = participation_session(admin, timeout_s=timeout_s)
    except (ConfigError, OSError, ValueError) as error:
        raise ChannelCommandError(
            f"the TLS files do not load: {_one_line(error)}"
        ) from None
    url = admin.url + request.path
    try:
        async with (
            session,
            session.request(
                request.method, url, data=_form(request.config_block)
            ) as response,
        ):
            body = await response.text(errors="replace")
            return ParticipationReply(response.status, body)
    except (aiohttp.ClientError, ssl.SSLError, TimeoutError) as error:
        reason = _one_line(error) or f"no answer within {timeout_s:g} s"
        if admin.tls is not None and admin.tls.cert is None:
            reason += (
                " (does it want a client certificate: --client-cert/--client-key?)"
            )
        raise ChannelCommandError(
            f"cannot reach {admin.name}: {request.method} {url}: {reason}"
        ) from None


def is_refused(status: int) -> bool:
    return status >= 400


def refusal_message(address: str, reply: ParticipationReply) -> str:
    """One line: who refused, the status, and the error JSON kept on one line."""
    return f"orderer {address} refused: Status: {reply.status} {_compact(reply.body)}"


def response_output(reply: ParticipationReply, *, show_status: bool) -> str:
    """osnadmin's output: `Status: N` (unless hidden), then the body tab-indented."""
    lines = [f"Status: {reply.status}"] if show_status else []
    if reply.body.strip():
        lines.append(_indented(reply.body))
    return "\n".join(lines)


def _add_command(
    channel_commands: _Commands,
    name: str,
    *,
    summary: str,
    description: str,
    build: RequestBuilder,
) -> argparse.ArgumentParser:
    command = channel_commands.add_parser(name, help=summary, description=description)
    command.add_argument(
        "-o",
        "--orderer-address",
        required=True,
        metavar="HOST:PORT",
        help="the orderer's admin (channel participation) listener",
    )
    command.add_argument(
        "--ca-file",
        type=Path,
        help="PEM CA certificate(s) of the orderer's admin TLS certificate (HTTPS on)",
    )
    command.add_argument(
        "--client-cert", type=Path, help="PEM client certificate (mutual TLS)"
    )
    command.add_argument("--client-key", type=Path, help="PEM client key (mutual TLS)")
    command.add_argument(
        "--no-status",
        action="store_true",
        help="leave the `Status: N` line out of the output",
    )
    add_timeout_argument(command)
    command.set_defaults(handler=run_orderer_channel, build_request=build)
    return command


def _add_channel_id(command: argparse.ArgumentParser, *, required: bool) -> None:
    command.add_argument(
        "-c",
        "--channelID",
        "--channel",
        dest="channel_id",
        metavar="CHANNEL",
        required=required,
        help="the channel name",
    )


def _channel_path(channel_id: str) -> str:
    return "/" + quote(channel_id, safe="")


def _form(config_block: bytes | None) -> aiohttp.FormData | None:
    if config_block is None:
        return None
    form = aiohttp.FormData()
    form.add_field(
        CONFIG_BLOCK_PART,
        config_block,
        filename="config.block",
        content_type="application/octet-stream",
    )
    return form


def _indented(body: str) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()
    return json.dumps(document, indent="\t", ensure_ascii=False)


def _compact(body: str) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return _one_line(body) or "(no body)"
    return json.dumps(document, ensure_ascii=False)


def _one_line(error: object) -> str:
    return " ".join(str(error).split())
