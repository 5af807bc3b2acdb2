"""When the peer deploys chaincode indexes: after `_lifecycle` changes, at install, at start.

Method: `IndexDeployer` over a fake channel (a real channel database, a height and a
feed the test moves), a fake package store holding one real package, and a `served`
callable the test sets (it stands for committed definitions plus this org's
approvals). The watcher runs as the node's job would; the test waits on
`wait_checked`, never on time.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest

from common.deliver import FeedClosed
from peer.channels import PeerChannel
from peer.errors import PackageNotFound
from peer.ledger.connections import open_writer
from peer.ledger.ledger import DATABASE_FILE
from peer.ledger.mango import list_indexes
from peer.ledger.statedb import UpdateBatch, Version, apply_updates
from peer.lifecycle.definitions import LIFECYCLE_NAMESPACE
from peer.lifecycle.index_deployer import IndexDeployer
from peer.lifecycle.indexes import IndexDeployment
from peer.lifecycle.package import build_package

NS = "records"
MSPID = "HospitalAMSP"


class FakeLedger:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def reader(self) -> sqlite3.Connection:
        return self.conn


class FakeChannel:
    """The parts of `PeerChannel` the deployer uses; `commit` moves the height."""

    def __init__(self, folder: Path) -> None:
        self.channel_id = "ch"
        self.folder = folder
        self.conn = open_writer(folder / DATABASE_FILE)
        self.ledger = FakeLedger(self.conn)
        self._height = 1
        self._changed = asyncio.Event()
        self._closed = False

    def height(self) -> int:
        return self._height

    def commit(self, *, lifecycle: bool) -> None:
        """One more block; with `lifecycle`, it writes a `_lifecycle` key."""
        if lifecycle:
            batch = UpdateBatch()
            version = Version(self._height, 0)
            batch.put(LIFECYCLE_NAMESPACE, "namespaces/metadata/x", b"m", version)
            apply_updates(self.conn, batch, savepoint=version)
        self._height += 1
        self._wake()

    async def wait_for_height(self, height: int) -> None:
        while self._height < height:
            if self._closed:
                raise FeedClosed("closed")
            await self._changed.wait()

    def close_feed(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class FakeStore:
    def __init__(self, packages: dict[str, bytes]) -> None:
        self.packages = packages

    def load(self, package_id: str) -> bytes:
        if package_id not in self.packages:
            raise PackageNotFound("not installed", package_id=package_id)
        return self.packages[package_id]


class FakeChannels:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel

    def all(self) -> list[PeerChannel]:
        return [cast("PeerChannel", self.channel)]


class Served:
    """What `served_deployments` would answer; counts the calls."""

    def __init__(self) -> None:
        self.deployments: list[IndexDeployment] = []
        self.calls = 0

    def __call__(self, channel: PeerChannel) -> list[IndexDeployment]:
        self.calls += 1
        return list(self.deployments)


def package_with_index(folder: Path, field: str) -> tuple[str, bytes]:
    source = folder / f"records-{field}" / "records"
    index = source / "META-INF/statedb/couchdb/indexes/byOwner.json"
    index.parent.mkdir(parents=True)
    (source / "__init__.py").write_text("contracts = []\n")
    index.write_text(
        json.dumps(
            {"index": {"fields": [field]}, "ddoc": "byOwnerDoc", "name": "byOwner"}
        )
    )
    package, _ = build_package(label=f"records_{field}", kind="python", source=source)
    return f"records_{field}:x", package


def served_by(package_id: str, *, sequence: int = 1) -> IndexDeployment:
    return IndexDeployment(
        channel_id="ch",
        chaincode=NS,
        sequence=sequence,
        package_id=package_id,
        collections=frozenset(),
    )


def indexed_fields(channel: FakeChannel) -> list[tuple[str, ...]]:
    return [f.path for i in list_indexes(channel.conn, NS) for f in i.fields]


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[FakeChannel]:
    fake = FakeChannel(tmp_path)
    yield fake
    fake.conn.close()


@pytest.fixture
def parts(tmp_path: Path) -> tuple[FakeStore, Served, str, str]:
    owner_id, owner = package_with_index(tmp_path, "owner")
    size_id, size = package_with_index(tmp_path, "size")
    return FakeStore({owner_id: owner, size_id: size}), Served(), owner_id, size_id


def new_deployer(
    channel: FakeChannel, store: FakeStore, served: Served
) -> IndexDeployer:
    return IndexDeployer(
        mspid=MSPID,
        channels=FakeChannels(channel),
        store=store,
        served=served,
    )


@pytest.fixture
async def running(
    channel: FakeChannel, parts: tuple[FakeStore, Served, str, str]
) -> AsyncIterator[IndexDeployer]:
    store, served, _, _ = parts
    deployer = new_deployer(channel, store, served)
    job = asyncio.ensure_future(deployer.run())
    yield deployer
    channel.close_feed()
    await deployer.stop()
    async with asyncio.timeout(5):
        await job


def test_refresh_reads_definitions_only_when_lifecycle_changed(
    channel: FakeChannel, parts: tuple[FakeStore, Served, str, str]
) -> None:
    """The first refresh deploys; later ones cost the mark alone until a `_lifecycle`
    write; an upgrade to another package replaces the index."""
    store, served, owner_id, size_id = parts
    deployer = new_deployer(channel, store, served)
    served.deployments = [served_by(owner_id)]
    peer_channel = cast("PeerChannel", channel)

    assert deployer.refresh(peer_channel) == [owner_id]
    assert deployer.refresh(peer_channel) == []
    assert served.calls == 1
    channel.commit(lifecycle=False)
    assert deployer.refresh(peer_channel) == []
    assert served.calls == 1

    served.deployments = [served_by(size_id, sequence=2)]
    channel.commit(lifecycle=True)
    assert deployer.refresh(peer_channel) == [size_id]
    assert served.calls == 2
    assert indexed_fields(channel) == [("size",)]


def test_install_deploys_where_the_package_already_serves(
    channel: FakeChannel, parts: tuple[FakeStore, Served, str, str]
) -> None:
    """A definition committed before the install: its indexes come with the install,
    though `_lifecycle` did not change; a missing package is logged, not raised."""
    store, served, owner_id, _ = parts
    deployer = new_deployer(channel, store, served)
    deployer.refresh(cast("PeerChannel", channel))
    assert indexed_fields(channel) == []

    served.deployments = [served_by(owner_id)]
    deployer.installed(owner_id)
    assert indexed_fields(channel) == [("owner",)]

    served.deployments = [served_by("gone:x", sequence=2)]
    deployer.installed("gone:x")
    assert indexed_fields(channel) == [("owner",)]


async def test_the_watcher_deploys_after_the_commit_that_makes_it_due(
    channel: FakeChannel,
    parts: tuple[FakeStore, Served, str, str],
    running: IndexDeployer,
) -> None:
    """At start everything due is deployed; a later block that commits a definition
    for the installed package brings its index once that block is checked."""
    _, served, owner_id, _ = parts
    async with asyncio.timeout(5):
        await running.wait_checked("ch", 1)
        assert indexed_fields(channel) == []

        channel.commit(lifecycle=False)
        await running.wait_checked("ch", 2)
        served.deployments = [served_by(owner_id)]
        channel.commit(lifecycle=True)
        await running.wait_checked("ch", 3)
    assert indexed_fields(channel) == [("owner",)]


async def test_stop_ends_the_watchers(
    channel: FakeChannel, running: IndexDeployer
) -> None:
    """Closing the feed and `stop` end the job (the fixture awaits it)."""
    async with asyncio.timeout(5):
        await running.wait_checked("ch", 1)
    assert running.is_running()
