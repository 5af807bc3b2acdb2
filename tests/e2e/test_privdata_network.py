"""Private data acceptance on a real three-hospital network (issue 7).

Method: one network for the module (module-scoped fixture over the medledger pytest
plugin's `NetworkFactory`): hospitals A, B and C with one peer and one gateway each,
TLS on, a solo orderer, and the `privdata_cc` chaincode (any one hospital's peer
endorses) with the collections of `privdata_cc/collections.json`: AB (A and B,
memberOnlyRead and memberOnlyWrite, requiredPeerCount 1, so A's endorsement pushes to
B over TLS), ABttl (the same with blockToLive 3) and ABpull (pushed to nobody, so B
pulls it at commit). Every call names the hospital
whose peer endorses it; a member peer's state is read through its own gateway once it
has delivered the block in question, and its files are read under its node folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.client import CommitError, Contract, GatewayError
from gateway.client._transaction import Status
from network.testing import MedledgerNetwork, NetworkFactory, NetworkRequest
from peer.ledger.committed_txs import iter_committed_txs
from peer.ledger.pvtpurge import PurgeRecord, list_purges
from peer.ledger.pvtstore import list_missing
from protos.common import common_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer.transaction_pb2 import TxValidationCode

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
USERS = {A: "dr-lee", B: "dr-garcia", C: "dr-svensson"}
NODES = {
    A: "peer0.hospital-a.example.com",
    B: "peer0.hospital-b.example.com",
    C: "peer0.hospital-c.example.com",
}
CHAINCODE = "pvtprobe"
TIMEOUT_S = 30.0
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedledgerNetwork]:
    factory = NetworkFactory(lambda name: tmp_path_factory.mktemp(f"privdata-{name}"))
    marker = pytest.mark.medledger(
        chaincode="privdata_cc",
        name=CHAINCODE,
        spec="privdata_cc/consortium.yaml",
        endorsement_policy=f"OR('{A}.peer', '{B}.peer', '{C}.peer')",
        collections="privdata_cc/collections.json",
    ).mark
    try:
        yield factory.get(NetworkRequest.from_marker(marker, HERE))
    finally:
        factory.close()


# ---------------------------------------------------------------- 1. member-only rules


async def test_a_non_member_is_refused_but_reads_the_hash(
    network: MedledgerNetwork,
) -> None:
    """C's clinician, endorsing on C's peer, may neither read nor write AB (clear
    messages naming the collection) but gets the SHA-256 of A's value; C's peer
    records the write set as missing data it is not eligible for, never as eligible."""
    secret = b"MARKER-readable-by-A-and-B-only-41c7"
    written = await submit(
        network, A, "PutPrivate", "AB", "r1", transient={"value": secret}
    )
    # The submit returned once A's peer committed; C's and B's may be a block behind.
    await network.wait_for_block(written.block_number, [B, C])
    async with network.contract(C, USERS[C]) as contract:
        with pytest.raises(GatewayError) as refused_read:
            await contract.evaluate("GetPrivate", "AB", "r1", endorsing_orgs=[C])
        with pytest.raises(GatewayError) as refused_write:
            await contract.submit(
                "PutPrivate",
                "AB",
                "r2",
                transient={"value": b"from C"},
                endorsing_orgs=[C],
            )
        digest = await contract.evaluate(
            "GetPrivateHash", "AB", "r1", endorsing_orgs=[C]
        )
    assert "may not read private data of chaincode pvtprobe, collection AB" in str(
        refused_read.value
    )
    assert "may not write private data of chaincode pvtprobe, collection AB" in str(
        refused_write.value
    )
    assert digest.decode() == hashlib.sha256(secret).hexdigest()
    assert await read(network, B, "GetPrivate", "AB", "r1") == secret
    with contextlib.closing(sqlite3.connect(channel_database(network, C))) as conn:
        assert list_missing(conn, 100) == []
        not_eligible = list_missing(conn, 100, eligible=False)
    assert (written.block_number, CHAINCODE, "AB") in {
        (m.block_num, m.ns, m.coll) for m in not_eligible
    }


async def test_a_member_pulls_what_was_not_pushed_over_tls(
    network: MedledgerNetwork,
) -> None:
    """ABpull pushes to nobody (maxPeerCount 0): B's peer pulls the write set from A's
    peer over TLS before it commits the block."""
    assert network.state.tls
    value = b"MARKER-pulled-by-B-62aa0f"
    written = await submit(
        network, A, "PutPrivate", "ABpull", "q1", transient={"value": value}
    )
    await network.wait_for_block(written.block_number, [B])
    assert await read(network, B, "GetPrivate", "ABpull", "q1") == value


# ---------------------------------------------------------------- 2. purge


async def test_purge_removes_plaintext_and_history_on_every_member(
    network: MedledgerNetwork,
) -> None:
    """Two versions of a key, then PurgePrivateData: on A and B the chaincode reads
    nothing and no file holds either version; the block still carries the hash of the
    last one; every peer holds a purge record (the members' name the plaintext and
    the two stored versions removed) and each member peer logged the purge."""
    first, last = b"MARKER-purge-v1-0d9e27", b"MARKER-purge-v2-a3f518"
    await submit(network, A, "PutPrivate", "AB", "p1", transient={"value": first})
    written = await submit(
        network, A, "PutPrivate", "AB", "p1", transient={"value": last}
    )
    await network.wait_for_block(written.block_number, [B])
    assert await read(network, B, "GetPrivate", "AB", "p1") == last

    purged = await submit(network, A, "Purge", "AB", "p1")
    key_hash = hashlib.sha256(b"p1").digest()
    for mspid in (A, B, C):
        await network.wait_for_block(purged.block_number, [mspid])
    for mspid in (A, B):
        assert await read(network, mspid, "GetPrivate", "AB", "p1") == b""
        assert holding(network, mspid, first) == []
        assert holding(network, mspid, last) == []
        assert _purge_line(network, mspid, key_hash, purged.block_number)
    expected = {A: (True, 2), B: (True, 2), C: (False, 0)}
    for mspid, (plaintext_removed, versions_removed) in expected.items():
        records = purge_records(network, mspid, "AB", key_hash)
        assert [
            (r.block_num, r.private_state_removed, r.store_entries_purged)
            for r in records
        ] == [(purged.block_number, plaintext_removed, versions_removed)], mspid
    value_hashes = await block_value_hashes(network, A, written.block_number, "AB")
    assert hashlib.sha256(last).digest() in value_hashes


# ---------------------------------------------------------------- 3. blockToLive


async def test_block_to_live_three_expires_on_every_member(
    network: MedledgerNetwork,
) -> None:
    """A value of ABttl written in block n is readable on A and B through block n + 3
    and gone from both once block n + 4 commits."""
    value = b"MARKER-ttl-5be01c"
    written = await submit(
        network, A, "PutPrivate", "ABttl", "t1", transient={"value": value}
    )
    for step in range(3):
        await submit(network, A, "PutPublic", "tick", str(step))
    last_alive = written.block_number + 3
    for mspid in (A, B):
        await network.wait_for_block(last_alive, [mspid])
        assert await read(network, mspid, "GetPrivate", "ABttl", "t1") == value
    expired = await submit(network, A, "PutPublic", "tick", "3")
    assert expired.block_number == last_alive + 1
    for mspid in (A, B):
        await network.wait_for_block(expired.block_number, [mspid])
        assert await read(network, mspid, "GetPrivate", "ABttl", "t1") == b""


# ---------------------------------------------------------------- 4. key-level policy


async def test_key_level_policy_of_hospital_a_decides_validity(
    network: MedledgerNetwork,
) -> None:
    """Once a key's VALIDATION_PARAMETER names A's peers only, a write endorsed by B
    alone commits invalid (ENDORSEMENT_POLICY_FAILURE) and one endorsed by A is valid;
    for a public key and for a key of collection AB."""
    await submit(network, A, "PutPublic", "k1", "v0")
    await submit(network, A, "SetKeyPolicy", "k1", A)
    await submit(network, A, "PutPrivate", "AB", "pk1", transient={"value": b"v0"})
    await submit(network, A, "SetPrivateKeyPolicy", "AB", "pk1", A)

    by_b = await submit(network, B, "PutPublic", "k1", "from B", check=False)
    private_by_b = await submit(
        network, B, "PutPrivate", "AB", "pk1", transient={"value": b"B"}, check=False
    )
    assert by_b.code == TxValidationCode.ENDORSEMENT_POLICY_FAILURE
    assert private_by_b.code == TxValidationCode.ENDORSEMENT_POLICY_FAILURE

    await submit(network, A, "PutPublic", "k1", "from A")
    await submit(network, A, "PutPrivate", "AB", "pk1", transient={"value": b"A"})
    assert await read(network, A, "GetPublic", "k1") == b"from A"
    assert await read(network, A, "GetPrivate", "AB", "pk1") == b"A"


# ---------------------------------------------------------------- helpers


async def submit(
    network: MedledgerNetwork,
    mspid: str,
    transaction: str,
    *args: str,
    transient: dict[str, bytes] | None = None,
    check: bool = True,
) -> Status:
    """Endorse on `mspid`'s peer alone, submit, and wait for the commit status."""
    async with network.contract(mspid, USERS[mspid]) as contract:
        submitted = await contract.submit_async(
            transaction, *args, transient=transient, endorsing_orgs=[mspid]
        )
        status = await submitted.status()
    if check and not status.successful:
        raise CommitError(status.transaction_id, status.code)
    return status


async def read(
    network: MedledgerNetwork, mspid: str, transaction: str, *args: str
) -> bytes:
    """Evaluate on `mspid`'s peer as its clinician."""
    contract: Contract
    async with network.contract(mspid, USERS[mspid]) as contract:
        return await contract.evaluate(transaction, *args, endorsing_orgs=[mspid])


async def delivered_block(
    network: MedledgerNetwork, mspid: str, number: int
) -> common_pb2.Block:
    """Block `number` as `mspid`'s peer delivers it, once it has committed it."""
    async with (
        network.gateway(mspid, USERS[mspid]) as gateway,
        asyncio.timeout(TIMEOUT_S),
    ):
        events = gateway.network(network.channel).block_events(start_block=number)
        async for block in events:
            assert block.header.number == number
            return block
    raise AssertionError(f"the block events of {mspid} ended before block {number}")


async def block_value_hashes(
    network: MedledgerNetwork, mspid: str, number: int, collection: str
) -> set[bytes]:
    """The value hashes block `number` (from `mspid`'s peer) writes to `collection`."""
    block = await delivered_block(network, mspid, number)
    found: set[bytes] = set()
    for tx in iter_committed_txs(block):
        for ns_rwset in tx.rwset.ns_rwset:
            for hashed in ns_rwset.collection_hashed_rwset:
                if hashed.collection_name != collection:
                    continue
                rwset = kv_rwset_pb2.HashedRWSet.FromString(hashed.hashed_rwset)
                found.update(write.value_hash for write in rwset.hashed_writes)
    return found


def node_folder(network: MedledgerNetwork, mspid: str) -> Path:
    return network.workdir / "nodes" / NODES[mspid]


def holding(network: MedledgerNetwork, mspid: str, marker: bytes) -> list[Path]:
    """The files under the peer's node folder whose bytes contain `marker`."""
    return [
        path
        for path in sorted(node_folder(network, mspid).rglob("*"))
        if path.is_file() and marker in path.read_bytes()
    ]


def channel_database(network: MedledgerNetwork, mspid: str) -> Path:
    """The peer's channel database (read by the test as an auditor would)."""
    folder = node_folder(network, mspid) / "data" / "channels" / network.channel
    return folder / "ledger.sqlite"


def purge_records(
    network: MedledgerNetwork, mspid: str, collection: str, key_hash: bytes
) -> list[PurgeRecord]:
    """The purge records in the peer's channel database (another reader, as an auditor)."""
    with contextlib.closing(sqlite3.connect(channel_database(network, mspid))) as conn:
        return list_purges(conn, CHAINCODE, collection, key_hash=key_hash)


def _purge_line(
    network: MedledgerNetwork, mspid: str, key_hash: bytes, block: int
) -> bool:
    log = network.workdir / "logs" / f"{NODES[mspid]}.log"
    expected = (
        f"privdata purge completed channel={network.channel} ns={CHAINCODE} "
        f"collection=AB key_hash={key_hash.hex()} block={block} "
    )
    return expected in log.read_text()
