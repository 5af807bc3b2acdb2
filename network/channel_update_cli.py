"""`medledger channel config` and `medledger channel update`: a running channel's config.

The operator's side of a config update, which Fabric spreads over ``peer channel
fetch config``, ``configtxlator compute_update``, ``peer channel signconfigtx`` and
``peer channel update``:

1. `channel config` asks the orderer's Deliver for the channel's last config block and
   writes its `common.Config` as JSON in `network.config_json`'s shape (the one
   `channel fetch --json` shows configs in): the values and policies Fabric's
   configtxlator decodes shown as JSON objects (``channel_group.groups.Orderer.
   values.BatchSize.value.max_message_count``, an organisation's MSP definition),
   the rest as base64;
2. the operator edits that file (keeping its ``sequence``);
3. `channel update` fetches the config the edit started from (the one at that
   ``sequence``, usually the current one), computes the ConfigUpdate to the edited
   one (`common.configtx.compute_update`), has every ``--sign`` identity sign it,
   wraps it in a CONFIG_UPDATE envelope signed by the first, broadcasts it and waits
   on Deliver for the config block it makes, whose number it prints.

The orderer judges the update (read set, versions, mod_policy); its refusal, e.g. too
few admin signatures or an edit of a config that has changed since in the same
places, is reported as it gives it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.configtx import compute_update
from common.errors import ConfigError, MedledgerError
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    BLOCK_UNTIL_READY,
    SeekPosition,
    create_seek_envelope,
    last_config_index,
)
from common.tls import TlsFiles
from network import config_json
from network.cli import EXIT_OK
from network.config_json import json_text
from network.config_update import config_update_envelope, create_config_update_tx
from network.lifecycle_client import Target
from protos.common import common_pb2, configtx_pb2
from protos.orderer import ab_pb2, ab_pb2_grpc

__all__ = [
    "ChannelUpdateError",
    "add_channel_update_commands",
    "config_from_json",
    "config_to_json",
]

_MAX_BLOCK = 2**63 - 1


class ChannelUpdateError(MedledgerError):
    """The orderer refused, or the channel's blocks could not be read."""


@dataclass(frozen=True, slots=True)
class _Orderer:
    """Where to fetch and send, and who signs the Deliver requests."""

    target: Target
    reader: SigningIdentity
    channel: str


# Commands


def add_channel_update_commands(
    channel_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `config` and `update` under `medledger channel`."""
    config = channel_commands.add_parser(
        "config",
        help="write a channel's current config as JSON, to edit for `channel update`",
        description=(
            "Fetch the channel's last config block from the orderer (Deliver, signed "
            "by --identity, a reader of the channel) and write its common.Config as "
            "JSON: known values and policies decoded, other bytes base64."
        ),
    )
    _orderer_arguments(config)
    config.add_argument(
        "--identity", type=Path, required=True, help="MSP folder of a channel member"
    )
    config.add_argument("--mspid", required=True, help="its MSP id")
    config.add_argument(
        "-o", "--output", type=Path, help="the JSON file (default: standard output)"
    )
    config.set_defaults(handler=run_channel_config)

    update = channel_commands.add_parser(
        "update",
        help="change a channel's config to an edited copy, signed by admins",
        description=(
            "Compute the update from the config UPDATED.json was written from (by "
            "`channel config`; its sequence says which) to UPDATED.json, collect a "
            "signature from every --sign identity, broadcast it signed by the first "
            "one and wait for the config block; prints its number."
        ),
    )
    _orderer_arguments(update)
    update.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="UPDATED.json",
        help="the edited config",
    )
    update.add_argument(
        "--sign",
        action="append",
        required=True,
        metavar="MSP_DIR:MSPID",
        help="an admin who signs the update (repeatable; the first one submits it)",
    )
    update.set_defaults(handler=run_channel_update)


def run_channel_config(args: argparse.Namespace) -> int:
    reader = load_signing_identity(args.identity, mspid=args.mspid)
    orderer = _Orderer(_target(args), reader, args.channel)
    view = asyncio.run(_fetch_config(orderer))
    text = config_to_json(view.config)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        args.output.write_text(text)
    except OSError as error:
        raise ConfigError(f"{args.output}: {error.strerror}") from None
    print(f"wrote the config of channel {view.channel_id} (sequence {view.sequence})")
    return EXIT_OK


def run_channel_update(args: argparse.Namespace) -> int:
    try:
        text = args.config.read_text()
    except OSError as error:
        raise ConfigError(f"{args.config}: {error.strerror}") from None
    updated = config_from_json(text, source=str(args.config))
    signers = [_signer(spec) for spec in args.sign]
    orderer = _Orderer(_target(args), signers[0], args.channel)
    number = asyncio.run(_update_channel(orderer, updated, signers))
    print(f"config block {number}")
    return EXIT_OK


async def _update_channel(
    orderer: _Orderer, updated: configtx_pb2.Config, signers: list[SigningIdentity]
) -> int:
    """Compute, sign and broadcast the update; the number of the config block it made.

    The update is computed from the config the edit started from (the one at the
    `sequence` the edited config keeps), so an edit of a config that has changed
    since in the same places is refused by the orderer, as in Fabric.

    Raises:
        ConfigUpdateError: the configs do not differ.
        ChannelUpdateError: the orderer refused the update or the blocks are unreadable.
    """
    current, block_number, height = await _current_config(orderer)
    original = current
    if updated.sequence != current.sequence:
        original = await _config_at(orderer, updated.sequence, block_number)
    update = compute_update(orderer.channel, original.config, updated)
    envelope = create_config_update_tx(
        orderer.channel,
        config_update_envelope(update, signers=signers),
        signers[0],
    )
    await _broadcast(orderer.target, envelope.SerializeToString())
    return await _wait_for_config_block(orderer, height, current.sequence + 1)


async def _fetch_config(orderer: _Orderer) -> ChannelConfig:
    """The channel's current config, from the orderer.

    Raises:
        ChannelUpdateError: Deliver refused or returned no usable block.
    """
    config, _, _ = await _current_config(orderer)
    return config


async def _current_config(orderer: _Orderer) -> tuple[ChannelConfig, int, int]:
    """The current config, the number of its block, and the channel's height."""
    newest = await _block_at(orderer, SeekPosition.newest())
    index = last_config_index(newest)
    block = newest
    if index != newest.header.number:
        block = await _block_at(orderer, SeekPosition.specified(index))
    return ChannelConfig.from_block(block), index, newest.header.number + 1


async def _config_at(
    orderer: _Orderer, sequence: int, newer_block: int
) -> ChannelConfig:
    """The config at `sequence`, walking back from the config block `newer_block`."""
    while newer_block > 0:
        before = await _block_at(orderer, SeekPosition.specified(newer_block - 1))
        newer_block = last_config_index(before)
        block = await _block_at(orderer, SeekPosition.specified(newer_block))
        config = ChannelConfig.from_block(block)
        if config.sequence <= sequence:
            if config.sequence == sequence:
                return config
            break
    raise ConfigError(
        f"the edited config names sequence {sequence}, which channel "
        f"{orderer.channel!r} never had: edit a config `medledger channel config` wrote"
    )


# JSON


def config_to_json(config: configtx_pb2.Config) -> str:
    """A common.Config as the JSON text `channel update` reads back.

    The shape is `network.config_json`'s, the one `channel fetch --json` shows the
    config of a config block in.
    """
    return json_text(config_json.config_to_json(config))


def config_from_json(text: str, *, source: str) -> configtx_pb2.Config:
    """Parse what `config_to_json` wrote, perhaps edited.

    Raises:
        ConfigError: not JSON, or not a common.Config, or a value that does not fit
            (the message names `source` and the path in the document).
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not JSON: {error}") from None
    return config_json.config_from_json(document, source=source)


# The orderer


async def _block_at(orderer: _Orderer, position: SeekPosition) -> common_pb2.Block:
    """One block from Deliver."""
    seek = _seek(orderer, position, position)
    async with orderer.target.open() as channel:
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
        call: Any = stub.Deliver(timeout=orderer.target.timeout_s)  # type: ignore[call-arg]
        try:
            await call.write(seek)
            response = await call.read()
            call.cancel()
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(orderer.target, "Deliver", error) from None
    return _delivered_block(orderer, response)


async def _wait_for_config_block(orderer: _Orderer, height: int, sequence: int) -> int:
    """The number of the first block from `height` on holding config `sequence`."""
    seek = _seek(
        orderer, SeekPosition.specified(height), SeekPosition.specified(_MAX_BLOCK)
    )
    async with orderer.target.open() as channel:
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
        call: Any = stub.Deliver(timeout=orderer.target.timeout_s)  # type: ignore[call-arg]
        try:
            await call.write(seek)
            while True:
                block = _delivered_block(orderer, await call.read())
                if _config_sequence(block) == sequence:
                    call.cancel()
                    return block.header.number
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(orderer.target, "Deliver", error) from None


def _seek(
    orderer: _Orderer, start: SeekPosition, stop: SeekPosition
) -> common_pb2.Envelope:
    return create_seek_envelope(
        channel_id=orderer.channel,
        start=start,
        stop=stop,
        behavior=BLOCK_UNTIL_READY,
        creator=orderer.reader.serialized,
        signer=orderer.reader.sign,
    )


def _delivered_block(orderer: _Orderer, response: object) -> common_pb2.Block:
    if not isinstance(response, ab_pb2.DeliverResponse):  # grpc.aio.EOF
        raise ChannelUpdateError(
            f"orderer {orderer.target.address}: the block stream ended"
        )
    if response.WhichOneof("Type") != "block":
        status = common_pb2.Status.Name(response.status)
        raise ChannelUpdateError(
            f"orderer {orderer.target.address} refused to deliver blocks of channel "
            f"{orderer.channel!r}: {status}"
        )
    return response.block


def _config_sequence(block: common_pb2.Block) -> int | None:
    """The config sequence of a config block; None for other blocks."""
    if len(block.data.data) != 1:
        return None
    try:
        envelope = common_pb2.Envelope.FromString(block.data.data[0])
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        if header.type != common_pb2.CONFIG:
            return None
        return configtx_pb2.ConfigEnvelope.FromString(payload.data).config.sequence
    except DecodeError:
        return None


async def _broadcast(target: Target, envelope: bytes) -> None:
    async with target.open() as channel:
        method = channel.stream_stream(  # type: ignore[call-arg]
            "/orderer.AtomicBroadcast/Broadcast",
            response_deserializer=ab_pb2.BroadcastResponse.FromString,
        )
        try:
            call: Any = method(iter([envelope]), timeout=target.timeout_s)
            responses = [response async for response in call]
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(target, "Broadcast", error) from None
    if len(responses) != 1 or responses[0].status != common_pb2.SUCCESS:
        shown = "; ".join(
            f"{common_pb2.Status.Name(r.status)}: {r.info}".strip() for r in responses
        )
        raise ChannelUpdateError(
            f"orderer {target.address} refused the update: {shown or 'no answer'}"
        )


def _rpc_error(
    target: Target, call: str, error: grpc.aio.AioRpcError
) -> ChannelUpdateError:
    return ChannelUpdateError(
        f"orderer {target.address}: {call}: {error.code().name}: {error.details()}"
    )


# Arguments


def _orderer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-C", "--channel", required=True, help="the channel")
    parser.add_argument("--orderer", required=True, help="the orderer's HOST:PORT")
    parser.add_argument("--orderer-tls-ca", type=Path, help="CA of its TLS certificate")
    parser.add_argument("--orderer-server-name", help="TLS name to expect from it")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds each call to the orderer may take (default 30)",
    )


def _target(args: argparse.Namespace) -> Target:
    timeout: float = args.timeout
    if args.orderer_tls_ca is None:
        return Target(address=args.orderer, timeout_s=timeout)
    return Target(
        address=args.orderer,
        tls=TlsFiles(root_cas=(args.orderer_tls_ca,)),
        server_name=args.orderer_server_name,
        timeout_s=timeout,
    )


def _signer(spec: str) -> SigningIdentity:
    folder, separator, mspid = spec.rpartition(":")
    if not separator or not folder or not mspid:
        raise ConfigError(f"--sign {spec!r}: expected MSP_DIR:MSPID")
    return load_signing_identity(Path(folder), mspid=mspid)
