"""Administering a peer over `medledger.peer.v1.AdminService`: both ends of the RPC.

Not part of Fabric's wire protocol (Fabric joins through a cscc proposal): our own
signed command, checked before anything happens. `check_command` is the peer's side —
the payload decodes as an AdminCommand of the expected kind, its timestamp is within
the time window, the signer is a valid identity of the peer's MSP with the admin role
and the signature over the exact payload bytes verifies. `join_channel` and
`list_channels` are the client's side (`medledger channel join`), and
`admin_identity_for_block` finds which organisation of a genesis block an admin's
MSP folder belongs to, so the command line needs no MSP id. `list_purges` (client) and
`purge_records` (peer) make every completed private data purge auditable
(`medledger peer purges`): the peer's purge records, each with the purging
transaction's id and timestamp read from its block.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc
from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.errors import (
    BlockStoreError,
    ChannelConfigError,
    ConfigError,
    CryptoError,
    IdentityError,
    MalformedIdentity,
    WireError,
)
from common.msp import Identity, Msp, Role, SigningIdentity, load_signing_identity
from common.msp.folder import read_pem_files
from common.protoutil import parse_envelope
from common.tls import TlsFiles, channel_credentials
from peer.errors import AccessDenied, LedgerError, MalformedProposal
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtpurge import PurgeRecord, list_channel_purges
from protos.common import common_pb2
from protos.medledger.peer import admin_pb2, admin_pb2_grpc

__all__ = [
    "DEFAULT_TIME_WINDOW_S",
    "AdminTarget",
    "CommandKind",
    "admin_identity_for_block",
    "check_command",
    "join_channel",
    "list_channels",
    "list_purges",
    "purge_records",
    "sign_command",
]

DEFAULT_TIME_WINDOW_S = 15 * 60.0
DEFAULT_TIMEOUT_S = 30.0

CommandKind = Literal["join_channel", "list_channels", "list_purges"]


def check_command(
    payload: bytes,
    signature: bytes,
    *,
    kind: CommandKind,
    msp: Msp,
    time_window_s: float = DEFAULT_TIME_WINDOW_S,
    clock: Callable[[], float] = time.time,
) -> admin_pb2.AdminCommand:
    """The verified command of a signed admin request.

    Raises:
        MalformedProposal: the payload does not decode, holds another command, or has
            no timestamp or one outside the time window.
        AccessDenied: the signer is not a valid admin of `msp`, or the signature fails.
    """
    command = admin_pb2.AdminCommand()
    try:
        command.ParseFromString(payload)
    except DecodeError as error:
        raise MalformedProposal(f"admin command does not decode: {error}") from None
    if command.WhichOneof("command") != kind:
        raise MalformedProposal(f"the admin command is not {kind}")
    if not command.HasField("timestamp"):
        raise MalformedProposal("the admin command has no timestamp")
    skew_s = abs(clock() - command.timestamp.seconds - command.timestamp.nanos / 1e9)
    if skew_s > time_window_s:
        raise MalformedProposal(
            f"the admin command's timestamp is {skew_s:.0f}s away from the peer's "
            f"time (window {time_window_s:.0f}s)"
        )
    _check_signer(command.identity, payload, signature, msp)
    return command


def sign_command(
    signer: SigningIdentity, command: admin_pb2.AdminCommand
) -> tuple[bytes, bytes]:
    """Fill identity, timestamp and nonce; returns (payload, signature)."""
    command.identity = signer.serialized
    command.timestamp.GetCurrentTime()
    command.nonce = secrets.token_bytes(24)
    payload = command.SerializeToString()
    return payload, signer.sign(payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminTarget:
    """Which peer to administer and how to reach it (`tls` None: plaintext)."""

    address: str
    tls: TlsFiles | None = None
    server_name: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


async def join_channel(
    target: AdminTarget, *, signer: SigningIdentity, genesis_block: bytes
) -> admin_pb2.JoinChannelResponse:
    """Ask the peer to join the channel of `genesis_block` (a marshaled common.Block).

    Raises:
        grpc.aio.AioRpcError: the peer refused (the status says why) or is unreachable.
    """
    command = admin_pb2.AdminCommand(
        join_channel=admin_pb2.JoinChannelCommand(genesis_block=genesis_block)
    )
    payload, signature = sign_command(signer, command)
    async with _open(target) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.JoinChannelRequest(payload=payload, signature=signature)
        return await stub.JoinChannel(request, timeout=target.timeout_s)


async def list_channels(
    target: AdminTarget, *, signer: SigningIdentity
) -> admin_pb2.ListChannelsResponse:
    """The channels the peer has joined.

    Raises:
        grpc.aio.AioRpcError: the peer refused or is unreachable.
    """
    command = admin_pb2.AdminCommand(list_channels=admin_pb2.ListChannelsCommand())
    payload, signature = sign_command(signer, command)
    async with _open(target) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.ListChannelsRequest(payload=payload, signature=signature)
        return await stub.ListChannels(request, timeout=target.timeout_s)


async def list_purges(
    target: AdminTarget,
    *,
    signer: SigningIdentity,
    channel_id: str,
    namespace: str = "",
    collection: str = "",
) -> admin_pb2.ListPurgesResponse:
    """The completed purges of private keys on a channel (empty filters: all).

    Raises:
        grpc.aio.AioRpcError: the peer refused (NOT_FOUND: channel not joined) or is
            unreachable.
    """
    command = admin_pb2.AdminCommand(
        list_purges=admin_pb2.ListPurgesCommand(
            channel_id=channel_id, namespace=namespace, collection=collection
        )
    )
    payload, signature = sign_command(signer, command)
    async with _open(target) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.ListPurgesRequest(payload=payload, signature=signature)
        return await stub.ListPurges(request, timeout=target.timeout_s)


def purge_records(
    ledger: ChannelLedger, command: admin_pb2.ListPurgesCommand
) -> list[admin_pb2.PurgeRecord]:
    """The channel's purge records matching the command, oldest first (blocking).

    Raises:
        LedgerError: a purging transaction's block cannot be read.
    """
    records = list_channel_purges(
        ledger.reader(), ns=command.namespace or None, coll=command.collection or None
    )
    blocks: dict[int, common_pb2.Block] = {}
    answer = []
    for record in records:
        block = blocks.get(record.block_num)
        if block is None:
            block = blocks[record.block_num] = _read_block(ledger, record.block_num)
        answer.append(_purge_message(command.channel_id, record, block))
    return answer


def admin_identity_for_block(
    msp_dir: Path, block: bytes, *, mspid: str | None = None
) -> SigningIdentity:
    """The signing identity of an admin MSP folder, under the right MSP id.

    Without `mspid`, the MSP id is that of the block's application organisation whose
    MSP accepts the folder's certificate.

    Raises:
        ConfigError: the folder has no usable identity, the block is no config block,
            or no organisation of the channel accepts the certificate.
    """
    if mspid is not None:
        return load_signing_identity(msp_dir, mspid=mspid)
    certificates = read_pem_files(msp_dir / "signcerts")
    if not certificates:
        raise ConfigError(f"{msp_dir / 'signcerts'}: no certificate file")
    try:
        config = ChannelConfig.from_block(common_pb2.Block.FromString(block))
    except (ChannelConfigError, DecodeError) as error:
        raise ConfigError(f"the genesis block is not a config block: {error}") from None
    for org in config.application_orgs.values():
        try:
            identity = Identity.from_certificate_pem(
                mspid=org.mspid, pem=certificates[0]
            )
            org.msp.validate(identity)
        except IdentityError:
            continue
        return load_signing_identity(msp_dir, mspid=org.mspid)
    raise ConfigError(
        f"{msp_dir}: the certificate belongs to none of the channel's organisations "
        f"({', '.join(sorted(config.application_orgs))}); pass --mspid"
    )


def _read_block(ledger: ChannelLedger, number: int) -> common_pb2.Block:
    try:
        return ledger.block_store.block_by_number(number)
    except (BlockStoreError, DecodeError) as error:
        raise LedgerError(f"block {number} of a purge record: {error}") from None


def _purge_message(
    channel_id: str, record: PurgeRecord, block: common_pb2.Block
) -> admin_pb2.PurgeRecord:
    message = admin_pb2.PurgeRecord(
        channel_id=channel_id,
        namespace=record.ns,
        collection=record.coll,
        key_hash=record.key_hash,
        block_number=record.block_num,
        tx_number=record.tx_num,
        private_state_removed=record.private_state_removed,
        hashed_state_removed=record.hashed_state_removed,
        store_entries_purged=record.store_entries_purged,
    )
    if record.tx_num < len(block.data.data):
        try:
            header = parse_envelope(block.data.data[record.tx_num]).channel_header
        except WireError as error:
            raise LedgerError(
                f"block {record.block_num} tx {record.tx_num}: {error}"
            ) from None
        message.tx_id = header.tx_id
        if header.timestamp is not None:
            message.tx_timestamp.seconds = header.timestamp.seconds
            message.tx_timestamp.nanos = header.timestamp.nanos
    return message


def _check_signer(identity: bytes, payload: bytes, signature: bytes, msp: Msp) -> None:
    try:
        signer = msp.deserialize_identity(identity)
    except (MalformedIdentity, IdentityError) as error:
        raise AccessDenied(f"admin command signer: {error}") from None
    try:
        if not msp.has_role(signer, Role.ADMIN):
            raise AccessDenied(
                f"admin command signer {signer.certificate.subject_cn!r} is not an "
                f"admin of {msp.mspid}"
            )
        signer.verify(payload, signature)
    except (IdentityError, CryptoError, WireError) as error:
        raise AccessDenied(f"admin command signer: {error}") from None


def _open(target: AdminTarget) -> grpc.aio.Channel:
    if target.tls is None:
        return grpc.aio.insecure_channel(target.address)
    options = []
    if target.server_name:
        options.append(("grpc.ssl_target_name_override", target.server_name))
    return grpc.aio.secure_channel(
        target.address, channel_credentials(target.tls), options=options
    )
