"""The peers a gateway knows: by organisation, with their ledger height per channel.

Heights come from each peer's own block stream (`track_heights` follows its
DeliverFiltered from the newest block on); a peer whose stream or call fails is marked
unreachable until it delivers again, and a peer that answers NOT_FOUND for a channel
has not joined it and is left out of that channel's plans until it is asked again (every
few seconds, or at once when a request finds such a peer: `recheck`, so a gateway started
before its peers joined serves them as soon as they have). Preference order, used for
evaluation and for choosing within an organisation: reachable first, then the highest
height, then the configured order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from common.protoutil import (
    BLOCK_UNTIL_READY,
    SeekPosition,
    Signer,
    create_seek_envelope,
)
from gateway.connections import PeerClient
from protos.common import common_pb2
from protos.peer import events_pb2

__all__ = ["MAX_BLOCK", "PeerStatus", "Registry"]

_LOG = logging.getLogger(__name__)

MAX_BLOCK = 2**63 - 1
"""A stop position no chain reaches: 'follow forever'."""

_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
_RECHECK_EVERY_S = 1.0


@dataclass(slots=True)
class PeerStatus:
    """What the gateway knows of one peer on one channel."""

    height: int = 0
    reachable: bool = True
    joined: bool = True


class Registry:
    """Peers by organisation with per-channel status; `local_mspid` is the gateway's org."""

    def __init__(self, local_mspid: str, peers: Sequence[PeerClient]) -> None:
        self.local_mspid = local_mspid
        self._peers = tuple(peers)
        self._order = {peer.address: index for index, peer in enumerate(peers)}
        self._status: dict[tuple[str, str], PeerStatus] = {}
        self._unreachable: set[str] = set()
        self._height_changed: dict[tuple[str, str], asyncio.Event] = {}
        self._wake: dict[tuple[str, str], asyncio.Event] = {}
        self._answered: dict[tuple[str, str], asyncio.Event] = {}
        self._last_recheck: dict[str, float] = {}

    @property
    def peers(self) -> tuple[PeerClient, ...]:
        return self._peers

    def status(self, channel: str, peer: PeerClient) -> PeerStatus:
        key = (channel, peer.address)
        status = self._status.get(key)
        if status is None:
            status = self._status[key] = PeerStatus()
        return status

    def candidates(self, channel: str) -> list[PeerClient]:
        """The channel's peers (those not known to be outside it), best first."""
        members = [peer for peer in self._peers if self.status(channel, peer).joined]
        return sorted(members, key=lambda peer: self._rank(channel, peer))

    def by_org(self, channel: str) -> dict[str, list[PeerClient]]:
        """The channel's peers grouped by MSP id, best first within each group."""
        groups: dict[str, list[PeerClient]] = {}
        for peer in self.candidates(channel):
            groups.setdefault(peer.mspid, []).append(peer)
        return groups

    def evaluation_order(
        self, channel: str, orgs: Iterable[str] | None = None
    ) -> list[PeerClient]:
        """Peers to evaluate on: the gateway's org first (best first), then the others.

        With `orgs`, only peers of those organisations.
        """
        wanted = None if orgs is None else set(orgs)
        peers = [
            peer
            for peer in self.candidates(channel)
            if wanted is None or peer.mspid in wanted
        ]
        local = [peer for peer in peers if peer.mspid == self.local_mspid]
        others = [peer for peer in peers if peer.mspid != self.local_mspid]
        return local + others

    def mark_failed(self, peer: PeerClient) -> None:
        """A call to the peer failed as if it were down."""
        self._unreachable.add(peer.address)

    def mark_reachable(self, peer: PeerClient) -> None:
        self._unreachable.discard(peer.address)

    def record_height(self, channel: str, peer: PeerClient, height: int) -> None:
        status = self.status(channel, peer)
        status.height = max(status.height, height)
        status.joined = True
        status.reachable = True
        self._unreachable.discard(peer.address)
        changed = self._height_changed.pop((channel, peer.address), None)
        if changed is not None:
            changed.set()

    async def wait_for_height(
        self, channel: str, peer: PeerClient, height: int, *, limit_s: float
    ) -> bool:
        """Wait up to `limit_s` until the peer's ledger holds `height` blocks.

        Returns whether it does. Endorsers that lag behind the gateway's view would
        simulate on older state, and their payloads would not match. A peer whose
        height is not known yet, or that is unreachable, is not waited for.
        """
        status = self.status(channel, peer)
        if status.height >= height:
            return True
        if (
            status.height == 0
            or not status.reachable
            or peer.address in self._unreachable
        ):
            return False
        try:
            async with asyncio.timeout(limit_s):
                while status.height < height:
                    key = (channel, peer.address)
                    await self._height_changed.setdefault(key, asyncio.Event()).wait()
        except TimeoutError:
            return False
        return True

    async def recheck(self, channel: str, *, limit_s: float = 2.0) -> None:
        """Ask the peers taken to be outside `channel` again, waiting up to `limit_s`.

        At most once a second per channel, and only when such a peer exists, so a
        request costs nothing while every peer is in the channel.
        """
        outside = [
            peer for peer in self._peers if not self.status(channel, peer).joined
        ]
        if not outside:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_recheck.get(channel, -_RECHECK_EVERY_S) < _RECHECK_EVERY_S:
            return
        self._last_recheck[channel] = now
        waits = []
        for peer in outside:
            key = (channel, peer.address)
            answered = self._answered[key] = asyncio.Event()
            self._wake.setdefault(key, asyncio.Event()).set()
            waits.append(asyncio.ensure_future(answered.wait()))
        _done, pending = await asyncio.wait(waits, timeout=limit_s)
        for waiter in pending:
            waiter.cancel()

    def _rank(self, channel: str, peer: PeerClient) -> tuple[int, int, int]:
        status = self.status(channel, peer)
        down = peer.address in self._unreachable or not status.reachable
        return (1 if down else 0, -status.height, self._order[peer.address])

    async def track_heights(
        self, channel: str, *, creator: bytes, signer: Signer
    ) -> None:
        """Follow every peer's filtered blocks of `channel` until cancelled."""
        async with asyncio.TaskGroup() as group:
            for peer in self._peers:
                group.create_task(
                    self._track_peer(channel, peer, creator=creator, signer=signer)
                )

    async def _track_peer(
        self, channel: str, peer: PeerClient, *, creator: bytes, signer: Signer
    ) -> None:
        key = (channel, peer.address)
        wake = self._wake.setdefault(key, asyncio.Event())
        delay = _RETRY_FIRST_S
        while True:
            status = await self._follow_filtered(channel, peer, creator, signer)
            current = self.status(channel, peer)
            current.reachable = False
            if status == common_pb2.NOT_FOUND:
                current.joined = False
            self._signal_answer(key)
            if status is not None:
                delay = _RETRY_MAX_S
            wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await wake.wait()
                delay = _RETRY_FIRST_S
            except TimeoutError:
                delay = min(delay * 2, _RETRY_MAX_S)

    def _signal_answer(self, key: tuple[str, str]) -> None:
        answered = self._answered.pop(key, None)
        if answered is not None:
            answered.set()

    async def _follow_filtered(
        self, channel: str, peer: PeerClient, creator: bytes, signer: Signer
    ) -> int | None:
        """Stream filtered blocks into heights; returns the final status, if any."""
        request = create_seek_envelope(
            channel_id=channel,
            start=SeekPosition.newest(),
            stop=SeekPosition.specified(MAX_BLOCK),
            behavior=BLOCK_UNTIL_READY,
            creator=creator,
            signer=signer,
        )
        stream = peer.open_deliver("DeliverFiltered")
        try:
            await stream.write(request.SerializeToString())
            async for data in stream:
                response = events_pb2.DeliverResponse.FromString(data)
                if response.HasField("filtered_block"):
                    number = response.filtered_block.number
                    self.record_height(channel, peer, number + 1)
                    self._signal_answer((channel, peer.address))
                    continue
                _LOG.info(
                    "peer ended height stream peer=%s channel=%s status=%s",
                    peer.address,
                    channel,
                    response.status,
                )
                return response.status
        except (grpc.aio.AioRpcError, DecodeError) as error:
            _LOG.debug(
                "height stream failed peer=%s channel=%s error=%s",
                peer.address,
                channel,
                error,
            )
        finally:
            stream.cancel()
        return None
