"""Reconciliation: a background job that fetches the private data a peer is missing.

Every `reconcile_interval` (or at once after `trigger`), for each channel, up to
`batch` eligible missing-data records (newest first, `list_missing`) are looked up
in the block store for their `pvt_rwset_hash` and tx id, pulled from the member
peers with one attempt, checked, and stored with `resolve_missing` (private data
store and private state) through this job's own database connection. A write set
with keys this peer has purged since is also taken without them (each write that is
left checked against its hashed write), as member peers that applied the purge
serve it; without that its record would stay missing for ever. A peer that
was down, or committed a block while no member answered, catches up this way.
`wait_for` lets callers (tests, tools) wait for an outcome after each round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence

from peer.channels import Channels, PeerChannel
from peer.errors import PeerError
from peer.ledger.committed_txs import iter_committed_txs
from peer.ledger.ledger import DATABASE_FILE
from peer.ledger.pvtdata import MissingPrivateData, list_missing, resolve_missing
from peer.ledger.pvtpurge import purged_after
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import Version
from peer.privdata.members import collection_config, member_mspids
from peer.privdata.pull import NeededData, PrivateDataPuller
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = ["Reconciler"]

_LOG = logging.getLogger(__name__)
DEFAULT_BATCH = 100


class Reconciler:
    """The reconciliation job of a peer node (see the module docstring)."""

    def __init__(
        self,
        channels: Channels,
        *,
        puller: PrivateDataPuller,
        interval_s: float,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self._channels = channels
        self._puller = puller
        self._interval_s = interval_s
        self._batch = batch
        self._wake = asyncio.Event()
        self._round = asyncio.Condition()
        self._conns: dict[str, sqlite3.Connection] = {}
        self.resolved = 0
        """Missing records filled so far."""

    def trigger(self) -> None:
        """Start a round now rather than at the next interval."""
        self._wake.set()

    async def wait_for(self, done: Callable[[], bool]) -> None:
        """Return once `done()` holds, checked now and after each round."""
        async with self._round:
            await self._round.wait_for(done)

    async def run(self) -> None:
        """Reconcile every interval until cancelled."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await self._wake.wait()
                self._wake.clear()
                await self.reconcile_once()
        finally:
            await asyncio.to_thread(self._close)

    async def reconcile_once(self) -> int:
        """One round over every channel; how many records were filled."""
        filled = 0
        for channel in self._channels.all():
            try:
                filled += await self._reconcile(channel)
            except (PeerError, sqlite3.Error) as error:
                _LOG.warning(
                    "reconciliation failed channel=%s: %s", channel.channel_id, error
                )
        self.resolved += filled
        async with self._round:
            self._round.notify_all()
        return filled

    async def _reconcile(self, channel: PeerChannel) -> int:
        needed = await asyncio.to_thread(self._needed, channel)
        if not needed:
            return 0
        fetched = await self._puller.fetch(channel, needed, attempts=1)
        if not fetched:
            return 0
        return await asyncio.to_thread(self._store, channel, needed, fetched)

    def _needed(self, channel: PeerChannel) -> list[NeededData]:
        ledger = channel.ledger
        records = list_missing(ledger.reader(), self._batch)
        by_block: dict[int, list[MissingPrivateData]] = {}
        for record in records:
            by_block.setdefault(record.block_num, []).append(record)
        needed: list[NeededData] = []
        for block_num, missing in by_block.items():
            block = ledger.block_store.block_by_number(block_num)
            txs = {tx.tx_num: tx for tx in iter_committed_txs(block)}
            for record in missing:
                config = collection_config(ledger, record.ns, record.coll)
                tx = txs.get(record.tx_num)
                if config is None or tx is None:
                    continue
                for ns_rwset in tx.rwset.ns_rwset:
                    if ns_rwset.namespace != record.ns:
                        continue
                    for hashed in ns_rwset.collection_hashed_rwset:
                        if hashed.collection_name == record.coll:
                            needed.append(
                                NeededData(
                                    tx.tx_id,
                                    block_num,
                                    record.tx_num,
                                    record.ns,
                                    record.coll,
                                    hashed.pvt_rwset_hash,
                                    member_mspids(config),
                                    hashed.hashed_rwset,
                                    _purged_since(ledger.reader(), record, hashed),
                                )
                            )
        return needed

    def _store(
        self,
        channel: PeerChannel,
        needed: Sequence[NeededData],
        fetched: dict[tuple[int, int, str, str], bytes],
    ) -> int:
        conn = self._conns.get(channel.channel_id)
        if conn is None:
            conn = open_channel_db(channel.folder / DATABASE_FILE)
            self._conns[channel.channel_id] = conn
        filled = 0
        for item in needed:
            rwset = fetched.get(item.key)
            if rwset is not None and resolve_missing(conn, *item.key, rwset):
                filled += 1
        if filled:
            _LOG.info(
                "reconciled private data channel=%s records=%d",
                channel.channel_id,
                filled,
            )
        return filled

    def _close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()


def _purged_since(
    conn: sqlite3.Connection,
    record: MissingPrivateData,
    hashed: rwset_pb2.CollectionHashedReadWriteSet,
) -> frozenset[bytes]:
    """The key hashes the write set writes that this peer has purged since."""
    writes = kv_rwset_pb2.HashedRWSet.FromString(hashed.hashed_rwset).hashed_writes
    version = Version(record.block_num, record.tx_num)
    keys = [write.key_hash for write in writes]
    return frozenset(purged_after(conn, record.ns, record.coll, version, keys))
