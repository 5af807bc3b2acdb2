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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.configtx import compute_update
from common.errors import ChannelConfigError, ConfigError
from common.msp import SigningIdentity
from common.protoutil import SeekPosition
from network import config_json
from network.channel_common import (
    ChannelCommandError,
    DeliverSource,
    add_channel_orderer_arguments,
    add_identity_arguments,
    add_sign_argument,
    deliver_block,
    identity_signer,
    last_config_block,
    last_config_number,
    orderer_target,
    parse_signer,
    read_text,
    wait_for_block,
    write_file,
)
from network.cli import EXIT_OK
from network.config_json import json_text
from network.config_update import config_update_envelope, create_config_update_tx
from network.lifecycle_client import Target, broadcast
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "ChannelUpdateError",
    "CurrentConfig",
    "add_channel_update_commands",
    "config_from_json",
    "config_to_json",
    "current_config",
    "update_channel",
]

ChannelUpdateError = ChannelCommandError
"""The orderer refused, or the channel's blocks could not be read."""


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
    add_channel_orderer_arguments(config)
    add_identity_arguments(config, who="a reader of the channel")
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
    add_channel_orderer_arguments(update)
    update.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="UPDATED.json",
        help="the edited config",
    )
    add_sign_argument(update, who="an admin who signs the update")
    update.set_defaults(handler=run_channel_update)


def run_channel_config(args: argparse.Namespace) -> int:
    reader = identity_signer(args)
    current = asyncio.run(current_config(orderer_target(args), reader, args.channel))
    text = config_to_json(current.view.config)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    write_file(args.output, text)
    view = current.view
    print(f"wrote the config of channel {view.channel_id} (sequence {view.sequence})")
    return EXIT_OK


def run_channel_update(args: argparse.Namespace) -> int:
    updated = config_from_json(read_text(args.config), source=str(args.config))
    signers = [parse_signer(spec) for spec in args.sign]
    orderer = orderer_target(args)
    number = asyncio.run(update_channel(orderer, args.channel, updated, signers))
    print(f"config block {number}")
    return EXIT_OK


# Updating


@dataclass(frozen=True, slots=True)
class CurrentConfig:
    """A channel's current config, the number of its block, and the channel's height."""

    view: ChannelConfig
    block_number: int
    height: int


async def current_config(
    orderer: Target, reader: SigningIdentity, channel: str
) -> CurrentConfig:
    """The channel's current config, read from `orderer`'s Deliver as `reader`.

    Raises:
        ChannelUpdateError: Deliver refused or returned no usable block.
        ConfigError: the last config block holds no valid config.
    """
    source = DeliverSource.of(orderer, orderer=True)
    block, height = await last_config_block(source, reader, channel)
    try:
        view = ChannelConfig.from_block(block)
    except ChannelConfigError as error:
        raise ConfigError(f"the channel's config block: {error}") from None
    return CurrentConfig(view, block.header.number, height)


async def update_channel(
    orderer: Target,
    channel: str,
    updated: configtx_pb2.Config,
    signers: Sequence[SigningIdentity],
    *,
    current: CurrentConfig | None = None,
) -> int:
    """Change `channel`'s config to `updated`; the number of the config block made.

    The update is computed from the config the edit started from (the one at the
    `sequence` that `updated` keeps), so an edit of a config that has changed since in
    the same places is refused by the orderer, as in Fabric. Every signer signs it,
    the first submits it and reads the blocks. `current` saves reading the current
    config again when the caller has just read it.

    Raises:
        ConfigError: no signer, or `updated` names a sequence the channel never had.
        ConfigUpdateError: the configs do not differ.
        ChannelUpdateError: the orderer refused the update or the blocks are unreadable.
    """
    if not signers:
        raise ConfigError("a config update needs at least one signer")
    reader = signers[0]
    if current is None:
        current = await current_config(orderer, reader, channel)
    source = DeliverSource.of(orderer, orderer=True)
    original = current.view
    if updated.sequence != original.sequence:
        original = await _config_at(
            source, reader, channel, updated.sequence, current.block_number
        )
    update = compute_update(channel, original.config, updated)
    envelope = create_config_update_tx(
        channel, config_update_envelope(update, signers=signers), reader
    )
    await broadcast(
        orderer, envelope.SerializeToString(), what="update", failure=ChannelUpdateError
    )
    sequence = current.view.sequence + 1
    block = await wait_for_block(
        source,
        reader,
        channel,
        current.height,
        lambda block: _config_sequence(block) == sequence,
    )
    return block.header.number


async def _config_at(
    source: DeliverSource,
    reader: SigningIdentity,
    channel: str,
    sequence: int,
    newer_block: int,
) -> ChannelConfig:
    """The config at `sequence`, walking back from the config block `newer_block`."""
    while newer_block > 0:
        before = await deliver_block(
            source, reader, channel, SeekPosition.specified(newer_block - 1)
        )
        newer_block = last_config_number(before)
        block = await deliver_block(
            source, reader, channel, SeekPosition.specified(newer_block)
        )
        config = ChannelConfig.from_block(block)
        if config.sequence <= sequence:
            if config.sequence == sequence:
                return config
            break
    raise ConfigError(
        f"the edited config names sequence {sequence}, which channel "
        f"{channel!r} never had: edit a config `medledger channel config` wrote"
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
