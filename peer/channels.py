"""The channels this peer has joined: one folder each, with ledger, committer and feed.

Layout under the storage folder: `channels/<name>/` holds the channel's `ChannelLedger`
(block store and database), which learns which private data collections this peer's
organisation is a member of, and their blockToLive, from the channel's committed
chaincode definitions (`peer.privdata.collections`). Joining commits the genesis block into
`channels/.joining-<name>/` and renames the folder once it is durable, so a crash
mid-join leaves no half-joined channel; on start every channel folder is reopened and
the committer resumes from the last config block.

`PeerChannel` is what the rest of the peer sees of one channel: the current config and
its ACLs, read snapshots for simulation, the block store for queries, `commit` for the
block puller, and the block feed Deliver waits on. Commits run in a worker thread, one
at a time per channel; everything else runs on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.channel_folders import (
    CHANNELS_FOLDER,
    create_channel_folder,
    is_valid_channel_name,
    joined_channel_folders,
)
from common.channelconfig import ChannelConfig
from common.errors import ChannelConfigError
from common.msp import Identity
from common.policies import SignedData as PolicySignedData
from common.protoutil import SignedData
from common.threads import in_thread_to_completion, wait_out
from peer.commit_feed import CommitFeed
from peer.committer import Committer, ParallelVerifier
from peer.errors import ChannelExists, ChannelNotJoined, JoinRejected
from peer.ledger import transient
from peer.ledger.connections import Readers
from peer.ledger.ledger import DATABASE_FILE, ChannelLedger
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import VersionedValue, get_state
from peer.metrics import count_transactions
from peer.privdata.collections import CommittedCollections
from peer.simulator import Snapshots, TxSimulator, open_simulator
from protos.common import common_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "CHANNELS_FOLDER",
    "DEFAULT_ACLS",
    "Channels",
    "CommittedState",
    "PeerChannel",
    "is_valid_channel_name",
    "open_ledger",
]

_LOG = logging.getLogger(__name__)

_READERS = "/Channel/Application/Readers"
_WRITERS = "/Channel/Application/Writers"
DEFAULT_ACLS = {
    "peer/Propose": _WRITERS,
    "peer/ChaincodeToChaincode": _WRITERS,
    "qscc/GetChainInfo": _READERS,
    "qscc/GetBlockByNumber": _READERS,
    "qscc/GetBlockByHash": _READERS,
    "qscc/GetTransactionByID": _READERS,
    "qscc/GetBlockByTxID": _READERS,
    "cscc/GetConfigBlock": _READERS,
    "cscc/GetChannelConfig": _READERS,
    "event/Block": _READERS,
    "event/FilteredBlock": _READERS,
}
"""Fabric's default policy per channel resource; a channel config's ACLs override them."""


class PeerChannel:
    """One joined channel (see the module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        folder: Path,
        committer: Committer,
        on_close: Callable[[], None] | None = None,
        membership: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.channel_id = channel_id
        self._on_close = on_close
        self._membership = membership
        self.folder = folder
        self._committer = committer
        self._feed = CommitFeed(committer.ledger)
        self._snapshots = Snapshots(folder / DATABASE_FILE)
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Future[Any] | None = None
        self._private_lock = threading.Lock()
        self._private_conn: sqlite3.Connection | None = None

    # Config and access control

    @property
    def config(self) -> ChannelConfig:
        """The channel config the next block is validated against."""
        return self._committer.config

    @property
    def ledger(self) -> ChannelLedger:
        return self._committer.ledger

    def acl_policy(self, resource: str) -> str:
        """The policy path guarding `resource`: the config's ACL, else Fabric's default.

        Raises:
            KeyError: the resource has neither.
        """
        return self.config.acl_policy(resource) or DEFAULT_ACLS[resource]

    def check_acl(self, resource: str, identity: Identity) -> None:
        """Check an already validated and verified identity against a resource's policy.

        Raises:
            PolicyError: the identity does not satisfy it (or the policy is missing).
        """
        config = self.config
        config.policy_manager.get(self.acl_policy(resource)).evaluate_identities(
            [identity], config.msp_manager
        )

    def check_signed_acl(self, resource: str, signed_data: SignedData) -> None:
        """Check a signature (validated and verified here) against a resource's policy.

        Raises:
            PolicyError: the signer does not satisfy it, or the signature is invalid.
        """
        config = self.config
        config.policy_manager.get(self.acl_policy(resource)).evaluate(
            [_policy_signed_data(signed_data)], config.msp_manager
        )

    # Ledger

    def height(self) -> int:
        """Blocks committed (state included): what Deliver and the puller go by."""
        return self._feed.height()

    def has_tx(self, tx_id: str) -> bool:
        """Whether a transaction with this id is in the ledger (valid or not)."""
        return self.ledger.block_store.has_tx(tx_id)

    def open_simulator(self, tx_id: str) -> TxSimulator:
        """A simulator over a snapshot of the committed state; call its `done`."""
        return open_simulator(
            self._snapshots,
            channel_id=self.channel_id,
            tx_id=tx_id,
            membership=self._membership,
        )

    async def commit(self, block: common_pb2.Block) -> tuple[TxValidationCode, ...]:
        """Verify, validate and commit the next block in a worker thread.

        Raises:
            BlockVerificationError: the block is not signed as required or does not
                follow the ledger; nothing is written.
            BlockRejected, LedgerError: from the ledger.
        """
        async with self._commit_lock:
            work = asyncio.ensure_future(asyncio.to_thread(self._commit_block, block))
            self._committing = work
            # A cancelled caller must not leave a commit running unseen: it keeps the
            # commit lock until the thread has ended (no second commit beside it), and
            # `wait_idle` lets shutdown wait for it before the ledger closes.
            try:
                codes, stored = await asyncio.shield(work)
            except asyncio.CancelledError:
                await wait_out(work)
                raise
            self._feed.committed(block.header.number, stored)
            count_transactions(self.channel_id, codes)
            return codes

    def _commit_block(
        self, block: common_pb2.Block
    ) -> tuple[tuple[TxValidationCode, ...], bytes]:
        """Commit (worker thread); the codes and the block's stored bytes."""
        codes = self._committer.commit_block(block)
        return codes, self.ledger.block_store.block_bytes(block.header.number)

    async def wait_idle(self) -> None:
        """Return once no commit is running (its outcome is not reported here)."""
        work = self._committing
        if work is not None and not work.done():
            await asyncio.gather(work, return_exceptions=True)

    def store_private_data(self, tx_id: str, height: int, data: bytes) -> None:
        """Keep an endorsed private write set (TxPvtReadWriteSetWithConfigInfo) until
        its block commits. Blocks: call it from a worker thread."""
        with self._private_lock:
            conn = self._private_conn
            if conn is None:
                conn = open_channel_db(self.folder / DATABASE_FILE)
                transient.ensure(conn)
                self._private_conn = conn
            transient.persist(conn, tx_id, height, data)

    # DeliverChannel (common.deliver) with the Readers policy of blocks

    def config_sequence(self) -> int:
        return self.config.sequence

    def authorize(self, signed_data: SignedData) -> float:
        return self.authorize_resource("event/Block", signed_data)

    def authorize_resource(self, resource: str, signed_data: SignedData) -> float:
        """Check the resource's policy; returns when the requester's certificate expires.

        Raises:
            PolicyError, IdentityError, CryptoError: the requester may not read.
        """
        self.check_signed_acl(resource, signed_data)
        identity = self.config.msp_manager.deserialize_identity(signed_data.identity)
        return identity.certificate.not_after.timestamp()

    async def block_bytes(self, number: int) -> bytes:
        return await self._feed.block_bytes(number)

    async def wait_for_height(self, height: int) -> None:
        await self._feed.wait_for_height(height)

    # Lifecycle

    def close_feed(self) -> None:
        """End Deliver waits on this channel; stored blocks can still be read."""
        self._feed.close()

    def close(self) -> None:
        self._feed.close()
        self._snapshots.close()
        with self._private_lock:
            conn, self._private_conn = self._private_conn, None
        if conn is not None:
            conn.close()
        self.ledger.close()
        if self._on_close is not None:
            self._on_close()


class Channels:
    """The joined channels of this peer: join, reopen on start, close on shutdown."""

    def __init__(
        self,
        storage: Path,
        *,
        mspid: str,
        verifier: ParallelVerifier | None = None,
    ) -> None:
        self._folder = storage / CHANNELS_FOLDER
        self._mspid = mspid
        self._verifier = verifier
        self._channels: dict[str, PeerChannel] = {}
        self._lock = asyncio.Lock()

    async def open_all(self) -> list[PeerChannel]:
        """Reopen every joined channel (at node start); returns them.

        Raises:
            CorruptBlockStore, LedgerError, BlockVerificationError: a channel's storage
                cannot be reopened.
        """
        for folder in await asyncio.to_thread(joined_channel_folders, self._folder):
            self._channels[folder.name] = await self._open(folder.name, folder)
        return list(self._channels.values())

    def get(self, channel_id: str) -> PeerChannel | None:
        return self._channels.get(channel_id)

    def require(self, channel_id: str) -> PeerChannel:
        """The joined channel.

        Raises:
            ChannelNotJoined: the peer has not joined it.
        """
        channel = self._channels.get(channel_id)
        if channel is None:
            raise ChannelNotJoined(
                f"channel '{channel_id}' not found", channel_id=channel_id
            )
        return channel

    def names(self) -> list[str]:
        return sorted(self._channels)

    def all(self) -> Sequence[PeerChannel]:
        return [self._channels[name] for name in sorted(self._channels)]

    async def join(self, block: common_pb2.Block) -> PeerChannel:
        """Join the channel that `block` (its genesis block) configures.

        Raises:
            JoinRejected: not a genesis config block, or one this peer cannot use.
            ChannelExists: the channel is already joined.
        """
        config = self._join_config(block)
        name = config.channel_id
        async with self._lock:
            if name in self._channels or (self._folder / name).exists():
                raise ChannelExists(f"channel {name} already exists on this peer")
            folder = await in_thread_to_completion(  # the lock outlives the write
                functools.partial(
                    create_channel_folder,
                    self._folder,
                    name,
                    lambda staging: _commit_genesis(staging, name, block),
                )
            )
            channel = await self._open(name, folder)
            self._channels[name] = channel
        _LOG.info("joined channel=%s", name)
        return channel

    def close_feeds(self) -> None:
        """End Deliver streams waiting for new blocks (first step of shutdown)."""
        for channel in self._channels.values():
            channel.close_feed()

    def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    async def _open(self, name: str, folder: Path) -> PeerChannel:
        ledger, state = await asyncio.to_thread(
            open_ledger, folder, channel_id=name, mspid=self._mspid
        )
        try:
            committer = (
                Committer.resume(ledger)
                if self._verifier is None
                else Committer.resume(ledger, verifier=self._verifier)
            )
            members = CommittedCollections(lambda: state, mspid=self._mspid)

            def membership(ns: str, coll: str) -> bool:
                height = committer.ledger.height
                return members.is_member(ns, coll, block_num=height)

            return PeerChannel(
                name,
                folder=folder,
                committer=committer,
                on_close=state.close,
                membership=membership,
            )
        except BaseException:
            ledger.close()
            state.close()
            raise

    def _join_config(self, block: common_pb2.Block) -> ChannelConfig:
        try:
            config = ChannelConfig.from_block(block)
        except ChannelConfigError as error:
            raise JoinRejected(f"invalid join block: {error}") from None
        if block.header.number != 0:
            raise JoinRejected(
                f"invalid join block: block {block.header.number} is not a genesis "
                "block (joining from a later config block is not supported)"
            )
        if not is_valid_channel_name(config.channel_id):
            raise JoinRejected(f"invalid channel ID {config.channel_id!r}")
        # The peer's own organisation need not be in the genesis config: an
        # organisation added by a later config update joins from block 0 and
        # catches up through that config block, as in Fabric.
        return config


def open_ledger(
    folder: Path, *, channel_id: str, mspid: str
) -> tuple[ChannelLedger, CommittedState]:
    """Open a joined channel's ledger with the collections its definitions give.

    The ledger asks which collections `mspid` is a member of, and their blockToLive,
    while it commits (and already while it replays, before `open` returns), so the
    committed definitions are read through a `CommittedState` of their own; close it
    after the ledger. Blocks: call it from a worker thread.

    Raises:
        CorruptBlockStore, LedgerError: see `ChannelLedger.open`.
    """
    state = CommittedState(folder / DATABASE_FILE)
    collections = CommittedCollections(lambda: state, mspid=mspid)
    try:
        ledger = ChannelLedger.open(
            folder, channel_id=channel_id, collections=collections
        )
    except BaseException:
        state.close()
        raise
    return ledger, state


class CommittedState:
    """Committed public state of a channel database, read on connections of its own.

    A `peer.lifecycle.DefinitionReader` that works before the channel's ledger is
    open (its replay already needs the chaincode definitions).
    """

    def __init__(self, path: Path) -> None:
        self._readers = Readers(path)

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        return get_state(self._readers.get(), ns, key)

    def close(self) -> None:
        self._readers.close()


def _commit_genesis(folder: Path, channel_id: str, block: common_pb2.Block) -> None:
    with ChannelLedger.open(folder, channel_id=channel_id) as ledger:
        Committer.join(ledger, block)


def _policy_signed_data(signed_data: SignedData) -> PolicySignedData:
    return PolicySignedData(
        data=signed_data.message,
        identity=signed_data.identity,
        signature=signed_data.signature,
    )
