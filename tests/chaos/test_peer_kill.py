"""A peer SIGKILLed at any instant restarts consistent (process level).

Method: a real network (tests/chaos/peer_network.py: solo orderer, hospitals A and B
with a peer and a gateway each, TLS on, the private data probe chaincode with
collection AB of both hospitals). Two workers submit through A's gateway, endorsed by
A alone: public writes and private writes to AB, every seventh private one a purge
of the key (so B, catching up, misses write sets that A has purged since and must
reconcile them without the purged keys). At seeded random moments (counted in
commits the client sees, so some kills land while B is still catching up) peer B is
SIGKILLed, a few more transactions commit without it, and it is started again from
the same command line and config; B's Deliver service then hands out the newest block
the client has seen committed, which it only does once it has committed it.

At the end (load stopped, B caught up with A's height): both peers deliver the same
blocks; their public state (key, value, version), hashed private state and plaintext
private state of AB are equal once B has no eligible missing private data left (it
pulls or reconciles from A); every plaintext matches its hash; every transaction the
client saw committed has the same validation code in both ledgers; the history of
every public key of the chaincode is the same on both; then both peers are stopped and
their block stores hold byte-identical blocks (both are started again).

Reconciliation: B misses private writes it can neither be pushed (down) nor pull at
commit (A's peer is down while B catches up from the orderer); once A is back, B
reconciles them and the same checks hold. Gateway: A's gateway is SIGKILLed as a
worker starts a seeded phase (endorse, submit, commit status); the client
(tests/chaos/gateway_load.py) resumes with the same signed transaction, and every
transaction is in A's ledger VALID exactly once (a resubmitted one may be ordered
twice, the second time DUPLICATE_TXID).

Seeds are printed; PEER_KILL_SEED=<seed> replays one. The `slow` variants kill B 20
times and A's gateway 15 times.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from network.testing import MedledgerNetwork, NetworkFactory
from protos.peer.transaction_pb2 import TxValidationCode
from tests.chaos.gateway_load import PHASES, GatewayLink, ResumingLoad
from tests.chaos.peer_network import (
    CHAINCODE,
    COLLECTION,
    GATEWAYS,
    PEERS,
    TIMEOUT_S,
    USERS,
    A,
    B,
    LedgerSnapshot,
    Load,
    LoadRecord,
    Nodes,
    PeerClient,
    all_blocks,
    block_at,
    channel_database,
    key_history,
    newest_block,
    running_load,
    start_network,
    stored_blocks,
    tx_codes,
    tx_occurrences,
    wait_until,
)

pytestmark = pytest.mark.e2e

RECONCILE_TIMEOUT_S = 45.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedledgerNetwork]:
    factory = NetworkFactory(lambda name: tmp_path_factory.mktemp(f"peer-kill-{name}"))
    try:
        yield start_network(factory)
    finally:
        factory.close()


def seeded(label: str) -> random.Random:
    seed = int(os.environ.get("PEER_KILL_SEED") or random.randrange(2**32))
    print(f"{label}: seed {seed} (PEER_KILL_SEED={seed} to replay)")
    return random.Random(seed)


async def test_peer_b_killed_three_times_restarts_consistent(
    network: MedledgerNetwork,
) -> None:
    await kill_and_check(network, seeded("peer kill x3"), kills=3)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_peer_b_killed_twenty_times_restarts_consistent(
    network: MedledgerNetwork,
) -> None:
    await kill_and_check(network, seeded("peer kill x20"), kills=20)


async def test_peer_b_reconciles_what_it_could_not_pull_after_a_restart(
    network: MedledgerNetwork,
) -> None:
    """B is killed, A commits private writes B never got pushed, A's peer is killed
    too and B restarts: B catches up from the orderer but cannot pull, so it records
    the write sets as missing. Once A's peer is back, B reconciles them and every
    ledger check holds."""
    nodes = Nodes(network)
    record = LoadRecord()
    await nodes.kill(PEERS[B])
    async with network.contract(A, USERS[A]) as contract:
        for number in range(4):
            submitted = await contract.submit_async(
                "PutPrivate",
                COLLECTION,
                f"rec-{number}",
                transient={"value": f"reconciled-{number}".encode()},
                endorsing_orgs=[A],
            )
            status = await submitted.status()
            record.statuses[status.transaction_id] = (status.code, status.block_number)
    await nodes.kill(PEERS[A])
    try:
        await nodes.restart(PEERS[B])
        await block_at(PeerClient.of(network, B), record.top_block)
        missing = LedgerSnapshot.read(channel_database(network, B)).missing_eligible
    finally:
        await nodes.restart(PEERS[A])
    assert len(missing) >= 4
    peer_a, peer_b = PeerClient.of(network, A), PeerClient.of(network, B)
    height = (await newest_block(peer_a)).header.number + 1
    await block_at(peer_b, height - 1)
    await check_consistent(network, record, peer_a, peer_b, height)


async def test_gateway_a_killed_mid_load_commits_each_transaction_once(
    network: MedledgerNetwork,
) -> None:
    """A's gateway SIGKILLed three times under the load, as a worker starts a seeded
    phase (endorse, submit, commit status), and restarted: the client resumes each
    phase with the same transaction, every transaction ends with a status, VALID, and
    A's ledger holds it VALID exactly once."""
    await kill_gateway_and_check(network, seeded("gateway kill x3"), kills=3)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_gateway_a_killed_fifteen_times_commits_each_transaction_once(
    network: MedledgerNetwork,
) -> None:
    await kill_gateway_and_check(network, seeded("gateway kill x15"), kills=15)


async def kill_gateway_and_check(
    network: MedledgerNetwork, rng: random.Random, *, kills: int
) -> None:
    nodes = Nodes(network)
    link = GatewayLink(network, A)
    load = ResumingLoad(link, network.chaincode, A)
    record = load.record
    load.start()
    try:
        await record.wait_for_commits(4, timeout_s=TIMEOUT_S)
        for _ in range(kills):
            await record.wait_for_commits(
                record.committed + rng.randint(0, 3), timeout_s=TIMEOUT_S
            )
            await record.wait_for_phase(rng.choice(PHASES), timeout_s=TIMEOUT_S)
            link.up.clear()
            await nodes.kill(GATEWAYS[A])
            await nodes.restart(GATEWAYS[A])
            link.up.set()
            await record.wait_for_commits(record.committed + 2, timeout_s=TIMEOUT_S)
    finally:
        await load.stop()
        await link.close()
    print(
        f"gateway kills: {record.committed} commits, {record.retries} retried phases, "
        f"{len(record.resubmitted)} transactions submitted again"
    )
    assert record.errors == []
    peer_a = PeerClient.of(network, A)
    height = (await newest_block(peer_a)).header.number + 1
    occurrences = tx_occurrences(await all_blocks(peer_a, height))
    valid = TxValidationCode.VALID
    twice = [t for t in record.statuses if len(occurrences.get(t, [])) > 1]
    print(f"{len(twice)} transactions ordered twice: {[occurrences[t] for t in twice]}")
    assert {
        tx_id: (code, occurrences.get(tx_id, []).count(valid))
        for tx_id, (code, _) in record.statuses.items()
    } == dict.fromkeys(record.statuses, (valid, 1))


async def kill_and_check(
    network: MedledgerNetwork, rng: random.Random, *, kills: int
) -> None:
    nodes = Nodes(network)
    peer_a = PeerClient.of(network, A)
    async with running_load(network, A) as (_gateway, load):
        await load.record.wait_for_commits(4, timeout_s=TIMEOUT_S)
        for _ in range(kills):
            await kill_restart_catch_up(network, nodes, load, rng)
    height = (await newest_block(peer_a)).header.number + 1
    peer_b = PeerClient.of(network, B)
    await block_at(peer_b, height - 1)
    record = load.record
    print(
        f"{kills} kills: {record.committed} commits seen, height {height}, "
        f"{len(record.errors)} client errors {record.errors[:3]}"
    )
    await check_consistent(network, load.record, peer_a, peer_b, height)


async def kill_restart_catch_up(
    network: MedledgerNetwork, nodes: Nodes, load: Load, rng: random.Random
) -> None:
    """Kill B after 0-5 more commits, let 1-6 commit without it, restart, catch up.

    One restart in three is killed again as soon as it is READY (while it pulls the
    blocks it missed) and restarted once more.
    """
    await load.record.wait_for_commits(
        load.record.committed + rng.randint(0, 5), timeout_s=TIMEOUT_S
    )
    await nodes.kill(PEERS[B])
    await load.record.wait_for_commits(
        load.record.committed + rng.randint(1, 6), timeout_s=TIMEOUT_S
    )
    await nodes.restart(PEERS[B])
    if rng.random() < 1 / 3:
        await nodes.kill(PEERS[B])
        await nodes.restart(PEERS[B])
    await block_at(PeerClient.of(network, B), load.record.top_block)


async def check_consistent(
    network: MedledgerNetwork,
    record: LoadRecord,
    peer_a: PeerClient,
    peer_b: PeerClient,
    height: int,
) -> None:
    blocks_a = await all_blocks(peer_a, height)
    blocks_b = await all_blocks(peer_b, height)
    assert [block.header.number for block in blocks_b] == list(range(height))
    for block_a, block_b in zip(blocks_a, blocks_b, strict=True):
        assert block_a.SerializeToString(deterministic=True) == (
            block_b.SerializeToString(deterministic=True)
        ), f"block {block_a.header.number} differs"

    codes_a, codes_b = tx_codes(blocks_a), tx_codes(blocks_b)
    seen = {tx_id: code for tx_id, (code, _) in record.statuses.items()}
    assert sum(code == TxValidationCode.VALID for code in seen.values()) >= 4
    assert {tx_id: codes_a.get(tx_id) for tx_id in seen} == seen
    assert {tx_id: codes_b.get(tx_id) for tx_id in seen} == seen

    database_a, database_b = (channel_database(network, m) for m in (A, B))
    missing = LedgerSnapshot.read(database_b).missing_eligible
    print(f"B misses {len(missing)} private write sets once caught up")
    await wait_until(
        lambda: not LedgerSnapshot.read(database_b).missing_eligible,
        timeout_s=RECONCILE_TIMEOUT_S,
        what="B to reconcile its missing private data",
    )
    snapshot_a = LedgerSnapshot.read(database_a)
    snapshot_b = LedgerSnapshot.read(database_b)
    assert snapshot_b.state == snapshot_a.state
    assert snapshot_b.hashed == snapshot_a.hashed
    shared_a = snapshot_a.private_rows(CHAINCODE, COLLECTION)
    assert shared_a, "the load wrote no private data"
    assert snapshot_b.private_rows(CHAINCODE, COLLECTION) == shared_a
    assert snapshot_a.private_matches_hashes(CHAINCODE, COLLECTION) == []
    assert snapshot_b.private_matches_hashes(CHAINCODE, COLLECTION) == []

    for ns, key, *_ in snapshot_a.state:
        if ns == CHAINCODE:
            history_a = key_history(database_a, CHAINCODE, key)
            assert history_a, key
            assert key_history(database_b, CHAINCODE, key) == history_a, key

    await check_block_files(network)


async def check_block_files(network: MedledgerNetwork) -> None:
    """Both peers stopped, their block stores hold byte-identical blocks; restart.

    Clients first, as `network down` and `up` order it: the gateways are stopped
    before the peers and started after them, so they dial the restarted peers afresh
    (a gateway's channel to a peer that went away may stay in reconnect backoff).
    """
    nodes = Nodes(network)
    order = [GATEWAYS[A], GATEWAYS[B], PEERS[A], PEERS[B]]
    for name in order:
        await nodes.stop(name)
    try:
        stored_a = stored_blocks(network, A)
        stored_b = stored_blocks(network, B)
        assert len(stored_b) == len(stored_a)
        for number, (block_a, block_b) in enumerate(
            zip(stored_a, stored_b, strict=True)
        ):
            assert block_a == block_b, f"stored block {number} differs"
    finally:
        for name in reversed(order):
            await nodes.restart(name)
