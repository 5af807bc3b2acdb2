"""Benchmark of the peer's validate+commit path, and the transaction builders it uses.

`run_commit_bench` makes the hospital example's crypto material and channel, joins a
fresh `ChannelLedger`, commits a chaincode definition through a `_lifecycle`
transaction, then times `Committer.commit_block` over blocks of endorser transactions
(one read and one write each, endorsed by `endorsements` peers, signed blocks) and
returns a JSON-able report, for `medledger bench peer` to print.

The builders (`endorser_transaction`, `definition_transaction`, `orderer_block`) make
real signed transactions and blocks from signing identities, exactly as a client, its
endorsing peers and an orderer would; tests use them too.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    ChaincodeId,
    ChaincodeResponse,
    Timestamp,
    block_header_hash,
    channel_header_bytes,
    create_proposal_response,
    create_transaction_envelope,
    header_bytes,
    new_block,
    new_nonce,
    sign_block,
    sign_envelope,
    signature_header_bytes,
)
from network.cryptogen import CryptoLayout, generate_crypto
from network.genesis import build_channel_config, build_genesis_block
from network.spec import load_spec
from peer.committer import Committer, ParallelVerifier
from peer.ledger.ledger import ChannelLedger
from peer.ledger.statedb import Version
from peer.lifecycle import (
    LIFECYCLE_CHAINCODE_VERSION,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    default_endorsement_policy,
    definition_writes,
)
from peer.simulator import RwSetBuilder
from protos.common import common_pb2
from protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2

__all__ = [
    "EXAMPLE_SPEC",
    "BenchNetwork",
    "definition_transaction",
    "endorser_transaction",
    "orderer_block",
    "run_commit_bench",
]

EXAMPLE_SPEC = Path(__file__).parent / "examples" / "hospital-consortium.yaml"
CHANNEL = "medical-records"
CHAINCODE = "records"
HOSPITALS = ("HospitalAMSP", "HospitalBMSP", "HospitalCMSP")
ORDERER_ORG = "HealthCommissionMSP"


def endorser_transaction(
    *,
    channel_id: str,
    chaincode: str,
    version: str,
    rwset: bytes,
    creator: SigningIdentity,
    endorsers: Sequence[SigningIdentity],
    args: Sequence[bytes] = (b"invoke",),
    nonce: bytes | None = None,
    tx_id: str | None = None,
    timestamp: Timestamp | None = None,
) -> bytes:
    """A signed ENDORSER_TRANSACTION envelope (marshaled) carrying `rwset`.

    Each endorser signs the same ProposalResponsePayload; `tx_id` overrides the id
    derived from nonce and creator (to build an invalid one).
    """
    nonce = new_nonce() if nonce is None else nonce
    tx_id = (
        hashlib.sha256(nonce + creator.serialized).hexdigest()
        if tx_id is None
        else tx_id
    )
    extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
    ).SerializeToString()
    channel_header = channel_header_bytes(
        header_type=common_pb2.ENDORSER_TRANSACTION,
        channel_id=channel_id,
        tx_id=tx_id,
        timestamp=Timestamp.now() if timestamp is None else timestamp,
        extension=extension,
    )
    signature_header = signature_header_bytes(creator=creator.serialized, nonce=nonce)
    payload = _proposal_payload(chaincode, args)
    proposal = proposal_pb2.Proposal(
        header=header_bytes(
            channel_header=channel_header, signature_header=signature_header
        ),
        payload=payload,
    ).SerializeToString()
    proposal_hash = hashlib.sha256(channel_header + signature_header + payload).digest()
    responses = [
        create_proposal_response(
            proposal_hash=proposal_hash,
            results=rwset,
            response=ChaincodeResponse(status=200),
            chaincode_id=ChaincodeId(name=chaincode, version=version),
            endorser=endorser.serialized,
            signer=endorser.sign,
        )
        for endorser in endorsers
    ]
    transaction = create_transaction_envelope(proposal=proposal, responses=responses)
    return sign_envelope(transaction, creator.sign).SerializeToString()


def definition_transaction(
    definition: ChaincodeDefinition,
    *,
    channel_id: str,
    creator: SigningIdentity,
    endorsers: Sequence[SigningIdentity],
) -> bytes:
    """A `_lifecycle` transaction that commits `definition` (a first definition)."""
    builder = RwSetBuilder()
    for key, value in definition_writes(definition):
        builder.add_write(LIFECYCLE_NAMESPACE, key, value)
    rwset, _ = builder.build()
    return endorser_transaction(
        channel_id=channel_id,
        chaincode=LIFECYCLE_NAMESPACE,
        version=LIFECYCLE_CHAINCODE_VERSION,
        rwset=rwset,
        creator=creator,
        endorsers=endorsers,
        args=(b"CommitChaincodeDefinition",),
    )


def orderer_block(
    number: int,
    *,
    previous_hash: bytes,
    envelopes: Sequence[bytes],
    orderer: SigningIdentity,
    last_config: int = 0,
) -> common_pb2.Block:
    """A block of `envelopes`, signed by `orderer` as an ordering node signs it."""
    block = new_block(number, previous_hash=previous_hash, envelopes=envelopes)
    return sign_block(
        block,
        signer=orderer.sign,
        creator=orderer.serialized,
        last_config_index=last_config,
    )


@dataclass(frozen=True)
class BenchNetwork:
    """The hospital example's identities and genesis block, made in `folder`."""

    crypto: CryptoLayout
    genesis: common_pb2.Block

    @classmethod
    def create(cls, folder: Path) -> BenchNetwork:
        spec = load_spec(EXAMPLE_SPEC)
        crypto = generate_crypto(spec, folder / "crypto")
        config = build_channel_config(spec, CHANNEL, crypto)
        return cls(crypto, build_genesis_block(config, CHANNEL))

    def identity(self, mspid: str, name: str) -> SigningIdentity:
        """A node's or user's signing identity (`peer0`, `orderer0`, `Admin`, `dr-lee`)."""
        organization = self.crypto.organization(mspid)
        for layout in (*organization.nodes, *organization.users):
            if layout.name.split(".")[0].split("@")[0] == name:
                return load_signing_identity(layout.msp_dir, mspid=mspid)
        raise KeyError(f"{mspid} has no {name}")

    def peers(self, count: int) -> list[SigningIdentity]:
        """peer0 of the first `count` hospitals."""
        return [self.identity(mspid, "peer0") for mspid in HOSPITALS[:count]]

    @property
    def orderer(self) -> SigningIdentity:
        return self.identity(ORDERER_ORG, "orderer0")


def run_commit_bench(
    *,
    blocks: int = 8,
    txs_per_block: int = 500,
    endorsements: int = 2,
    workers: int = 2,
    min_parallel_batch: int = 128,
    folder: Path | None = None,
) -> dict[str, object]:
    """Time validate+commit of `blocks` blocks; a JSON-able report.

    `workers` = 0 verifies signatures in this process only. `min_parallel_batch`
    is the peer's own setting (`ParallelVerifier`): with 256, the validator's
    last partial batch of each block (about 200 signatures) was verified in
    this process while the workers sat idle.
    """
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        root = Path(scratch)
        network = BenchNetwork.create(root)
        prepared = _prepare_blocks(network, blocks, txs_per_block, endorsements)
        verifier = (
            ParallelVerifier(workers=workers, min_batch=min_parallel_batch)
            if workers
            else None
        )
        try:
            if verifier is not None:
                verifier.start()
            cpu_started = time.process_time()
            timings, codes = _commit_all(network, root / "ledger", prepared, verifier)
            cpu_s = time.process_time() - cpu_started
        finally:
            if verifier is not None:
                verifier.close()
    total_txs = blocks * txs_per_block
    total_s = sum(timings)
    return {
        "benchmark": "peer validate+commit",
        "blocks": blocks,
        "txs_per_block": txs_per_block,
        "endorsements_per_tx": endorsements,
        "signature_workers": workers,
        "valid_txs": sum(1 for code in codes if code == transaction_pb2.VALID),
        "total_s": round(total_s, 4),
        "tx_per_s": round(total_txs / total_s, 1),
        "block_ms_median": round(statistics.median(timings) * 1000, 2),
        "block_ms_max": round(max(timings) * 1000, 2),
        "main_process_cpu_us_per_tx": round(cpu_s / total_txs * 1e6, 1),
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
    }


def _prepare_blocks(
    network: BenchNetwork, blocks: int, txs_per_block: int, endorsements: int
) -> list[common_pb2.Block]:
    """Block 1 defines the chaincode; blocks 2.. hold the measured transactions."""
    client = network.identity("HospitalAMSP", "dr-lee")
    endorsers = network.peers(endorsements)
    definition = ChaincodeDefinition(
        name=CHAINCODE,
        version="1.0",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )
    envelopes = [
        [
            definition_transaction(
                definition,
                channel_id=CHANNEL,
                creator=network.identity("HospitalAMSP", "Admin"),
                endorsers=network.peers(2),
            )
        ]
    ]
    for block_index in range(blocks):
        envelopes.append(
            [
                _read_write_tx(client, endorsers, key_index, block_index)
                for key_index in range(txs_per_block)
            ]
        )
    signed = []
    previous = block_header_hash(network.genesis.header)
    for number, block_envelopes in enumerate(envelopes, start=1):
        block = orderer_block(
            number,
            previous_hash=previous,
            envelopes=block_envelopes,
            orderer=network.orderer,
        )
        previous = block_header_hash(block.header)
        signed.append(block)
    return signed


def _read_write_tx(
    client: SigningIdentity,
    endorsers: Sequence[SigningIdentity],
    key_index: int,
    block_index: int,
) -> bytes:
    """Reads the key its predecessor in the previous block wrote, writes it again."""
    key = f"asset-{key_index:05d}"
    builder = RwSetBuilder()
    previous = Version(block_index + 1, key_index) if block_index else None
    builder.add_read(CHAINCODE, key, previous)
    builder.add_write(CHAINCODE, key, f"value-{block_index}-{key_index}".encode() * 5)
    rwset, _ = builder.build()
    return endorser_transaction(
        channel_id=CHANNEL,
        chaincode=CHAINCODE,
        version="1.0",
        rwset=rwset,
        creator=client,
        endorsers=endorsers,
    )


def _commit_all(
    network: BenchNetwork,
    ledger_dir: Path,
    blocks: list[common_pb2.Block],
    verifier: ParallelVerifier | None,
) -> tuple[list[float], list[int]]:
    timings: list[float] = []
    codes: list[int] = []
    with ChannelLedger.open(ledger_dir, channel_id=CHANNEL) as ledger:
        committer = (
            Committer.join(ledger, network.genesis, verifier=verifier)
            if verifier is not None
            else Committer.join(ledger, network.genesis)
        )
        committer.commit_block(blocks[0])
        for block in blocks[1:]:
            started = time.perf_counter()
            codes.extend(committer.commit_block(block))
            timings.append(time.perf_counter() - started)
    return timings, codes


def _proposal_payload(chaincode: str, args: Sequence[bytes]) -> bytes:
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.NODE,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
            input=chaincode_pb2.ChaincodeInput(args=list(args)),
        )
    )
    return proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString()
    ).SerializeToString()
