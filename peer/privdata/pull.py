"""Pull at commit: fetch the private data this peer lacks before a block is committed.

`PullingTarget` stands between the block puller and a `PeerChannel`. Before the
channel commits a block it finds the block's valid transactions (validating a copy
against the committed state, only when the block writes to collections at all) and,
for each collection write set of a collection this peer's organisation is a member
of, looks for plaintext with the block's `pvt_rwset_hash` in the transient store.
What is missing is pulled from the known peers of the collection's member
organisations (`PrivateDataPuller`: up to `pull_attempts` rounds over the peers, each
call with `pull_timeout`), checked against the hash and persisted in the transient
store before the block goes to the ledger: the ledger's replay contract. Whatever is
still missing the ledger records as missing, for `peer.privdata.reconcile`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from common.msp import SigningIdentity
from common.protoutil import with_transaction_filter
from peer.channels import PeerChannel
from peer.committer import LedgerStateView
from peer.config import GossipSettings, KnownPeer
from peer.errors import LedgerError
from peer.ledger import transient
from peer.ledger.committed_txs import VALID, iter_committed_txs
from peer.ledger.pvtrwset import (
    CollectionRwSet,
    build_tx_pvt_rwset,
    key_hash,
    pvt_rwset_hash,
    value_hash,
)
from peer.privdata.directory import PeerDirectory
from peer.privdata.members import collection_config, member_mspids
from peer.privdata.messages import WithConfig, sign_pull
from peer.validator import SerialVerifier, ValidationContext, evaluate_block
from protos.common import common_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.medledger.peer import privdata_pb2, privdata_pb2_grpc

__all__ = ["NeededData", "PrivateDataPuller", "PullingTarget", "needed_private_data"]

_LOG = logging.getLogger(__name__)
_BACKOFF_S = 0.1


@dataclass(frozen=True, slots=True)
class NeededData:
    """One collection write set to fetch, with the members and hash it must match."""

    tx_id: str
    block_num: int
    tx_num: int
    ns: str
    coll: str
    expected_hash: bytes
    members: frozenset[str]
    hashed_rwset: bytes = b""
    purged: frozenset[bytes] = frozenset()
    """Key hashes of this write set purged since on this peer (reconciliation): a
    member that purged them too serves the write set without them."""

    def matches(self, rwset: bytes) -> bool:
        """Whether a fetched write set is this one, or it less keys purged since."""
        if pvt_rwset_hash(rwset) == self.expected_hash:
            return True
        return bool(self.purged) and _purged_subset(self, rwset)

    @property
    def key(self) -> tuple[int, int, str, str]:
        return (self.block_num, self.tx_num, self.ns, self.coll)

    def digest(self) -> privdata_pb2.PrivateDataDigest:
        return privdata_pb2.PrivateDataDigest(
            tx_id=self.tx_id,
            block_num=self.block_num,
            tx_num=self.tx_num,
            namespace=self.ns,
            collection=self.coll,
        )


class PrivateDataPuller:
    """Fetches collection write sets from member peers, checked against their hashes."""

    def __init__(
        self,
        *,
        signer: SigningIdentity,
        directory: PeerDirectory,
        settings: GossipSettings,
    ) -> None:
        self._signer = signer
        self._directory = directory
        self._timeout_s = settings.pull_timeout_s
        self._attempts = settings.pull_attempts

    async def fetch(
        self,
        channel: PeerChannel,
        needed: Sequence[NeededData],
        *,
        attempts: int | None = None,
    ) -> dict[tuple[int, int, str, str], bytes]:
        """The write sets found, by (block, tx, ns, coll); the rest stays missing.

        A write set some peer served but that does not match (e.g. with keys it has
        purged since) is not asked for again in later rounds: it stays missing for
        reconciliation instead of holding up the commit.
        """
        remaining = {item.key: item for item in needed}
        found: dict[tuple[int, int, str, str], bytes] = {}
        rounds = self._attempts if attempts is None else attempts
        for attempt in range(rounds):
            if attempt:
                await asyncio.sleep(_BACKOFF_S * 2 ** (attempt - 1))
            mspids = frozenset().union(*(i.members for i in remaining.values()))
            refused: set[tuple[int, int, str, str]] = set()
            for peer in self._directory.members(channel.config, mspids):
                asked = [i for i in remaining.values() if peer.mspid in i.members]
                if not asked:
                    continue
                answered = await self._ask(channel, peer, asked, refused)
                for key, rwset in answered.items():
                    found[key] = rwset
                    remaining.pop(key, None)
                if not remaining:
                    return found
            for key in refused:
                remaining.pop(key, None)
            if not remaining:
                return found
        return found

    async def _ask(
        self,
        channel: PeerChannel,
        peer: KnownPeer,
        asked: Sequence[NeededData],
        refused: set[tuple[int, int, str, str]],
    ) -> dict[tuple[int, int, str, str], bytes]:
        """What `peer` serves of `asked` that matches; adds the rest it served to
        `refused`."""
        request = sign_pull(
            self._signer,
            channel_id=channel.channel_id,
            digests=[item.digest() for item in asked],
        )
        stub = privdata_pb2_grpc.PrivateDataServiceStub(
            self._directory.channel(channel.config, peer)
        )
        try:
            response = await stub.Pull(request, timeout=self._timeout_s)
        except grpc.RpcError as error:
            _LOG.info(
                "private data pull failed channel=%s peer=%s: %s",
                channel.channel_id,
                peer.address,
                error,
            )
            return {}
        wanted = {item.key: item for item in asked}
        result: dict[tuple[int, int, str, str], bytes] = {}
        for element in response.elements:
            d = element.digest
            item = wanted.get((d.block_num, d.tx_num, d.namespace, d.collection))
            if item is None or not item.matches(element.rwset):
                _LOG.warning(
                    "private data from peer=%s does not match block=%d tx=%d %s/%s",
                    peer.address,
                    d.block_num,
                    d.tx_num,
                    d.namespace,
                    d.collection,
                )
                if item is not None:
                    refused.add(item.key)
                continue
            result[item.key] = element.rwset
        return result


def _purged_subset(item: NeededData, rwset: bytes) -> bool:
    """Each plaintext write matches a hashed write, and each hashed write left out
    is of a key purged since: what a member that applied the purges serves."""
    try:
        plain = kv_rwset_pb2.KVRWSet.FromString(rwset)
        hashed = kv_rwset_pb2.HashedRWSet.FromString(item.hashed_rwset)
    except DecodeError:
        return False
    expected = {
        (w.key_hash, w.is_delete): b"" if w.is_delete else w.value_hash
        for w in hashed.hashed_writes
    }
    kept: set[tuple[bytes, bool]] = set()
    for write in plain.writes:
        entry = (key_hash(write.key), write.is_delete)
        digest = b"" if write.is_delete else value_hash(write.value)
        if expected.get(entry) != digest:
            return False
        kept.add(entry)
    return all(entry in kept or entry[0] in item.purged for entry in expected)


def needed_private_data(
    channel: PeerChannel, block: common_pb2.Block, mspid: str
) -> list[NeededData]:
    """Member collection write sets of the block's valid txs without plaintext on hand.

    The block is validated (on a copy) only when some transaction would need data.
    Blocks (validation, database reads): call it from a worker thread.
    """
    valid = [VALID] * len(block.data.data)
    try:
        candidates = _needed(channel, block, valid, mspid)
    except LedgerError:
        candidates = [NeededData("", 0, 0, "", "", b"", frozenset())]
    if not candidates:
        return []
    context = ValidationContext(
        config=channel.config,
        ledger=LedgerStateView(channel.ledger),
        verify=SerialVerifier(),
    )
    codes = evaluate_block(block, context=context).codes
    return _needed(channel, block, codes, mspid)


def _needed(
    channel: PeerChannel, block: common_pb2.Block, codes: Sequence[int], mspid: str
) -> list[NeededData]:
    ledger = channel.ledger
    reader = ledger.reader()
    members: dict[tuple[str, str], frozenset[str]] = {}
    needed: list[NeededData] = []
    for tx in iter_committed_txs(with_transaction_filter(block, codes)):
        on_hand: set[tuple[str, str, bytes]] | None = None
        for ns_rwset in tx.rwset.ns_rwset:
            ns = ns_rwset.namespace
            for hashed in ns_rwset.collection_hashed_rwset:
                coll = hashed.collection_name
                if not hashed.pvt_rwset_hash:
                    continue  # hashed reads only: no plaintext to fetch
                if (ns, coll) not in members:
                    config = collection_config(ledger, ns, coll)
                    members[(ns, coll)] = (
                        frozenset() if config is None else member_mspids(config)
                    )
                if mspid not in members[(ns, coll)]:
                    continue
                if on_hand is None:
                    on_hand = _on_hand(reader, tx.tx_id)
                if (ns, coll, hashed.pvt_rwset_hash) in on_hand:
                    continue
                needed.append(
                    NeededData(
                        tx.tx_id,
                        tx.block_num,
                        tx.tx_num,
                        ns,
                        coll,
                        hashed.pvt_rwset_hash,
                        members[(ns, coll)],
                    )
                )
    return needed


def store_fetched(
    channel: PeerChannel,
    needed: Iterable[NeededData],
    fetched: Mapping[tuple[int, int, str, str], bytes],
) -> None:
    """Persist fetched write sets in the transient store, one entry per tx (worker thread)."""
    by_tx: dict[str, list[CollectionRwSet]] = {}
    block_num = 0
    for item in needed:
        rwset = fetched.get(item.key)
        if rwset is not None:
            by_tx.setdefault(item.tx_id, []).append(
                CollectionRwSet(item.ns, item.coll, rwset)
            )
            block_num = item.block_num
    for tx_id, collections in by_tx.items():
        message = WithConfig(endorsed_at=block_num)
        message.pvt_rwset.CopyFrom(build_tx_pvt_rwset(collections))
        channel.store_private_data(
            tx_id, block_num, message.SerializeToString(deterministic=True)
        )


class PullingTarget:
    """A `PullTarget` that fetches missing private data before each commit."""

    def __init__(
        self, channel: PeerChannel, *, puller: PrivateDataPuller, mspid: str
    ) -> None:
        self._channel = channel
        self._puller = puller
        self._mspid = mspid

    @property
    def channel_id(self) -> str:
        return self._channel.channel_id

    def height(self) -> int:
        return self._channel.height()

    async def commit(self, block: common_pb2.Block) -> Sequence[int]:
        channel = self._channel
        try:
            needed = await asyncio.to_thread(
                needed_private_data, channel, block, self._mspid
            )
        except Exception as error:  # the commit itself reports a bad block
            _LOG.info(
                "no private data pull for block=%d: %s", block.header.number, error
            )
            needed = []
        if needed:
            fetched = await self._puller.fetch(channel, needed)
            await asyncio.to_thread(store_fetched, channel, needed, fetched)
            if len(fetched) < len(needed):
                _LOG.warning(
                    "private data still missing channel=%s block=%d count=%d",
                    channel.channel_id,
                    block.header.number,
                    len(needed) - len(fetched),
                )
        return await channel.commit(block)


def _on_hand(reader: sqlite3.Connection, tx_id: str) -> set[tuple[str, str, bytes]]:
    return {
        (ns.namespace, coll.collection_name, pvt_rwset_hash(coll.rwset))
        for entry in transient.get_by_tx_id(reader, tx_id)
        for ns in entry.pvt_rwset.pvt_rwset.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    }
