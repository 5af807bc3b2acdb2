"""Which orderer cuts a channel's blocks: an etcd key bound to the cutter's lease.

The key `/medledger/<channel>/cutter` holds a CutterRecord (orderer name, the address of
its Forward service, a per-process incarnation) and is attached to a lease with a short
TTL (2 s by default). Whoever creates the key is cutter until its lease ends; the other
orderers watch the key and campaign when it is deleted. The key's create revision
identifies the term and fences every block write (see etcd_log), because a lock or lease
alone cannot guarantee one writer when processes pause.

A cutter keeps its lease alive every TTL/3. Its term ends when etcd says the lease is
gone, when a block write finds the key is no longer its own (etcd_log's fence), or when
no keep-alive got through for a whole TTL. The term's safety never rests on the cutter's
clock or on timely keep-alives (a busy or paused process must not be able to fork the
chain, and cannot, thanks to the fence); they only decide how soon it stops trying.
After a restart an orderer finds its previous incarnation's record and revokes that
lease instead of waiting for it to expire; if etcd was unreachable for a while but the
lease survived (etcd extends leases when its own leader changes), the same process
resumes its term.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_log import ChannelKeys
from orderer.consensus.etcd_types import (
    EtcdError,
    EtcdUnavailable,
    Get,
    KeyMissing,
    KeyValue,
    Put,
)
from protos.medledger.orderer import forward_pb2

_LOG = logging.getLogger(__name__)
_KEEP_ALIVE_RETRY_S = 0.1
_CAMPAIGN_ROUNDS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class CutterInfo:
    """Who is (or wants to be) cutter: the contents of the election record."""

    orderer_name: str
    forward_address: str
    incarnation: bytes = field(default_factory=lambda: os.urandom(8))

    def encode(self) -> bytes:
        return forward_pb2.CutterRecord(
            orderer_name=self.orderer_name,
            forward_address=self.forward_address,
            incarnation=self.incarnation,
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> CutterInfo:
        """Raises EtcdError when the record does not parse or names no orderer."""
        try:
            record = forward_pb2.CutterRecord.FromString(data)
        except DecodeError as error:
            raise EtcdError(f"cutter record does not parse: {error}") from error
        if not record.orderer_name:
            raise EtcdError("cutter record names no orderer")
        return cls(
            orderer_name=record.orderer_name,
            forward_address=record.forward_address,
            incarnation=record.incarnation,
        )


class Term:
    """One tenure as cutter: its lease and the election key's create revision."""

    def __init__(self, *, lease_id: int, revision: int) -> None:
        self.lease_id = lease_id
        self.revision = revision
        self.ended = asyncio.Event()
        self.lost_contact = False
        """Set when the term ended because etcd could not be reached for a TTL."""
        self._on_end: list[Callable[[], None]] = []

    def is_valid(self) -> bool:
        return not self.ended.is_set()

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the term ends (at once if it has)."""
        if self.ended.is_set():
            callback()
        else:
            self._on_end.append(callback)

    def end(self) -> None:
        if self.ended.is_set():
            return
        self.ended.set()
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            callback()

    def __repr__(self) -> str:
        return f"Term(lease={self.lease_id:x}, revision={self.revision})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Follower:
    """Lost (or did not run) the campaign: the current cutter and the key's revision."""

    cutter: CutterInfo
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Vacant:
    """Nobody is cutter and this orderer may not be (it is not a consenter)."""

    revision: int


class Election:
    """The campaign of one orderer for one channel."""

    def __init__(
        self, client: EtcdClient, keys: ChannelKeys, me: CutterInfo, *, ttl_s: int = 2
    ) -> None:
        self.client = client
        self.keys = keys
        self.me = me
        self.ttl_s = ttl_s

    async def campaign(self, *, may_win: bool = True) -> Term | Follower | Vacant:
        """Become cutter if nobody is (and `may_win`); otherwise say who is.

        Raises:
            EtcdUnavailable: etcd did not answer in time, or the key kept vanishing
                between reads (leases ending) for `_CAMPAIGN_ROUNDS` rounds.
        """
        for _ in range(_CAMPAIGN_ROUNDS):
            outcome = await self._campaign_once(may_win=may_win)
            if outcome is not None:
                return outcome
        raise EtcdUnavailable(f"no stable cutter election for {self.keys.channel_id}")

    async def keep_alive(self, term: Term) -> None:
        """Refresh the term's lease every TTL/3 until the term ends; end it when the
        lease is gone or no refresh got through for a whole TTL."""
        interval_s = self.ttl_s / 3
        answered = time.monotonic()
        try:
            while term.is_valid():
                try:
                    ttl = await self.client.keep_alive(
                        term.lease_id, timeout_s=self.ttl_s
                    )
                except EtcdUnavailable as error:
                    if time.monotonic() - answered > self.ttl_s:
                        _LOG.warning(
                            "cutter lost etcd channel=%s: %s", self._channel, error
                        )
                        term.lost_contact = True
                        return
                    await _wait(term.ended, _KEEP_ALIVE_RETRY_S)
                    continue
                if ttl <= 0:
                    _LOG.warning("cutter lease expired channel=%s", self._channel)
                    return
                answered = time.monotonic()
                await _wait(term.ended, interval_s)
        finally:
            term.end()

    async def wait_for_change(self, revision: int) -> None:
        """Return once the election key changes or goes after `revision`.

        Raises:
            EtcdUnavailable: the watch failed; read the key again.
        """
        key = self.keys.cutter
        async for batch in self.client.watch(key, b"", start_revision=revision + 1):
            if batch.events:
                return

    async def resign(self, term: Term, *, timeout_s: float) -> None:
        """End the term now (revoke its lease) so another orderer takes over at once."""
        term.end()
        try:
            async with asyncio.timeout(timeout_s):
                await self._revoke_quietly(term.lease_id)
        except TimeoutError:
            _LOG.info(
                "lease %x not revoked in %s s; it will expire", term.lease_id, timeout_s
            )

    async def _campaign_once(self, *, may_win: bool) -> Term | Follower | Vacant | None:
        """One round; None when the key changed under us and the round must be rerun."""
        read = await self.client.get_range(self.keys.cutter, b"")
        if read.kvs:
            return await self._existing(read.kvs[0], read_revision=read.revision)
        if not may_win:
            return Vacant(revision=read.revision)
        lease_id, _ = await self.client.grant_lease(self.ttl_s)
        result = await self.client.txn(
            [KeyMissing(self.keys.cutter)],
            [Put(self.keys.cutter, self.me.encode(), lease=lease_id)],
            [Get(self.keys.cutter)],
        )
        if result.succeeded:
            _LOG.info(
                "won cutter election channel=%s lease=%x",
                self.keys.channel_id,
                lease_id,
            )
            return Term(lease_id=lease_id, revision=result.revision)
        await self._revoke_quietly(lease_id)
        winner = result.ranges[0].kvs
        if not winner:
            return None
        return await self._existing(winner[0], read_revision=result.revision)

    async def _existing(
        self, current: KeyValue, *, read_revision: int
    ) -> Term | Follower | None:
        """The outcome with `current` holding the key, as read at `read_revision`.

        A follower watches from the read's revision, not the key's: nothing changed
        the key in between, and the key's own revision may be compacted away."""
        try:
            cutter = CutterInfo.decode(current.value)
        except EtcdError as error:
            _LOG.error("bad cutter record channel=%s: %s", self.keys.channel_id, error)
            cutter = CutterInfo(orderer_name="?", forward_address="", incarnation=b"")
        if cutter.orderer_name != self.me.orderer_name:
            return Follower(
                cutter=cutter, revision=max(read_revision, current.mod_revision)
            )
        if cutter.incarnation != self.me.incarnation:
            # Our previous process's lease: revoke it rather than wait for it to expire.
            await self._revoke_quietly(current.lease)
            return None
        ttl = await self.client.keep_alive(current.lease, timeout_s=self.ttl_s)
        if ttl <= 0:
            return None
        _LOG.info("resuming cutter term channel=%s", self.keys.channel_id)
        return Term(lease_id=current.lease, revision=current.create_revision)

    @property
    def _channel(self) -> str:
        return self.keys.channel_id

    async def _revoke_quietly(self, lease_id: int) -> None:
        try:
            await self.client.revoke_lease(lease_id)
        except EtcdError as error:
            _LOG.info("could not revoke lease %x (it will expire): %s", lease_id, error)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    """Wait for `event` at most `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return
