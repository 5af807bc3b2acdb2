"""A real two-hospital network under a steady submit load, with peers to SIGKILL.

`start_network` starts, through the medledger pytest plugin's `NetworkFactory`, the
two-hospital consortium of tests/e2e/ehr/consortium.yaml (one solo orderer, one peer
and one gateway per hospital, TLS on) with the private data probe chaincode of
tests/e2e/privdata_cc and one collection `AB` of both hospitals that any one of them
may endorse alone (requiredPeerCount 0, so writes go on while the other peer is down).

`Nodes` SIGKILLs a node of the network's state.json and starts it again from the same
command line and config (the record is replaced, so `network down` stops the new
process). `Load` submits public and private writes through one gateway, endorsed by
one hospital, and records every commit status. `deliver` reads blocks from a peer over
its Deliver service (blocking until they are committed), `LedgerSnapshot` reads a
peer's channel database read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from common.blockstore import BlockStore
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from common.tls import TlsFiles, channel_credentials
from gateway.client import ClientError, Contract, Gateway
from network.cryptogen import crypto_layout
from network.launcher import ProcessSpec, spawn, stop, wait_ready
from network.netstate import NetworkState, NodeRecord
from network.testing import MedledgerNetwork, NetworkFactory, NetworkRequest
from peer.ledger.history import KeyModification, get_history_for_key
from peer.ledger.ledger import BLOCKS_DIR, DATABASE_FILE
from protos.common import common_pb2
from protos.peer import events_pb2

A, B = "HospitalAMSP", "HospitalBMSP"
USERS = {A: "dr-lee", B: "dr-garcia"}
PEERS = {A: "peer0.hospital-a.example.com", B: "peer0.hospital-b.example.com"}
GATEWAYS = {A: "gateway0.hospital-a.example.com", B: "gateway0.hospital-b.example.com"}
CHAINCODE = "pvtprobe"
COLLECTION = "AB"
TIMEOUT_S = 60.0
E2E = Path(__file__).resolve().parents[1] / "e2e"

_DELIVER = "/protos.Deliver/Deliver"


def network_request() -> NetworkRequest:
    """Two hospitals, the probe chaincode (any hospital endorses), collection AB."""
    collection = {
        "name": COLLECTION,
        "policy": f"OR('{A}.member', '{B}.member')",
        "required_peer_count": 0,
        "max_peer_count": 1,
        "member_only_read": True,
        "member_only_write": True,
    }
    return NetworkRequest(
        chaincode=E2E / "privdata_cc",
        name=CHAINCODE,
        spec=E2E / "ehr" / "consortium.yaml",
        endorsement_policy=f"OR('{A}.peer', '{B}.peer')",
        collections=(tuple(sorted(collection.items())),),
    )


def start_network(factory: NetworkFactory) -> MedledgerNetwork:
    return factory.get(network_request())


# ---------------------------------------------------------------- processes


class Nodes:
    """SIGKILL and restart the nodes recorded in a network's state.json."""

    def __init__(self, network: MedledgerNetwork) -> None:
        self._workdir = network.workdir

    def record(self, name: str) -> NodeRecord:
        return NetworkState.load(self._workdir).nodes[name]

    async def kill(self, name: str) -> None:
        """SIGKILL the node's process group and wait until it is gone."""
        record = self.record(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        # Every node was started by this process (bring_up, restart), so it is our
        # child: waitpid returns once it is gone, or fails if it was already reaped.
        async with asyncio.timeout(TIMEOUT_S):
            with contextlib.suppress(ChildProcessError):
                await asyncio.to_thread(os.waitpid, record.pid, 0)

    async def stop(self, name: str) -> None:
        """Stop the node as `network down` does (SIGTERM, SIGKILL after the grace)."""
        await stop(self.record(name))

    async def restart(self, name: str) -> NodeRecord:
        """Start the node again from its recorded command line; wait for READY."""
        state = NetworkState.load(self._workdir)
        old = state.nodes[name]
        spec = ProcessSpec(
            name=old.name,
            kind=old.kind,
            argv=old.argv,
            log=Path(old.log),
            config=None if old.config is None else Path(old.config),
        )
        record, offset = spawn(spec)
        record = await wait_ready(spec, record, offset, timeout_s=TIMEOUT_S)
        state = NetworkState.load(self._workdir)
        state.nodes[name] = record
        state.save()
        return record


# ---------------------------------------------------------------- deliver


@dataclass(frozen=True)
class PeerClient:
    """What a test needs to read blocks from one hospital's peer over TLS."""

    address: str
    tls_ca: Path
    signer: SigningIdentity
    channel: str

    @classmethod
    def of(cls, network: MedledgerNetwork, mspid: str) -> PeerClient:
        record = Nodes(network).record(PEERS[mspid])
        organization = network.spec.organization(mspid)
        layout = crypto_layout(network.spec, network.workdir / "crypto")
        address = record.addresses.get("grpc", organization.peers[0].address)
        return cls(
            address=address,
            tls_ca=layout.organization(mspid).tlsca_cert,
            signer=load_signing_identity(
                network.msp_dir(mspid, USERS[mspid]), mspid=mspid
            ),
            channel=network.channel,
        )

    def seek(self, start: SeekPosition, stop: SeekPosition) -> bytes:
        return create_seek_envelope(
            channel_id=self.channel,
            start=start,
            stop=stop,
            behavior=BLOCK_UNTIL_READY,
            creator=self.signer.serialized,
            signer=self.signer.sign,
        ).SerializeToString()


async def deliver(
    peer: PeerClient, start: SeekPosition, stop: SeekPosition
) -> AsyncIterator[common_pb2.Block]:
    """The peer's committed blocks from `start` to `stop`, each once it is committed."""
    credentials = channel_credentials(TlsFiles(root_cas=(peer.tls_ca,)))
    async with grpc.aio.secure_channel(peer.address, credentials) as channel:
        call: Any = channel.stream_stream(  # type: ignore[call-arg]
            _DELIVER, response_deserializer=events_pb2.DeliverResponse.FromString
        )(timeout=TIMEOUT_S)
        await call.write(peer.seek(start, stop))
        await call.done_writing()
        async for response in call:
            kind = response.WhichOneof("Type")
            if kind == "block":
                yield response.block
            elif kind == "status":
                if response.status != common_pb2.SUCCESS:
                    raise AssertionError(f"{peer.address} Deliver: {response.status}")
                return


async def block_at(peer: PeerClient, number: int) -> common_pb2.Block:
    """Block `number` from the peer once it has committed it (Deliver blocks until)."""
    position = SeekPosition.specified(number)
    async for block in deliver(peer, position, position):
        return block
    raise AssertionError(f"{peer.address} delivered no block {number}")


async def newest_block(peer: PeerClient) -> common_pb2.Block:
    async for block in deliver(peer, SeekPosition.newest(), SeekPosition.newest()):
        return block
    raise AssertionError(f"{peer.address} delivered no newest block")


async def all_blocks(peer: PeerClient, height: int) -> list[common_pb2.Block]:
    start, stop = SeekPosition.specified(0), SeekPosition.specified(height - 1)
    return [block async for block in deliver(peer, start, stop)]


def tx_codes(blocks: list[common_pb2.Block]) -> dict[str, int]:
    """Every transaction id in `blocks` with its (last) validation code."""
    return {tx_id: codes[-1] for tx_id, codes in tx_occurrences(blocks).items()}


def tx_occurrences(blocks: list[common_pb2.Block]) -> dict[str, list[int]]:
    """Every transaction id in `blocks` with the validation code of each occurrence."""
    found: dict[str, list[int]] = {}
    for block in blocks:
        flags = block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER]
        for index, data in enumerate(block.data.data):
            envelope = common_pb2.Envelope.FromString(data)
            payload = common_pb2.Payload.FromString(envelope.payload)
            header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            if header.tx_id:
                found.setdefault(header.tx_id, []).append(flags[index])
    return found


# ---------------------------------------------------------------- load


@dataclass
class LoadRecord:
    """Every commit status the client saw, and every client-side error."""

    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)
    """tx id -> (validation code, block number)"""
    errors: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def committed(self) -> int:
        return len(self.statuses)

    @property
    def top_block(self) -> int:
        return max((block for _, block in self.statuses.values()), default=0)

    async def wait_for_commits(self, count: int, *, timeout_s: float) -> None:
        """Return once `count` statuses have been recorded in all."""
        async with asyncio.timeout(timeout_s):
            while self.committed < count:
                self.changed.clear()
                await self.changed.wait()


class Load:
    """Workers submitting through one gateway, alternating public and private writes.

    Every seventh private write is a purge of the key (with its stored versions).
    """

    def __init__(
        self, contract: Contract, mspid: str, *, workers: int = 2, keys: int = 6
    ) -> None:
        self._contract = contract
        self._mspid = mspid
        self._workers = workers
        self._keys = keys
        self._stopping = False
        self._counter = 0
        self.record = LoadRecord()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        """Let every worker finish its transaction in flight, then stop."""
        self._stopping = True
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*self._tasks)

    async def _work(self) -> None:
        while not self._stopping:
            number = self._counter
            self._counter += 1
            await self._one(number)

    async def _one(self, number: int) -> None:
        key = f"{'pvt' if number % 2 else 'pub'}-{number // 2 % self._keys}"
        value = f"value-{number}"
        try:
            if number % 14 == 13:
                submitted = await self._contract.submit_async(
                    "Purge", COLLECTION, key, endorsing_orgs=[self._mspid]
                )
            elif number % 2:
                submitted = await self._contract.submit_async(
                    "PutPrivate",
                    COLLECTION,
                    key,
                    transient={"value": value.encode()},
                    endorsing_orgs=[self._mspid],
                )
            else:
                submitted = await self._contract.submit_async(
                    "PutPublic", key, value, endorsing_orgs=[self._mspid]
                )
            status = await submitted.status()
        except ClientError as error:
            self.record.errors.append(f"{key}: {error}")
            return
        self.record.statuses[status.transaction_id] = (
            status.code,
            status.block_number,
        )
        self.record.changed.set()


@contextlib.asynccontextmanager
async def running_load(
    network: MedledgerNetwork, mspid: str
) -> AsyncIterator[tuple[Gateway, Load]]:
    async with network.gateway(mspid, USERS[mspid]) as gateway:
        contract = gateway.network(network.channel).contract(network.chaincode)
        load = Load(contract, mspid)
        load.start()
        try:
            yield gateway, load
        finally:
            await load.stop()


# ---------------------------------------------------------------- ledgers


def stored_blocks(network: MedledgerNetwork, mspid: str) -> list[bytes]:
    """The bytes of every block in the peer's block store (the peer is stopped)."""
    folder = channel_folder(network, mspid) / BLOCKS_DIR
    with BlockStore.open(folder) as store:
        return [store.block_bytes(number) for number in range(store.height)]


def channel_folder(network: MedledgerNetwork, mspid: str) -> Path:
    folder = network.workdir / "nodes" / PEERS[mspid] / "data" / "channels"
    return folder / network.channel


def channel_database(network: MedledgerNetwork, mspid: str) -> Path:
    return channel_folder(network, mspid) / DATABASE_FILE


@contextlib.contextmanager
def read_only(path: Path) -> Any:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True)
class LedgerSnapshot:
    """A peer's public, hashed private and plaintext private state, as rows."""

    state: list[tuple[Any, ...]]
    hashed: list[tuple[Any, ...]]
    private: list[tuple[Any, ...]]
    missing_eligible: list[tuple[Any, ...]]

    @classmethod
    def read(cls, path: Path) -> LedgerSnapshot:
        with read_only(path) as conn, conn:
            return cls(
                state=_rows(
                    conn,
                    "SELECT ns, key, block_num, tx_num, val, metadata FROM state "
                    "ORDER BY ns, key",
                ),
                hashed=_rows(
                    conn,
                    "SELECT ns, coll, key_hash, block_num, tx_num, value_hash, "
                    "metadata FROM pvt_hashed ORDER BY ns, coll, key_hash",
                ),
                private=_rows(
                    conn,
                    "SELECT ns, coll, key, key_hash, block_num, tx_num, val, metadata "
                    "FROM pvt_state ORDER BY ns, coll, key",
                ),
                missing_eligible=_rows(
                    conn,
                    "SELECT block_num, tx_num, ns, coll FROM pvt_missing "
                    "WHERE eligible = 1 ORDER BY block_num, tx_num",
                ),
            )

    def private_rows(self, ns: str, collection: str) -> list[tuple[Any, ...]]:
        """The plaintext private state of one collection (implicit ones differ)."""
        return [row for row in self.private if (row[0], row[1]) == (ns, collection)]

    def private_matches_hashes(self, ns: str, collection: str) -> list[str]:
        """Problems: a plaintext whose key or value hash is not the hashed state's."""
        hashes = {
            (row[0], row[1], bytes(row[2])): (row[3], row[4], bytes(row[5]))
            for row in self.hashed
        }
        problems = []
        for row_ns, coll, key, key_hash, block, tx, value, _ in self.private:
            if (row_ns, coll) != (ns, collection):
                continue
            if hashlib.sha256(key.encode()).digest() != bytes(key_hash):
                problems.append(f"{key}: key hash")
            expected = hashes.get((row_ns, coll, bytes(key_hash)))
            found = (block, tx, hashlib.sha256(bytes(value)).digest())
            if expected != found:
                problems.append(f"{key}: {found} is not the hashed state {expected}")
        return problems


def key_history(path: Path, ns: str, key: str) -> list[KeyModification]:
    with read_only(path) as conn, conn:
        return list(get_history_for_key(conn, ns, key))


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sql)]


async def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str
) -> None:
    """Poll `condition` (a database read) until true; fail after `timeout_s`.

    Only for what the peer announces by no event (reconciliation of private data).
    """
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - nothing to wait on but the file
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout_s:.0f}s waiting for {what}"
        ) from None
