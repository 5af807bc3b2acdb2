"""`medledger channel list|getinfo|fetch`: Fabric's `peer channel` queries.

    list     the channels a peer has joined (cscc GetChannels; a member of the peer's
             own organisation must sign)
    getinfo  a channel's height and its newest two block hashes (qscc GetChainInfo;
             a reader of the channel signs)
    fetch    one block, newest|oldest|config|NUMBER, over Deliver from an orderer
             (`--orderer`) or a peer (`--peer`); the file holds the serialized
             common.Block, as `peer channel fetch` writes it

Output, as Fabric prints it unless noted:

    list     "Channels peers has joined: " then one channel per line;
             `--json`: {"channels": [...]}
    getinfo  Blockchain info: {"height":N,"currentBlockHash":"..","previousBlockHash":".."}
             with the hashes in lowercase hex (Fabric prints them in base64) and
             previousBlockHash "" at height 1; `--json`: the same object alone
    fetch    "Received block: N" on stderr. Without OUTPUT_FILE the block goes to
             CHANNEL_SPEC.block (e.g. mychannel_newest.block). `--json FILE` (`-`:
             stdout) also writes the block decoded layer by layer, in the shape of
             `configtxlator proto_decode --type common.Block` (`network.block_json`),
             so `jq .data.data[0].payload.data.config` works on a config block.

`config` is the block the newest block's metadata names as the last config (the
SIGNATURES metadata's OrdererBlockMetadata, else the LAST_CONFIG entry). Deliver
requests (`network.channel_common`) use FAIL_IF_NOT_READY, so a block beyond the
newest is an error instead of a wait. Every failure (refusal, unreachable node,
unknown channel, bad block number, unwritable file) is a `ChannelQueryError`: one
line on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from common.msp import SigningIdentity
from common.protoutil import SeekPosition, create_proposal, sign_proposal
from network.block_json import block_document
from network.channel_common import (
    ChannelCommandError,
    DeliverSource,
    add_channel_argument,
    add_identity_arguments,
    add_orderer_arguments,
    add_timeout_argument,
    deliver_block,
    identity_signer,
    last_config_block,
    last_config_number,
    orderer_target,
    peer_target,
    rpc_error,
    write_file,
)
from network.cli import add_peer_tls_arguments
from network.config_json import json_text
from network.lifecycle_client import Target
from protos.common import common_pb2, ledger_pb2
from protos.peer import proposal_response_pb2, query_pb2

__all__ = [
    "BlockSpec",
    "ChannelQueryError",
    "DeliverSource",
    "add_channel_query_commands",
    "chain_info_document",
    "fetch_block",
    "get_chain_info",
    "get_channels",
    "last_config_number",
    "parse_block_spec",
]

EXIT_OK = 0
STATUS_OK = 200
LIST_HEADING = "Channels peers has joined: "

_T = TypeVar("_T")
if TYPE_CHECKING:
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


ChannelQueryError = ChannelCommandError
"""A channel query failed (the error of every `medledger channel` command)."""


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """Which block `fetch` asks for: newest, oldest, config, or a number."""

    kind: Literal["newest", "oldest", "config", "number"]
    number: int = 0

    @property
    def label(self) -> str:
        return str(self.number) if self.kind == "number" else self.kind


_NAMED_BLOCKS = {
    "newest": BlockSpec("newest"),
    "oldest": BlockSpec("oldest"),
    "config": BlockSpec("config"),
}


def parse_block_spec(text: str) -> BlockSpec:
    """newest, oldest, config, or a block number (0 ≤ n < 2^64).

    Raises:
        ChannelQueryError: anything else.
    """
    named = _NAMED_BLOCKS.get(text)
    if named is not None:
        return named
    if text.isascii() and text.isdigit() and int(text) < 1 << 64:
        return BlockSpec("number", int(text))
    raise ChannelQueryError(
        f"bad block {text!r}: expected newest, oldest, config or a block number"
    )


# The command line


def add_channel_query_commands(channel_commands: _Commands) -> None:
    """Add `list`, `getinfo` and `fetch` to `medledger channel`."""
    _peer_query_command(
        channel_commands,
        "list",
        help="list the channels a peer has joined",
        description=(
            "Ask the peer's cscc for the channels it has joined; a member of the "
            "peer's own organisation must sign."
        ),
        who="a member of the peer's organisation",
        json_help='print {"channels": [...]}',
    ).set_defaults(handler=run_channel_list)
    _peer_query_command(
        channel_commands,
        "getinfo",
        help="a channel's height and newest block hashes",
        description=(
            "Ask the peer's qscc for the channel's height, current and previous block "
            "hashes (hex); a reader of the channel must sign."
        ),
        who="a reader of the channel",
        json_help="print the JSON object alone",
        channel=True,
    ).set_defaults(handler=run_channel_getinfo)

    fetch = channel_commands.add_parser(
        "fetch",
        help="write one block (newest, oldest, config or NUMBER) to a file",
        description=(
            "Fetch one block over Deliver from an orderer or a peer and write its "
            "serialized common.Block. `config` is the last config block."
        ),
    )
    fetch.add_argument("block", metavar="newest|oldest|config|NUMBER")
    fetch.add_argument(
        "output",
        metavar="OUTPUT_FILE",
        type=Path,
        nargs="?",
        help="where to write the block (default: CHANNEL_BLOCK.block)",
    )
    add_channel_argument(fetch)
    source = fetch.add_mutually_exclusive_group(required=True)
    add_orderer_arguments(fetch, address_in=source)
    source.add_argument("--peer", help="fetch from this peer's HOST:PORT")
    add_identity_arguments(fetch, who="a reader of the channel")
    add_peer_tls_arguments(fetch)
    _json_argument(
        fetch,
        json_help="also write the block decoded as JSON to FILE (-: stdout)",
        json_file=True,
    )
    add_timeout_argument(fetch)
    fetch.set_defaults(handler=run_channel_fetch)


def _peer_query_command(
    channel_commands: _Commands,
    name: str,
    *,
    help: str,
    description: str,
    who: str,
    json_help: str,
    channel: bool = False,
) -> argparse.ArgumentParser:
    """A command that asks one peer a question, signed by `who`."""
    command = channel_commands.add_parser(name, help=help, description=description)
    command.add_argument("--peer", required=True, help="the peer's HOST:PORT")
    if channel:
        add_channel_argument(command)
    add_identity_arguments(command, who=who)
    add_peer_tls_arguments(command)
    _json_argument(command, json_help=json_help)
    add_timeout_argument(command)
    return command


def _json_argument(
    parser: argparse.ArgumentParser, *, json_help: str, json_file: bool = False
) -> None:
    if json_file:
        parser.add_argument("--json", type=Path, metavar="FILE", help=json_help)
    else:
        parser.add_argument("--json", action="store_true", help=json_help)


def run_channel_list(args: argparse.Namespace) -> int:
    signer = identity_signer(args)
    channels = _run(get_channels(peer_target(args), signer))
    if args.json:
        print(json.dumps({"channels": channels}))
        return EXIT_OK
    print(LIST_HEADING)
    for channel in channels:
        print(channel)
    return EXIT_OK


def run_channel_getinfo(args: argparse.Namespace) -> int:
    signer = identity_signer(args)
    info = _run(get_chain_info(peer_target(args), signer, args.channel))
    text = json.dumps(chain_info_document(info), separators=(",", ":"))
    print(text if args.json else f"Blockchain info: {text}")
    return EXIT_OK


def run_channel_fetch(args: argparse.Namespace) -> int:
    spec = parse_block_spec(args.block)
    output: Path = args.output or Path(f"{args.channel}_{spec.label}.block")
    signer = identity_signer(args)
    source = _deliver_source(args)
    block = _run(fetch_block(source, signer, args.channel, spec))
    write_file(output, block.SerializeToString())
    if args.json is not None:
        document = json_text(block_document(block))
        if str(args.json) == "-":
            sys.stdout.write(document)
        else:
            write_file(args.json, document)
    print(f"Received block: {block.header.number}", file=sys.stderr)
    return EXIT_OK


def _deliver_source(args: argparse.Namespace) -> DeliverSource:
    if args.orderer is None:
        return DeliverSource.of(peer_target(args), orderer=False)
    return DeliverSource.of(orderer_target(args), orderer=True)


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(work)


# System chaincode queries


async def get_channels(peer: Target, signer: SigningIdentity) -> list[str]:
    """The channels `peer` has joined (cscc GetChannels), in the peer's order.

    Raises:
        ChannelQueryError: the peer refused or is unreachable.
    """
    payload = await _query_scc(peer, signer, "cscc", "", [b"GetChannels"])
    response = _decode(query_pb2.ChannelQueryResponse, payload, peer, "GetChannels")
    return [info.channel_id for info in response.channels]


async def get_chain_info(
    peer: Target, signer: SigningIdentity, channel: str
) -> ledger_pb2.BlockchainInfo:
    """The channel's BlockchainInfo on `peer` (qscc GetChainInfo).

    Raises:
        ChannelQueryError: the peer refused (e.g. unknown channel) or is unreachable.
    """
    args = [b"GetChainInfo", channel.encode()]
    payload = await _query_scc(peer, signer, "qscc", channel, args)
    return _decode(ledger_pb2.BlockchainInfo, payload, peer, "GetChainInfo")


def chain_info_document(info: ledger_pb2.BlockchainInfo) -> dict[str, object]:
    """Fabric's getinfo object, with the hashes in lowercase hex."""
    return {
        "height": info.height,
        "currentBlockHash": info.currentBlockHash.hex(),
        "previousBlockHash": info.previousBlockHash.hex(),
    }


async def _query_scc(
    peer: Target,
    signer: SigningIdentity,
    chaincode: str,
    channel: str,
    args: list[bytes],
) -> bytes:
    created = create_proposal(
        channel_id=channel,
        chaincode_name=chaincode,
        args=args,
        creator=signer.serialized,
    )
    signed = sign_proposal(created.proposal_bytes, signer.sign)
    function = args[0].decode()
    async with peer.open() as grpc_channel:
        method = grpc_channel.unary_unary(  # type: ignore[call-arg]
            "/protos.Endorser/ProcessProposal",
            response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
        )
        try:
            response: proposal_response_pb2.ProposalResponse = await method(
                signed.SerializeToString(), timeout=peer.timeout_s
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise rpc_error(f"peer {peer.address}", error) from None
            raise ChannelQueryError(
                f"peer {peer.address} refused {function} signed by {signer.mspid}: "
                f"{error.details() or 'permission denied'}"
            ) from None
    if response.response.status != STATUS_OK:
        raise ChannelQueryError(
            f"peer {peer.address} refused {function} signed by {signer.mspid}: "
            f"{response.response.message or 'no message'} "
            f"(status {response.response.status})"
        )
    return response.response.payload


_M = TypeVar("_M", bound=Message)


def _decode(kind: type[_M], data: bytes, peer: Target, function: str) -> _M:
    try:
        return kind.FromString(data)
    except DecodeError:
        raise ChannelQueryError(
            f"peer {peer.address}: the {function} answer does not decode"
        ) from None


# Deliver


async def fetch_block(
    source: DeliverSource, signer: SigningIdentity, channel: str, spec: BlockSpec
) -> common_pb2.Block:
    """The block `spec` names, read over Deliver from `source`.

    Raises:
        ChannelQueryError: refused, unreachable, unknown channel, or no such block.
    """
    if spec.kind == "config":
        block, _ = await last_config_block(source, signer, channel)
        return block
    position = {
        "newest": SeekPosition.newest(),
        "oldest": SeekPosition.oldest(),
        "number": SeekPosition.specified(spec.number),
    }[spec.kind]
    return await deliver_block(source, signer, channel, position)
