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

When the admins' keys are on different machines, the update travels as a file, the
serialized CONFIG_UPDATE `common.Envelope` Fabric's ``peer channel signconfigtx -f``
and ``peer channel update -f`` read and write (`network.config_update`):

- `channel update --config EDITED.json --output UPDATE.pb` computes the update and
  writes the file instead of submitting it, signed by the ``--sign`` admins if any
  (the config is read as ``--identity``, or else as the first ``--sign``);
- `channel signconfigtx -f UPDATE.pb --identity MSP_DIR --mspid MSPID` shows the
  channel, who signed and what the write set changes, appends this admin's
  signature (a second one by the same identity is refused) and writes the file back.
  A member the update removes (an organisation dropped from Application) is absent
  from both sets of a computed update, as configtxlator computes it, so this summary
  says only that its parent group is rewritten; the commands that write the file
  have the current config and name it (``removes group .../HospitalCMSP``);
- `channel update -f UPDATE.pb --identity ... --mspid ...` submits it as that
  identity, which also signs the update unless it has already, as Fabric's
  submitter does.

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
    add_update_output_argument,
    config_reader,
    deliver_block,
    identity_signer,
    last_config_block,
    last_config_number,
    optional_identity,
    orderer_target,
    parse_signer,
    read_bytes,
    read_text,
    wait_for_block,
    write_file,
)
from network.cli import EXIT_OK
from network.config_json import json_text
from network.config_update import (
    UpdateFile,
    add_signature,
    config_update_envelope,
    create_config_update_tx,
    has_signed,
    read_update_file,
    signer_names,
    update_file_envelope,
    write_set_changes,
)
from network.lifecycle_client import Target, broadcast
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "ChannelUpdateError",
    "CurrentConfig",
    "PendingUpdate",
    "add_channel_update_commands",
    "compute_channel_update",
    "config_from_json",
    "config_to_json",
    "current_config",
    "describe_update",
    "read_for_update",
    "submit_or_write",
    "submit_update_file",
    "update_channel",
    "write_update_file",
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
        help="change a channel's config to an edited copy, or submit an update file",
        description=(
            "With --config: compute the update from the config UPDATED.json was "
            "written from (by `channel config`; its sequence says which) to "
            "UPDATED.json, collect a signature from every --sign identity, broadcast "
            "it signed by the first one and wait for the config block; prints its "
            "number. With --output, write the update file (a CONFIG_UPDATE envelope, "
            "as Fabric's `peer channel update -f` reads) instead of submitting it. "
            "With -f: submit an update file the admins signed with `channel "
            "signconfigtx`, as --identity (which signs it too unless it has)."
        ),
    )
    add_channel_orderer_arguments(update)
    source = update.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", type=Path, metavar="UPDATED.json", help="the edited config"
    )
    source.add_argument(
        "-f",
        "--file",
        type=Path,
        metavar="UPDATE.pb",
        help="an update file to submit (from --output, signed with signconfigtx)",
    )
    add_sign_argument(
        update,
        who="with --config: an admin who signs the update",
        required=False,
        extra_help="the first one submits it, unless --output",
    )
    add_update_output_argument(update, "-o", "--output", condition="with --config: ")
    add_identity_arguments(
        update,
        who="the submitter of -f, or the reader of the config for --output",
        required=False,
    )
    update.set_defaults(handler=run_channel_update)

    sign = channel_commands.add_parser(
        "signconfigtx",
        help="sign a config update file as one admin, in place",
        description=(
            "Check an update file (from `channel update --output` or Fabric's "
            "configtxlator and peer CLI), show its channel, its signers and the "
            "elements it changes, append this admin's signature and write it back."
        ),
    )
    sign.add_argument(
        "-f", "--file", type=Path, required=True, metavar="UPDATE.pb", help="the file"
    )
    add_identity_arguments(sign, who="the admin who signs")
    sign.add_argument(
        "-c", "--channel", help="refuse a file for another channel than this one"
    )
    sign.set_defaults(handler=run_channel_signconfigtx)


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
    identity = optional_identity(args)
    orderer = orderer_target(args)
    if args.file is not None:
        if args.sign or args.output is not None:
            raise ConfigError(
                "channel update -f: --sign and --output go with --config; admins "
                "sign an update file with `medledger channel signconfigtx`"
            )
        if identity is None:
            raise ConfigError(
                "channel update -f needs --identity and --mspid: the identity that "
                "submits the update and reads the config block"
            )
        update_file = read_update_file(read_bytes(args.file), source=str(args.file))
        number = asyncio.run(
            submit_update_file(orderer, args.channel, update_file, identity)
        )
        print(f"config block {number}")
        return EXIT_OK
    updated = config_from_json(read_text(args.config), source=str(args.config))
    signers = [parse_signer(spec) for spec in args.sign]
    reader = config_reader(
        identity,
        signers,
        command="channel update",
        output_option="--output",
        writing=args.output is not None,
    )
    outcome = asyncio.run(
        _update_to(orderer, args.channel, updated, signers, reader, args.output)
    )
    print(outcome if isinstance(outcome, str) else f"config block {outcome}\n", end="")
    return EXIT_OK


async def _update_to(
    orderer: Target,
    channel: str,
    updated: configtx_pb2.Config,
    signers: Sequence[SigningIdentity],
    reader: SigningIdentity,
    update_output: Path | None,
) -> int | str:
    pending = await read_for_update(orderer, channel, reader)
    return await pending.apply(updated, signers, update_output)


def run_channel_signconfigtx(args: argparse.Namespace) -> int:
    update_file = read_update_file(read_bytes(args.file), source=str(args.file))
    if args.channel is not None and update_file.channel_id != args.channel:
        raise ConfigError(
            f"{args.file} updates channel {update_file.channel_id!r}, "
            f"not {args.channel!r}"
        )
    signer = identity_signer(args)
    signed = add_signature(update_file.envelope, signer)
    envelope = update_file_envelope(update_file.channel_id, signed, signer)
    summary = describe_update(update_file)
    write_file(args.file, envelope.SerializeToString())
    print(summary, end="")
    print(f"signed as {signer_names(signed)[-1]}; wrote {args.file}")
    return EXIT_OK


# Update files


def write_update_file(
    path: Path,
    update: configtx_pb2.ConfigUpdate,
    signers: Sequence[SigningIdentity],
    *,
    current: configtx_pb2.Config | None = None,
) -> str:
    """Write `update` as an update file signed by `signers` (none: unsigned); what
    `describe_update` says of it (given the channel's `current` config, if known),
    after a line naming the file.

    Raises:
        ChannelUpdateError: the file cannot be written.
    """
    update_envelope = config_update_envelope(update, signers=signers)
    envelope = update_file_envelope(
        update.channel_id, update_envelope, signers[-1] if signers else None
    )
    write_file(path, envelope.SerializeToString())
    written = UpdateFile(update.channel_id, update_envelope, update)
    summary = describe_update(written, current=current)
    return f"wrote the update file {path}\n{summary}"


def describe_update(
    update_file: UpdateFile, *, current: configtx_pb2.Config | None = None
) -> str:
    """Lines for an admin about to sign: the channel, who signed, what changes (the
    members removed named as far as the file, or the `current` config, shows them:
    `config_update.write_set_changes`)."""
    names = signer_names(update_file.envelope)
    changes = write_set_changes(update_file.update, current=current)
    lines = [
        f"channel {update_file.channel_id}: signed by "
        + (", ".join(names) if names else "no one yet"),
        *(f"  {change}" for change in changes),
    ]
    return "".join(f"{line}\n" for line in lines)


async def submit_or_write(
    orderer: Target,
    channel: str,
    updated: configtx_pb2.Config,
    signers: Sequence[SigningIdentity],
    *,
    current: CurrentConfig,
    reader: SigningIdentity,
    update_output: Path | None,
) -> int | str:
    """Change `channel`'s config to `updated` as `update_channel` does (the config
    block's number), or with `update_output` write the update file instead, signed
    by `signers` if any (the config at `updated`'s sequence read as `reader`), and
    return what `write_update_file` says of it.

    Raises:
        as `update_channel` and `write_update_file`.
    """
    if update_output is None:
        return await update_channel(orderer, channel, updated, signers, current=current)
    update = await compute_channel_update(
        orderer, channel, updated, reader, current=current
    )
    return write_update_file(
        update_output, update, signers, current=current.view.config
    )


async def submit_update_file(
    orderer: Target,
    channel: str,
    update_file: UpdateFile,
    submitter: SigningIdentity,
) -> int:
    """Submit a signed update file as `submitter`, who signs the update too unless it
    has already; the number of the config block made.

    Raises:
        ConfigError: the file is for another channel.
        ChannelUpdateError: the orderer refused the update or the blocks are unreadable.
    """
    if update_file.channel_id != channel:
        raise ConfigError(
            f"the update file is for channel {update_file.channel_id!r}, "
            f"not {channel!r}"
        )
    update_envelope = update_file.envelope
    if not has_signed(update_envelope, submitter):
        update_envelope = add_signature(update_envelope, submitter)
    current = await current_config(orderer, submitter, channel)
    return await _submit(orderer, channel, update_envelope, submitter, current)


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


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """A channel's current config, read from `orderer` as `reader`, to edit and
    apply: the shared steps of `channel update`, `add-org` and `update-org`."""

    orderer: Target
    channel: str
    reader: SigningIdentity
    current: CurrentConfig

    @property
    def config(self) -> configtx_pb2.Config:
        return self.current.view.config

    async def apply(
        self,
        updated: configtx_pb2.Config,
        signers: Sequence[SigningIdentity],
        update_output: Path | None,
    ) -> int | str:
        """`submit_or_write` of `updated` against this current config."""
        return await submit_or_write(
            self.orderer,
            self.channel,
            updated,
            signers,
            current=self.current,
            reader=self.reader,
            update_output=update_output,
        )


async def read_for_update(
    orderer: Target, channel: str, reader: SigningIdentity
) -> PendingUpdate:
    """The channel's `current_config`, ready to edit and apply.

    Raises:
        as `current_config`.
    """
    current = await current_config(orderer, reader, channel)
    return PendingUpdate(orderer, channel, reader, current)


async def update_channel(
    orderer: Target,
    channel: str,
    updated: configtx_pb2.Config,
    signers: Sequence[SigningIdentity],
    *,
    current: CurrentConfig | None = None,
) -> int:
    """Change `channel`'s config to `updated`; the number of the config block made.

    The update is `compute_channel_update`'s. Every signer signs it, the first
    submits it and reads the blocks. `current` saves reading the current config again
    when the caller has just read it.

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
    update = await compute_channel_update(
        orderer, channel, updated, reader, current=current
    )
    update_envelope = config_update_envelope(update, signers=signers)
    return await _submit(orderer, channel, update_envelope, reader, current)


async def compute_channel_update(
    orderer: Target,
    channel: str,
    updated: configtx_pb2.Config,
    reader: SigningIdentity,
    *,
    current: CurrentConfig | None = None,
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate from the config the edit started from (the one at the
    `sequence` that `updated` keeps) to `updated`, so that an edit of a config that
    has changed since in the same places is refused by the orderer, as in Fabric.

    Raises:
        ConfigError: `updated` names a sequence the channel never had.
        ConfigUpdateError: the configs do not differ.
        ChannelUpdateError: the blocks are unreadable.
    """
    if current is None:
        current = await current_config(orderer, reader, channel)
    original = current.view
    if updated.sequence != original.sequence:
        source = DeliverSource.of(orderer, orderer=True)
        original = await _config_at(
            source, reader, channel, updated.sequence, current.block_number
        )
    return compute_update(channel, original.config, updated)


async def _submit(
    orderer: Target,
    channel: str,
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
    submitter: SigningIdentity,
    current: CurrentConfig,
) -> int:
    """Broadcast the update as `submitter` and wait for the config block it makes."""
    envelope = create_config_update_tx(channel, update_envelope, submitter)
    await broadcast(
        orderer, envelope.SerializeToString(), what="update", failure=ChannelUpdateError
    )
    sequence = current.view.sequence + 1
    block = await wait_for_block(
        DeliverSource.of(orderer, orderer=True),
        submitter,
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
