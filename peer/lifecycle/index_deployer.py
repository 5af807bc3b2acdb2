"""When a peer deploys chaincode indexes: after commits that touch `_lifecycle`, at install.

Commit phase, after a block. `IndexDeployer` keeps, per channel and chaincode, the
deployment it last made (`peer.lifecycle.indexes`) and makes the ones due:

- after each commit, a watcher per channel (the `run` job) checks in a worker thread
  whether `_lifecycle` changed for this peer (`lifecycle_mark`: two primary-key
  look-ups) and, if so, deploys what became due: a definition committed for a
  package installed here, or a new approval of this organisation;
- at install, `installed` deploys the new package on every channel where it already
  serves a committed definition (the install's worker thread, before it answers);
- when a watcher starts (node start, channel join), everything due is deployed again,
  which costs a look-up per index when nothing changed and repairs a crash between a
  commit and its deployment.

Deployments write through a connection of their own, never the committer's, and
never make a commit fail: their errors are logged (see `deploy_package_indexes`).
One lock serialises them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from common.deliver import FeedClosed
from peer.channels import PeerChannel
from peer.errors import ChaincodeError, LedgerError, LifecycleError
from peer.ledger.ledger import DATABASE_FILE
from peer.lifecycle.indexes import (
    IndexDeployment,
    deploy_package_indexes,
    index_files,
    lifecycle_mark,
    pending_deployments,
)
from peer.lifecycle.package import parse_package

__all__ = ["IndexDeployer"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_QUEUE_MAX = 1024

Served = Callable[[PeerChannel], list[IndexDeployment]]
"""A channel → the deployments its committed definitions make due on this peer."""


class ChannelSource(Protocol):
    """The peer's joined channels (`peer.channels.Channels`)."""

    def all(self) -> Iterable[PeerChannel]: ...


class PackageSource(Protocol):
    """The installed packages (`peer.lifecycle.store.PackageStore`)."""

    def load(self, package_id: str) -> bytes: ...


class IndexDeployer:
    """Deploys the indexes of installed packages serving committed definitions."""

    def __init__(
        self,
        *,
        mspid: str,
        channels: ChannelSource,
        store: PackageSource,
        served: Served,
    ) -> None:
        self._mspid = mspid
        self._channels = channels
        self._store = store
        self._served = served
        self._lock = threading.Lock()
        self._deployed: dict[tuple[str, str], IndexDeployment] = {}
        self._marks: dict[str, tuple[int, int]] = {}
        self._queue: asyncio.Queue[PeerChannel | None] = asyncio.Queue(
            maxsize=_QUEUE_MAX
        )
        self._checked: dict[str, int] = {}
        self._progress = asyncio.Event()
        self._busy: set[asyncio.Future[Any]] = set()
        self._stopping = False

    # Blocking core (worker threads)

    def refresh(self, channel: PeerChannel, *, force: bool = False) -> list[str]:
        """Deploy what became due on `channel`; returns the package ids deployed.

        Without `force`, nothing is read unless `_lifecycle` changed since the last
        refresh of the channel. Blocks: call it from a worker thread.

        Raises:
            LedgerError: the channel's ledger is closed or unreadable.
        """
        with self._lock:
            mark = lifecycle_mark(channel.ledger.reader(), self._mspid)
            if not force and self._marks.get(channel.channel_id) == mark:
                return []
            pending = pending_deployments(self._served(channel), self._deployed)
            for deployment in pending:
                self._deploy(channel, deployment)
                key = (deployment.channel_id, deployment.chaincode)
                self._deployed[key] = deployment
            self._marks[channel.channel_id] = mark
            return [deployment.package_id for deployment in pending]

    def installed(self, package_id: str) -> None:
        """A package was installed: deploy it where it serves a committed definition.

        Blocks (the install's worker thread); errors are logged, never raised, so
        an install never fails for its indexes.
        """
        for channel in self._channels.all():
            try:
                self.refresh(channel, force=True)
            except (LedgerError, LifecycleError, ChaincodeError) as error:
                _LOG.error(
                    "indexes not deployed at install channel=%s package_id=%s: %s",
                    channel.channel_id,
                    package_id,
                    error,
                )

    def _deploy(self, channel: PeerChannel, deployment: IndexDeployment) -> None:
        try:
            package = parse_package(self._store.load(deployment.package_id))
            files = index_files(package.code)
            if files:
                deploy_package_indexes(
                    channel.folder / DATABASE_FILE, deployment, files
                )
        except (LifecycleError, sqlite3.Error) as error:
            _LOG.error(
                "indexes not deployed channel=%s chaincode=%s package_id=%s: %s",
                deployment.channel_id,
                deployment.chaincode,
                deployment.package_id,
                error,
            )

    # Event loop

    def add(self, channel: PeerChannel) -> None:
        """Watch a channel joined after `run` started."""
        self._queue.put_nowait(channel)

    async def run(self) -> None:
        """The node's job: one watcher per channel until the feeds close or `stop`."""
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            for known in self._channels.all():
                tasks.append(group.create_task(self._watch(known)))
            while (joined := await self._queue.get()) is not None:
                tasks.append(group.create_task(self._watch(joined)))
            for task in tasks:
                task.cancel()

    async def stop(self) -> None:
        """End the watchers and wait for a deployment in progress (before the ledgers
        close)."""
        self._stopping = True
        self._queue.put_nowait(None)
        busy = list(self._busy)
        if busy:
            await asyncio.gather(*busy, return_exceptions=True)

    def is_running(self) -> bool:
        """False once `stop` was called."""
        return not self._stopping

    async def wait_checked(self, channel_id: str, height: int) -> None:
        """Return once a refresh of the channel at `height` or above has finished."""
        while self._checked.get(channel_id, -1) < height:
            await self._progress.wait()

    async def _watch(self, channel: PeerChannel) -> None:
        force = True
        while not self._stopping:
            height = channel.height()
            try:
                await self._in_thread(self.refresh, channel, force=force)
            except (LedgerError, LifecycleError, ChaincodeError) as error:
                if not self.is_running():
                    return
                _LOG.error(
                    "index deployment check failed channel=%s height=%d: %s",
                    channel.channel_id,
                    height,
                    error,
                )
            force = False
            self._checked[channel.channel_id] = height
            self._progress.set()
            self._progress = asyncio.Event()
            try:
                await channel.wait_for_height(height + 1)
            except FeedClosed:
                return

    async def _in_thread(
        self, function: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> _T:
        """Run in a worker thread; a cancelled caller leaves it for `stop` to await."""
        work = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
        self._busy.add(work)
        work.add_done_callback(self._settled)
        return await asyncio.shield(work)

    def _settled(self, work: asyncio.Future[Any]) -> None:
        # A watcher cancelled meanwhile no longer awaits `work`: its outcome is read
        # here so that asyncio does not report it as never retrieved.
        self._busy.discard(work)
        if not work.cancelled():
            work.exception()
