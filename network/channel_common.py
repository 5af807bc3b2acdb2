"""What the `medledger channel` commands that dial a node share.

Options, defined once so every command spells them alike:

    -c/--channel        the channel (Fabric's `peer channel` flag); `-C`, the flag
                        `channel config|update|add-org` first had, is kept as a hidden
                        alias there
    --orderer ADDR      with --orderer-tls-ca (TLS on when given) and
                        --orderer-server-name
    --identity/--mspid  the MSP folder and id of the identity that signs requests
    --sign DIR:MSPID    an admin who signs a config update (repeatable)
    --update-output F   write a config update file instead of submitting the update
                        (`channel update` spells it -o/--output); then the --sign
                        admins are optional, and --identity/--mspid may name the
                        reader of the channel's config (`config_reader` checks)
    --timeout S         seconds each call to a node may take

Deliver, as `channel fetch`, `config`, `update` and `add-org` read blocks: one block
with FAIL_IF_NOT_READY (a block beyond the newest is an error, not a wait), or the
first block from a height on that a test accepts, with BLOCK_UNTIL_READY (the config
block an update makes). Refusals and unreachable nodes are `ChannelCommandError`s
whose one-line message names the node.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from common.errors import ConfigError, MedledgerError
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    BLOCK_UNTIL_READY,
    FAIL_IF_NOT_READY,
    SeekPosition,
    create_seek_envelope,
)
from common.tls import TlsFiles, cert_hash
from network.lifecycle_client import Target
from protos.common import common_pb2
from protos.orderer import ab_pb2
from protos.peer import events_pb2

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ChannelCommandError",
    "DeliverSource",
    "add_channel_argument",
    "add_channel_orderer_arguments",
    "add_identity_arguments",
    "add_orderer_arguments",
    "add_sign_argument",
    "add_timeout_argument",
    "add_update_output_argument",
    "config_reader",
    "deliver_block",
    "identity_signer",
    "last_config_block",
    "last_config_number",
    "optional_identity",
    "orderer_target",
    "parse_signer",
    "peer_target",
    "read_bytes",
    "read_text",
    "rpc_error",
    "wait_for_block",
    "write_file",
]

DEFAULT_TIMEOUT_S = 30.0
_MAX_BLOCK = 2**63 - 1


class ChannelCommandError(MedledgerError):
    """A channel command failed; the message names the node or file and why."""


# Options


def add_channel_argument(
    parser: argparse.ArgumentParser, *, upper_alias: bool = False
) -> None:
    """-c/--channel, required; `upper_alias` also accepts -C (not shown in help)."""
    if not upper_alias:
        parser.add_argument("-c", "--channel", required=True, help="the channel name")
        return
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-c", "--channel", help="the channel name")
    group.add_argument("-C", dest="channel", help=argparse.SUPPRESS)


def add_orderer_arguments(
    parser: argparse.ArgumentParser,
    *,
    address_in: argparse._MutuallyExclusiveGroup | None = None,
) -> None:
    """--orderer (required, unless it goes in the group `address_in`) and its TLS."""
    if address_in is None:
        parser.add_argument("--orderer", required=True, help="the orderer's HOST:PORT")
    else:
        address_in.add_argument("--orderer", help="the orderer's HOST:PORT")
    parser.add_argument(
        "--orderer-tls-ca",
        type=Path,
        help="the CA of the orderer's TLS certificate (TLS on)",
    )
    parser.add_argument(
        "--orderer-server-name", help="TLS name to expect from the orderer"
    )


def add_channel_orderer_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a command on one channel through an orderer: -c/--channel
    (-C too), --orderer with its TLS options, --timeout."""
    add_channel_argument(parser, upper_alias=True)
    add_orderer_arguments(parser)
    add_timeout_argument(parser)


def add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds each call to a node may take (default {DEFAULT_TIMEOUT_S:g})",
    )


def add_identity_arguments(
    parser: argparse.ArgumentParser, *, who: str, required: bool = True
) -> None:
    """--identity MSP_DIR and --mspid, of the identity that signs the requests
    (optional when not `required`: the command checks they come together)."""
    parser.add_argument(
        "--identity", type=Path, required=required, help=f"MSP folder of {who}"
    )
    parser.add_argument(
        "--mspid", required=required, help="the MSP id of that identity"
    )


def add_sign_argument(
    parser: argparse.ArgumentParser,
    *,
    who: str,
    required: bool = True,
    extra_help: str = "the first one submits the update",
) -> None:
    """--sign MSP_DIR:MSPID, repeatable (`args.sign` is [] when none is given)."""
    parser.add_argument(
        "--sign",
        action="append",
        required=required,
        default=[],
        metavar="MSP_DIR:MSPID",
        help=f"{who} (repeatable; {extra_help})",
    )


def add_update_output_argument(
    parser: argparse.ArgumentParser, *flags: str, condition: str = ""
) -> None:
    """The option (`flags`, default ``--update-output``) that writes the update file
    instead of submitting it, and the optional --identity/--mspid reader it allows.
    `condition` starts the help, e.g. ``with --config: ``."""
    parser.add_argument(
        *(flags or ("--update-output",)),
        type=Path,
        metavar="UPDATE.pb",
        help=(
            f"{condition}write the update file instead of submitting it, signed by "
            "the --sign admins if any (for `channel signconfigtx` and `channel "
            "update -f`)"
        ),
    )


def optional_identity(args: argparse.Namespace) -> SigningIdentity | None:
    """The --identity/--mspid identity, when both are given.

    Raises:
        ConfigError: only one of them is given.
    """
    if args.identity is None and args.mspid is None:
        return None
    if args.identity is None or args.mspid is None:
        raise ConfigError("--identity and --mspid go together")
    return load_signing_identity(args.identity, mspid=args.mspid)


def config_reader(
    identity: SigningIdentity | None,
    signers: list[SigningIdentity],
    *,
    command: str,
    output_option: str,
    writing: bool,
) -> SigningIdentity:
    """Who reads the channel's config for an update: when `writing` an update file,
    --identity or else the first --sign admin (the file may be unsigned); when
    submitting, the first --sign admin, who submits, and no --identity.

    Raises:
        ConfigError: no reader when writing; no --sign, or an --identity, when
            submitting (the message names `command` and `output_option`).
    """
    if writing:
        reader = identity or (signers[0] if signers else None)
        if reader is None:
            raise ConfigError(
                f"{command} {output_option} needs --identity and --mspid (or a "
                "--sign) to read the channel's config"
            )
        return reader
    if identity is not None or not signers:
        raise ConfigError(
            f"{command} needs --sign admins (the first submits) and no --identity, "
            f"or {output_option} FILE to write an update file to sign"
        )
    return signers[0]


def identity_signer(args: argparse.Namespace) -> SigningIdentity:
    """The identity `add_identity_arguments` names."""
    return load_signing_identity(args.identity, mspid=args.mspid)


def parse_signer(spec: str) -> SigningIdentity:
    """The identity of a `--sign MSP_DIR:MSPID`.

    Raises:
        ConfigError: not MSP_DIR:MSPID.
        MspError: the folder holds no signing identity.
    """
    folder, separator, mspid = spec.rpartition(":")
    if not separator or not folder or not mspid:
        raise ConfigError(f"--sign {spec!r}: expected MSP_DIR:MSPID")
    return load_signing_identity(Path(folder), mspid=mspid)


def peer_target(args: argparse.Namespace) -> Target:
    """The peer of --peer and `network.cli.add_peer_tls_arguments`."""
    return _target(args, args.peer, args.tls_ca, args.server_name)


def orderer_target(args: argparse.Namespace) -> Target:
    """The orderer `add_orderer_arguments` names.

    A command that also has --tls-cert/--tls-key (`channel fetch`) presents that
    client certificate to the orderer too.
    """
    return _target(args, args.orderer, args.orderer_tls_ca, args.orderer_server_name)


def _target(
    args: argparse.Namespace, address: str, tls_ca: Path | None, server_name: str | None
) -> Target:
    """A node to dial, with the command's --timeout: TLS when `tls_ca` is given."""
    tls = None
    if tls_ca is not None:
        cert = getattr(args, "tls_cert", None)
        key = getattr(args, "tls_key", None)
        tls = TlsFiles(cert=cert, key=key, root_cas=(tls_ca,))
    return Target(
        address=address, tls=tls, server_name=server_name, timeout_s=args.timeout
    )


# Files


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ChannelCommandError(f"{path}: {error.strerror}") from None


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise ChannelCommandError(f"{path}: {error.strerror}") from None


def write_file(path: Path, data: bytes | str) -> None:
    try:
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    except OSError as error:
        raise ChannelCommandError(f"cannot write {path}: {error.strerror}") from None


def rpc_error(node: str, error: grpc.aio.AioRpcError) -> ChannelCommandError:
    """A failed call as one line: the node, the gRPC status and its details."""
    details = error.details() or "no details"
    return ChannelCommandError(f"{node}: {error.code().name}: {details}")


# Deliver


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSource:
    """Where blocks are read: a node, and whether it is an orderer."""

    target: Target
    orderer: bool
    tls_cert_hash: bytes | None = None

    @classmethod
    def of(cls, target: Target, *, orderer: bool) -> DeliverSource:
        """`target`, with the hash of its client TLS certificate when it has one.

        Raises:
            ChannelCommandError: the certificate file cannot be read.
        """
        client_hash = None
        if target.tls is not None and target.tls.cert is not None:
            try:
                client_hash = cert_hash(target.tls.cert.read_bytes())
            except OSError as error:
                raise ChannelCommandError(
                    f"{target.tls.cert}: {error.strerror}"
                ) from None
        return cls(target=target, orderer=orderer, tls_cert_hash=client_hash)

    @property
    def name(self) -> str:
        return f"{'orderer' if self.orderer else 'peer'} {self.target.address}"


async def deliver_block(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    position: SeekPosition,
) -> common_pb2.Block:
    """The block at `position`, which must exist already (FAIL_IF_NOT_READY).

    Raises:
        ChannelCommandError: refused, unreachable, unknown channel, or no such block.
    """
    return await _deliver(
        source, signer, channel, (position, position), FAIL_IF_NOT_READY, _any_block
    )


async def wait_for_block(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    start: int,
    wanted: Callable[[common_pb2.Block], bool],
) -> common_pb2.Block:
    """The first block from number `start` on that is `wanted`, waiting for it to be
    cut (BLOCK_UNTIL_READY) until the target's timeout.

    Raises:
        ChannelCommandError: refused, unreachable, or the timeout passed.
    """
    positions = (SeekPosition.specified(start), SeekPosition.specified(_MAX_BLOCK))
    return await _deliver(source, signer, channel, positions, BLOCK_UNTIL_READY, wanted)


async def last_config_block(
    source: DeliverSource, signer: SigningIdentity, channel: str
) -> tuple[common_pb2.Block, int]:
    """The channel's last config block, and the channel's height.

    Raises:
        ChannelCommandError: as `deliver_block`, or the newest block names no config.
    """
    newest = await deliver_block(source, signer, channel, SeekPosition.newest())
    number = last_config_number(newest)
    block = newest
    if number != newest.header.number:
        block = await deliver_block(
            source, signer, channel, SeekPosition.specified(number)
        )
    return block, newest.header.number + 1


def last_config_number(block: common_pb2.Block) -> int:
    """The last config block's number recorded in `block`'s metadata.

    The SIGNATURES entry's OrdererBlockMetadata is read first (Fabric 2.x), then the
    LAST_CONFIG entry; a genesis block without either is its own config block.

    Raises:
        ChannelCommandError: neither entry says, or the metadata does not decode.
    """
    entries = block.metadata.metadata
    number = block.header.number
    try:
        for index, kind in (
            (common_pb2.SIGNATURES, common_pb2.OrdererBlockMetadata),
            (common_pb2.LAST_CONFIG, common_pb2.LastConfig),
        ):
            if len(entries) > index and entries[index]:
                value = common_pb2.Metadata.FromString(entries[index]).value
                if value:
                    found: Any = kind.FromString(value)
                    config = (
                        found.last_config if index == common_pb2.SIGNATURES else found
                    )
                    return int(config.index)
    except DecodeError:
        raise ChannelCommandError(
            f"block {number}: its last-config metadata does not decode"
        ) from None
    if number == 0:
        return 0
    raise ChannelCommandError(f"block {number} names no last config block")


def _any_block(_: common_pb2.Block) -> bool:
    return True


async def _deliver(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    positions: tuple[SeekPosition, SeekPosition],
    behavior: int,
    wanted: Callable[[common_pb2.Block], bool],
) -> common_pb2.Block:
    """The first `wanted` block of one Deliver call for `positions`."""
    start, stop = positions
    envelope = create_seek_envelope(
        channel_id=channel,
        start=start,
        stop=stop,
        behavior=behavior,
        creator=signer.serialized,
        signer=signer.sign,
        tls_cert_hash=source.tls_cert_hash,
    )
    kind: type[Message] = events_pb2.DeliverResponse
    path = "/protos.Deliver/Deliver"
    if source.orderer:
        kind, path = ab_pb2.DeliverResponse, "/orderer.AtomicBroadcast/Deliver"
    target = source.target
    status = common_pb2.UNKNOWN
    async with target.open() as grpc_channel:
        method = grpc_channel.stream_stream(  # type: ignore[call-arg]
            path, response_deserializer=kind.FromString
        )
        call: Any = method(timeout=target.timeout_s)  # type: ignore[call-arg]
        try:
            await call.write(envelope.SerializeToString())
            await call.done_writing()
            async for response in call:
                if response.WhichOneof("Type") == "block":
                    if wanted(response.block):
                        block: common_pb2.Block = response.block
                        return block
                elif response.WhichOneof("Type") == "status":
                    status = response.status
                    break
        except grpc.aio.AioRpcError as error:
            raise rpc_error(source.name, error) from None
        finally:
            call.cancel()
    raise await _refusal(source, signer, channel, start, status)


async def _refusal(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    position: SeekPosition,
    status: int,
) -> ChannelCommandError:
    """Why Deliver answered `status` without a block, in an operator's words."""
    name = common_pb2.Status.Name(status) if status else "no answer"
    where = f"{source.name}, channel {channel}"
    if status == common_pb2.FORBIDDEN:
        return ChannelCommandError(
            f"{where}: {signer.mspid} identity may not read the channel ({name})"
        )
    if status == common_pb2.NOT_FOUND and position.kind == "specified":
        try:
            newest = await deliver_block(source, signer, channel, SeekPosition.newest())
        except ChannelCommandError as error:
            return error
        return ChannelCommandError(
            f"{where}: there is no block {position.number} yet "
            f"(the newest is {newest.header.number})"
        )
    if status == common_pb2.NOT_FOUND:
        return ChannelCommandError(f"{where}: the node has no such channel ({name})")
    return ChannelCommandError(f"{where}: no block delivered ({name})")
