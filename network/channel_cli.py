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
requests use FAIL_IF_NOT_READY, so a block beyond the newest is an error instead of a
wait. Every failure (refusal, unreachable node, unknown channel, bad block number,
unwritable file) is a `ChannelQueryError`: one line on stderr, exit status 1.
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

from common.errors import MedledgerError
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    FAIL_IF_NOT_READY,
    SeekPosition,
    create_proposal,
    create_seek_envelope,
    sign_proposal,
)
from common.tls import TlsFiles, cert_hash
from network.block_json import block_document
from network.cli import add_peer_tls_arguments
from network.config_json import json_text
from network.lifecycle_client import Target
from protos.common import common_pb2, ledger_pb2
from protos.orderer import ab_pb2
from protos.peer import (
    events_pb2,
    proposal_response_pb2,
    query_pb2,
)

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
DEFAULT_TIMEOUT_S = 30.0
LIST_HEADING = "Channels peers has joined: "

_T = TypeVar("_T")
if TYPE_CHECKING:
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class ChannelQueryError(MedledgerError):
    """A channel query failed; the message names the node and why."""


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
    listing = channel_commands.add_parser(
        "list",
        help="list the channels a peer has joined",
        description=(
            "Ask the peer's cscc for the channels it has joined; a member of the "
            "peer's own organisation must sign."
        ),
    )
    _peer_arguments(listing, required=True)
    _identity_arguments(listing, who="a member of the peer's organisation")
    add_peer_tls_arguments(listing)
    _common_arguments(listing, json_help='print {"channels": [...]}')
    listing.set_defaults(handler=run_channel_list)

    info = channel_commands.add_parser(
        "getinfo",
        help="a channel's height and newest block hashes",
        description=(
            "Ask the peer's qscc for the channel's height, current and previous block "
            "hashes (hex); a reader of the channel must sign."
        ),
    )
    _peer_arguments(info, required=True)
    _channel_argument(info)
    _identity_arguments(info, who="a reader of the channel")
    add_peer_tls_arguments(info)
    _common_arguments(info, json_help="print the JSON object alone")
    info.set_defaults(handler=run_channel_getinfo)

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
    _channel_argument(fetch)
    source = fetch.add_mutually_exclusive_group(required=True)
    source.add_argument("--orderer", help="fetch from this orderer's HOST:PORT")
    source.add_argument("--peer", help="fetch from this peer's HOST:PORT")
    _identity_arguments(fetch, who="a reader of the channel")
    add_peer_tls_arguments(fetch)
    fetch.add_argument(
        "--orderer-tls-ca", type=Path, help="the CA of the orderer's TLS certificate"
    )
    fetch.add_argument(
        "--orderer-server-name", help="TLS name to expect from the orderer"
    )
    _common_arguments(
        fetch,
        json_help="also write the block decoded as JSON to FILE (-: stdout)",
        json_file=True,
    )
    fetch.set_defaults(handler=run_channel_fetch)


def _peer_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--peer", required=required, help="the peer's HOST:PORT")


def _channel_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--channel", required=True, help="the channel name")


def _identity_arguments(parser: argparse.ArgumentParser, *, who: str) -> None:
    parser.add_argument(
        "--identity", type=Path, required=True, help=f"MSP folder of {who}"
    )
    parser.add_argument("--mspid", required=True, help="the MSP id of that identity")


def _common_arguments(
    parser: argparse.ArgumentParser, *, json_help: str, json_file: bool = False
) -> None:
    if json_file:
        parser.add_argument("--json", type=Path, metavar="FILE", help=json_help)
    else:
        parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the node (default {DEFAULT_TIMEOUT_S:g})",
    )


def run_channel_list(args: argparse.Namespace) -> int:
    signer = _signer(args)
    channels = _run(get_channels(_peer_target(args), signer))
    if args.json:
        print(json.dumps({"channels": channels}))
        return EXIT_OK
    print(LIST_HEADING)
    for channel in channels:
        print(channel)
    return EXIT_OK


def run_channel_getinfo(args: argparse.Namespace) -> int:
    signer = _signer(args)
    info = _run(get_chain_info(_peer_target(args), signer, args.channel))
    text = json.dumps(chain_info_document(info), separators=(",", ":"))
    print(text if args.json else f"Blockchain info: {text}")
    return EXIT_OK


def run_channel_fetch(args: argparse.Namespace) -> int:
    spec = parse_block_spec(args.block)
    output: Path = args.output or Path(f"{args.channel}_{spec.label}.block")
    signer = _signer(args)
    source = _deliver_source(args)
    block = _run(fetch_block(source, signer, args.channel, spec))
    _write(output, block.SerializeToString())
    if args.json is not None:
        document = json_text(block_document(block))
        if str(args.json) == "-":
            sys.stdout.write(document)
        else:
            _write(args.json, document.encode())
    print(f"Received block: {block.header.number}", file=sys.stderr)
    return EXIT_OK


def _signer(args: argparse.Namespace) -> SigningIdentity:
    return load_signing_identity(args.identity, mspid=args.mspid)


def _peer_target(args: argparse.Namespace) -> Target:
    tls = None
    if args.tls_ca is not None:
        tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, root_cas=(args.tls_ca,))
    return Target(
        address=args.peer, tls=tls, server_name=args.server_name, timeout_s=args.timeout
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSource:
    """Where `fetch` reads blocks: a node, and whether it is an orderer."""

    target: Target
    orderer: bool
    tls_cert_hash: bytes | None = None

    @property
    def name(self) -> str:
        return f"{'orderer' if self.orderer else 'peer'} {self.target.address}"


def _deliver_source(args: argparse.Namespace) -> DeliverSource:
    if args.orderer is None:
        target = _peer_target(args)
    else:
        tls = None
        if args.orderer_tls_ca is not None:
            tls = TlsFiles(
                cert=args.tls_cert, key=args.tls_key, root_cas=(args.orderer_tls_ca,)
            )
        target = Target(
            address=args.orderer,
            tls=tls,
            server_name=args.orderer_server_name,
            timeout_s=args.timeout,
        )
    client_hash = None
    if target.tls is not None and target.tls.cert is not None:
        client_hash = cert_hash(_read(target.tls.cert))
    return DeliverSource(
        target=target, orderer=args.orderer is not None, tls_cert_hash=client_hash
    )


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(work)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ChannelQueryError(f"{path}: {error.strerror}") from None


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ChannelQueryError(f"cannot write {path}: {error.strerror}") from None


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
                raise _rpc_error(f"peer {peer.address}", error) from None
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


def _rpc_error(node: str, error: grpc.aio.AioRpcError) -> ChannelQueryError:
    details = error.details() or "no details"
    return ChannelQueryError(f"{node}: {error.code().name}: {details}")


# Deliver


async def fetch_block(
    source: DeliverSource, signer: SigningIdentity, channel: str, spec: BlockSpec
) -> common_pb2.Block:
    """The block `spec` names, read over Deliver from `source`.

    Raises:
        ChannelQueryError: refused, unreachable, unknown channel, or no such block.
    """
    if spec.kind == "number":
        return await _fetch_one(
            source, signer, channel, SeekPosition.specified(spec.number)
        )
    if spec.kind == "oldest":
        return await _fetch_one(source, signer, channel, SeekPosition.oldest())
    newest = await _fetch_one(source, signer, channel, SeekPosition.newest())
    if spec.kind == "newest":
        return newest
    number = last_config_number(newest)
    if number == newest.header.number:
        return newest
    return await _fetch_one(source, signer, channel, SeekPosition.specified(number))


def last_config_number(block: common_pb2.Block) -> int:
    """The last config block's number recorded in `block`'s metadata.

    The SIGNATURES entry's OrdererBlockMetadata is read first (Fabric 2.x), then the
    LAST_CONFIG entry; a genesis block without either is its own config block.

    Raises:
        ChannelQueryError: neither entry says, or the metadata does not decode.
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
        raise ChannelQueryError(
            f"block {number}: its last-config metadata does not decode"
        ) from None
    if number == 0:
        return 0
    raise ChannelQueryError(f"block {number} names no last config block")


async def _fetch_one(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    position: SeekPosition,
) -> common_pb2.Block:
    envelope = create_seek_envelope(
        channel_id=channel,
        start=position,
        stop=position,
        behavior=FAIL_IF_NOT_READY,
        creator=signer.serialized,
        signer=signer.sign,
        tls_cert_hash=source.tls_cert_hash,
    )
    kind: type[Message] = events_pb2.DeliverResponse
    path = "/protos.Deliver/Deliver"
    if source.orderer:
        kind, path = ab_pb2.DeliverResponse, "/orderer.AtomicBroadcast/Deliver"
    target = source.target
    block: common_pb2.Block | None = None
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
                    block = response.block
                elif response.WhichOneof("Type") == "status":
                    status = response.status
                    break
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(source.name, error) from None
        finally:
            call.cancel()
    if block is not None and status == common_pb2.SUCCESS:
        return block
    raise await _deliver_refusal(source, signer, channel, position, status)


async def _deliver_refusal(
    source: DeliverSource,
    signer: SigningIdentity,
    channel: str,
    position: SeekPosition,
    status: int,
) -> ChannelQueryError:
    """Why Deliver answered `status` without a block, in an operator's words."""
    name = common_pb2.Status.Name(status) if status else "no answer"
    where = f"{source.name}, channel {channel}"
    if status == common_pb2.FORBIDDEN:
        return ChannelQueryError(
            f"{where}: {signer.mspid} identity may not read the channel ({name})"
        )
    if status == common_pb2.NOT_FOUND and position.kind == "specified":
        try:
            newest = await _fetch_one(source, signer, channel, SeekPosition.newest())
        except ChannelQueryError as error:
            return error
        return ChannelQueryError(
            f"{where}: there is no block {position.number} yet "
            f"(the newest is {newest.header.number})"
        )
    if status == common_pb2.NOT_FOUND:
        return ChannelQueryError(f"{where}: the node has no such channel ({name})")
    return ChannelQueryError(f"{where}: no block delivered ({name})")
