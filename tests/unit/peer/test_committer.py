"""Unit tests for peer.committer: orderer signatures first, then validate and commit.

Each test opens real `ChannelLedger`s in a temporary folder, joins the hospital
example's channel from its genesis block and commits the `records` definition through a
`_lifecycle` transaction in block 1. Blocks are signed by orderer0 of the health
commission unless a test signs them otherwise. The agreement test feeds two peers the
same seeded random workload (its seed is printed) and compares everything they store.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.channelconfig import keys
from common.configtx import compute_update, create_config_tx, validate_config_update
from common.msp import SigningIdentity
from common.protoutil import block_header_hash, transaction_filter
from network.bench_peer import (
    BenchNetwork,
    definition_transaction,
    endorser_transaction,
    orderer_block,
)
from network.config_update import (
    config_update_envelope,
    create_config_update_tx,
)
from peer.committer import Committer, ParallelVerifier
from peer.errors import BlockVerificationError
from peer.ledger.ledger import ChannelLedger
from peer.ledger.statedb import Version
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from peer.simulator import RwSetBuilder
from peer.validator import SignatureCheck, verify_serially
from protos.common import common_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.peer import transaction_pb2

CHANNEL = "medical-records"
CHAINCODE = "records"
VALID = transaction_pb2.VALID


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> BenchNetwork:
    return BenchNetwork.create(tmp_path_factory.mktemp("committer"))


@dataclass
class Peer:
    """One peer's ledger and committer, plus the chain it has seen (for new blocks)."""

    network: BenchNetwork
    ledger: ChannelLedger
    committer: Committer
    previous_hash: bytes = b""
    next_number: int = 1
    blocks: list[common_pb2.Block] = field(default_factory=list)

    def block(
        self, *envelopes: bytes, orderer: SigningIdentity | None = None
    ) -> common_pb2.Block:
        """The next block of the chain this peer follows, signed by `orderer`."""
        block = orderer_block(
            self.next_number,
            previous_hash=self.previous_hash,
            envelopes=envelopes,
            orderer=orderer or self.network.orderer,
        )
        self.previous_hash = block_header_hash(block.header)
        self.next_number += 1
        self.blocks.append(block)
        return block

    def commit(self, block: common_pb2.Block) -> tuple[int, ...]:
        return self.committer.commit_block(block)


def open_peer(
    network: BenchNetwork, folder: Path, *, verifier: ParallelVerifier | None = None
) -> Peer:
    ledger = ChannelLedger.open(folder, channel_id=CHANNEL)
    committer = (
        Committer.join(ledger, network.genesis, verifier=verifier)
        if verifier is not None
        else Committer.join(ledger, network.genesis)
    )
    return Peer(
        network,
        ledger,
        committer,
        previous_hash=block_header_hash(network.genesis.header),
    )


def define_records(network: BenchNetwork) -> bytes:
    definition = ChaincodeDefinition(
        name=CHAINCODE,
        version="1.0",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )
    return definition_transaction(
        definition,
        channel_id=CHANNEL,
        creator=network.identity("HospitalAMSP", "Admin"),
        endorsers=network.peers(2),
    )


@pytest.fixture
def peer(network: BenchNetwork, tmp_path: Path) -> Iterator[Peer]:
    peer = open_peer(network, tmp_path / "peer")
    assert peer.commit(peer.block(define_records(network))) == (VALID,)
    yield peer
    peer.ledger.close()


def write_tx(
    network: BenchNetwork,
    *,
    reads: dict[str, Version | None] | None = None,
    writes: dict[str, bytes] | None = None,
    endorsers: int = 2,
) -> bytes:
    builder = RwSetBuilder()
    for key, version in (reads or {}).items():
        builder.add_read(CHAINCODE, key, version)
    for key, value in (writes or {}).items():
        builder.add_write(CHAINCODE, key, value)
    return endorser_transaction(
        channel_id=CHANNEL,
        chaincode=CHAINCODE,
        version="1.0",
        rwset=builder.build()[0],
        creator=network.identity("HospitalAMSP", "dr-lee"),
        endorsers=network.peers(endorsers),
    )


# --- committing --------------------------------------------------------------------------


def test_a_block_is_validated_filtered_and_committed(
    network: BenchNetwork, peer: Peer
) -> None:
    """Goal: codes returned, stored in the filter, valid writes applied, invalid not."""
    block = peer.block(
        write_tx(network, writes={"a": b"1"}),
        write_tx(network, writes={"b": b"2"}, endorsers=1),
    )
    codes = peer.commit(block)
    assert codes == (VALID, transaction_pb2.ENDORSEMENT_POLICY_FAILURE)
    stored = peer.ledger.block_store.block_by_number(2)
    assert transaction_filter(stored) == codes
    value = peer.ledger.get_state(CHAINCODE, "a")
    assert value is not None
    assert (value.value, value.version) == (b"1", Version(2, 0))
    assert peer.ledger.get_state(CHAINCODE, "b") is None


def test_the_definition_is_read_back_from_committed_state(peer: Peer) -> None:
    definition = peer.committer.config  # the committer stays on the genesis config
    assert definition.channel_id == CHANNEL
    from peer.committer import LedgerStateView

    committed = LedgerStateView(peer.ledger).chaincode_definition(CHAINCODE)
    assert committed is not None
    assert (committed.version, committed.sequence) == ("1.0", 1)


@pytest.mark.parametrize(
    "damage", ["signature", "signer", "unsigned", "number", "previous hash"]
)
def test_a_block_that_fails_verification_is_refused(
    network: BenchNetwork, peer: Peer, damage: str
) -> None:
    """Goal: nothing of a bad block is written. Method: damage one thing of a good block."""
    block = peer.block(write_tx(network, writes={"a": b"1"}))
    if damage == "signature":
        metadata = common_pb2.Metadata.FromString(
            block.metadata.metadata[common_pb2.SIGNATURES]
        )
        metadata.signatures[0].signature = (
            metadata.signatures[0].signature[:-2] + b"\0\0"
        )
        block.metadata.metadata[common_pb2.SIGNATURES] = metadata.SerializeToString()
    elif damage == "signer":
        block = orderer_block(
            block.header.number,
            previous_hash=block.header.previous_hash,
            envelopes=list(block.data.data),
            orderer=network.identity("HospitalAMSP", "peer0"),
        )
    elif damage == "unsigned":
        block.metadata.metadata[common_pb2.SIGNATURES] = b""
    elif damage == "number":
        block.header.number += 1
        block = orderer_block(
            block.header.number,
            previous_hash=block.header.previous_hash,
            envelopes=list(block.data.data),
            orderer=network.orderer,
        )
    else:
        block = orderer_block(
            block.header.number,
            previous_hash=b"\x01" * 32,
            envelopes=list(block.data.data),
            orderer=network.orderer,
        )
    with pytest.raises(BlockVerificationError) as raised:
        peer.commit(block)
    assert raised.value.block_number == block.header.number
    assert peer.ledger.height == 2
    assert peer.ledger.get_state(CHAINCODE, "a") is None


def test_a_config_block_becomes_the_channel_config(
    network: BenchNetwork, peer: Peer
) -> None:
    """Goal: a valid config update is committed and validates the next block."""
    current = peer.committer.config
    updated = current.config
    orderer = updated.channel_group.groups[keys.ORDERER]
    batch = orderer_pb2.BatchSize.FromString(orderer.values[keys.BATCH_SIZE].value)
    batch.max_message_count = 10
    orderer.values[keys.BATCH_SIZE].value = batch.SerializeToString()
    admin = network.identity("HealthCommissionMSP", "Admin")
    update = compute_update(CHANNEL, current.config, updated)
    request = create_config_update_tx(
        CHANNEL, config_update_envelope(update, signers=[admin]), admin
    )
    config_envelope = validate_config_update(current, request)
    config_tx = create_config_tx(config_envelope, network.orderer, channel_id=CHANNEL)
    assert peer.commit(peer.block(config_tx.SerializeToString())) == (VALID,)
    assert peer.committer.config.batch_size.max_message_count == 10
    assert peer.commit(peer.block(write_tx(network, writes={"c": b"3"}))) == (VALID,)


def test_a_reopened_ledger_resumes_with_its_config(
    network: BenchNetwork, peer: Peer, tmp_path: Path
) -> None:
    peer.commit(peer.block(write_tx(network, writes={"a": b"1"})))
    peer.ledger.close()
    with ChannelLedger.open(tmp_path / "peer", channel_id=CHANNEL) as ledger:
        resumed = Committer.resume(ledger)
        assert resumed.config.channel_id == CHANNEL
        assert resumed.config.sequence == 0
        block = peer.block(write_tx(network, reads={"a": Version(2, 0)}))
        assert resumed.commit_block(block) == (VALID,)
    peer.ledger = ChannelLedger.open(tmp_path / "peer", channel_id=CHANNEL)


def test_joining_needs_an_empty_ledger_and_block_zero(
    network: BenchNetwork, peer: Peer
) -> None:
    with pytest.raises(BlockVerificationError, match="empty ledger"):
        Committer.join(peer.ledger, network.genesis)


# --- parallel verification ----------------------------------------------------------------


def test_the_process_pool_gives_the_serial_verdicts(network: BenchNetwork) -> None:
    """Goal: the pool is a drop-in for serial checks. Method: good and bad signatures,
    in chunks across two spawned workers, compared with the in-process verdicts."""
    signers = network.peers(3)
    checks = []
    for index in range(40):
        signer = signers[index % 3]
        message = f"message {index}".encode()
        signature = signer.sign(message)
        if index % 7 == 0:
            message += b"!"
        checks.append(
            SignatureCheck(signer.identity.certificate.der, message, signature)
        )
    with ParallelVerifier(workers=2, min_batch=8) as verifier:
        assert verifier.submit(checks)() == verify_serially(checks)
        assert verifier.submit(checks[:3])() == verify_serially(checks[:3])
    assert verify_serially(checks).count(False) == 6


# --- two peers agree -----------------------------------------------------------------------


class Workload:
    """Random transactions over a few keys, simulated against one peer's ledger."""

    def __init__(self, network: BenchNetwork, rng: random.Random) -> None:
        self.network = network
        self.rng = rng
        self.keys = [f"key{index:02d}" for index in range(12)]
        self.sent: list[bytes] = []

    def transaction(self, ledger: ChannelLedger) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.05 and self.sent:
            return rng.choice(self.sent)  # a duplicate tx id
        builder = RwSetBuilder()
        for key in rng.sample(self.keys, rng.randint(0, 2)):
            current = ledger.get_state(CHAINCODE, key)
            version = None if current is None else current.version
            if rng.random() < 0.1 and version is not None:
                version = Version(version.block_num - 1, version.tx_num)
            builder.add_read(CHAINCODE, key, version)
        if rng.random() < 0.3:
            self._range_query(builder, ledger)
        for key in rng.sample(self.keys, rng.randint(0, 2)):
            value = b"" if rng.random() < 0.2 else f"v{rng.random()}".encode()
            builder.add_write(CHAINCODE, key, value)
        envelope = endorser_transaction(
            channel_id=CHANNEL,
            chaincode=CHAINCODE,
            version="1.0" if rng.random() > 0.05 else "0.1",
            rwset=builder.build()[0],
            creator=self.network.identity("HospitalBMSP", "dr-garcia"),
            endorsers=self.network.peers(1 if kind > 0.92 else 2),
        )
        self.sent.append(envelope)
        return envelope

    def _range_query(self, builder: RwSetBuilder, ledger: ChannelLedger) -> None:
        start, end = sorted(self.rng.sample(self.keys, 2))
        info = kv_rwset_pb2.RangeQueryInfo(
            start_key=start, end_key=end, itr_exhausted=True
        )
        for kv in ledger.get_state_range(CHAINCODE, start, end):
            info.raw_reads.kv_reads.add(
                key=kv.key,
                version=kv_rwset_pb2.Version(
                    block_num=kv.version.block_num, tx_num=kv.version.tx_num
                ),
            )
        builder.add_range_query(CHAINCODE, info)


def copy(block: common_pb2.Block) -> common_pb2.Block:
    """The block as another peer receives it: decoded from its own bytes."""
    return common_pb2.Block.FromString(block.SerializeToString())


def state_dump(ledger: ChannelLedger) -> list[tuple[str, str, bytes, Version]]:
    return [
        (ns, kv.key, kv.value, kv.version)
        for ns in ("_lifecycle", CHAINCODE)
        for kv in ledger.get_state_range(ns, "", "")
    ]


def test_two_peers_fed_the_same_blocks_agree(
    network: BenchNetwork, tmp_path: Path, seed: int
) -> None:
    """Goal: validation is deterministic. Method: a seeded random workload (conflicts,
    phantoms, stale versions, duplicates, missing endorsements) committed by a serial
    peer and by a peer verifying in a process pool; codes, state, blocks must match."""
    rng = random.Random(seed)
    first = open_peer(network, tmp_path / "first")
    with ParallelVerifier(workers=1, min_batch=1) as verifier:
        second = open_peer(network, tmp_path / "second", verifier=verifier)
        workload = Workload(network, rng)
        definition = first.block(define_records(network))
        second.commit(copy(definition))
        first.commit(definition)
        all_codes: set[int] = set()
        for _ in range(6):
            envelopes = [
                workload.transaction(first.ledger) for _ in range(rng.randint(5, 25))
            ]
            block = first.block(*envelopes)
            delivered = copy(block)
            codes = first.commit(block)
            assert second.commit(delivered) == codes
            all_codes.update(codes)
        assert state_dump(first.ledger) == state_dump(second.ledger)
        assert first.ledger.blockchain_info() == second.ledger.blockchain_info()
        for number in range(first.ledger.height):
            assert first.ledger.block_store.block_bytes(number) == (
                second.ledger.block_store.block_bytes(number)
            )
        second.ledger.close()
    first.ledger.close()
    assert VALID in all_codes
    assert len(all_codes) >= 3, f"seed {seed} exercised only {all_codes}"
