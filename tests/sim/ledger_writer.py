"""A channel-ledger writer for the crash test, and the seeded workload it commits.

Run as a script (`python -m tests.sim.ledger_writer FOLDER SEED`), it opens the
ledger in FOLDER (replaying what a crash left behind), then commits the workload's
blocks from the current height on, printing each block number once
`commit_block` has returned. With MEDLEDGER_LEDGER_FAILPOINT="STEP:BLOCK" (a
`CommitStep` value and a block number) it SIGKILLs itself the first time the
ledger reports that step for that block or a later one.

The workload is a pure function of (seed, block number), so a restarted writer
continues the same chain, and the test can rebuild the same ledger from scratch:
a few transactions per block writing, deleting and setting metadata on public
keys; some with private write sets in a member collection (BTL 3; plaintext
handed to the commit or not) and a non-member one; purges; invalid and
undecodable transactions; configuration transactions.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from network.bench_ledger import endorser_envelope, validated_block
from peer.ledger.ledger import ChannelLedger, CommitObserver, CommitStep
from protos.common import common_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

CHANNEL_ID = "crashchannel"
NAMESPACE = "cc"
MEMBER_COLLECTION = "coll1"
OTHER_COLLECTION = "coll2"
MEMBER_BLOCK_TO_LIVE = 3
FAILPOINT_ENV = "MEDLEDGER_LEDGER_FAILPOINT"
MAX_BLOCKS = 100_000

VALID = 0
MVCC_READ_CONFLICT = 11
BAD_PAYLOAD = 2


class Collections:
    """This peer is a member of `coll1` (block-to-live 3) and not of `coll2`."""

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        return coll == MEMBER_COLLECTION

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        return MEMBER_BLOCK_TO_LIVE if coll == MEMBER_COLLECTION else 0


@dataclass(frozen=True, slots=True)
class PrivateWrite:
    """A plaintext write to a collection; value None deletes, `purge` purges."""

    key: str
    value: bytes | None
    purge: bool = False


@dataclass
class WorkloadBlock:
    """One block's content: envelopes, validation codes and the private data on hand."""

    envelopes: list[bytes] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    pvt_data: dict[int, bytes] = field(default_factory=dict)

    def block(self, number: int, previous_hash: bytes) -> common_pb2.Block:
        return validated_block(
            number,
            previous_hash=previous_hash,
            envelopes=self.envelopes,
            codes=self.codes,
        )


def workload(seed: int, number: int) -> WorkloadBlock:
    """The transactions of block `number` (a pure function of seed and number)."""
    rng = random.Random(f"{seed}/{number}")
    content = WorkloadBlock()
    for tx_num in range(rng.randint(1, 6)):
        tx_id = hashlib.sha256(f"{seed}/{number}/{tx_num}".encode()).hexdigest()
        roll = rng.random()
        if roll < 0.05:
            content.envelopes.append(b"\x0a\x03bad")
            content.codes.append(BAD_PAYLOAD)
            continue
        if roll < 0.08:
            content.envelopes.append(config_envelope(tx_id))
            content.codes.append(VALID)
            continue
        envelope, pvt_rwset = _endorser_tx(rng, tx_id, number)
        content.envelopes.append(envelope)
        content.codes.append(VALID if rng.random() < 0.8 else MVCC_READ_CONFLICT)
        if pvt_rwset is not None:
            content.pvt_data[tx_num] = pvt_rwset
    return content


def _endorser_tx(
    rng: random.Random, tx_id: str, number: int
) -> tuple[bytes, bytes | None]:
    writes: list[tuple[str, bytes | None]] = []
    for index in range(rng.randint(1, 3)):
        key = f"k{rng.randrange(40):02d}"
        if rng.random() < 0.2:
            writes.append((key, None))
        elif rng.random() < 0.5:
            writes.append((key, f'{{"block":{number},"i":{index}}}'.encode()))
        else:
            writes.append((key, f"v{number}.{index}".encode()))
    metadata = []
    if rng.random() < 0.1:
        metadata.append((f"k{rng.randrange(40):02d}", {"VALIDATION_PARAMETER": b"p"}))
    private: dict[str, list[PrivateWrite]] = {}
    if rng.random() < 0.35:
        private[MEMBER_COLLECTION] = _private_writes(rng, number)
    if rng.random() < 0.15:
        private[OTHER_COLLECTION] = _private_writes(rng, number)
    hashed, pvt_rwset = collection_sets(private)
    envelope = endorser_envelope(
        tx_id=tx_id,
        writes=writes,
        namespace=NAMESPACE,
        channel_id=CHANNEL_ID,
        timestamp_s=1_700_000_000 + number,
        metadata_writes=metadata,
        collections=hashed,
    )
    handed_in = pvt_rwset if private and rng.random() < 0.7 else None
    return envelope, handed_in


def _private_writes(rng: random.Random, number: int) -> list[PrivateWrite]:
    writes = []
    for index in range(rng.randint(1, 2)):
        key = f"p{rng.randrange(10)}"
        roll = rng.random()
        if roll < 0.1:
            writes.append(PrivateWrite(key, None, purge=True))
        elif roll < 0.25:
            writes.append(PrivateWrite(key, None))
        else:
            writes.append(PrivateWrite(key, f"secret{number}.{index}".encode()))
    return writes


def collection_sets(
    private: dict[str, list[PrivateWrite]], *, namespace: str = NAMESPACE
) -> tuple[list[rwset_pb2.CollectionHashedReadWriteSet], bytes]:
    """The hashed write sets for the block, and the marshaled TxPvtReadWriteSet."""
    hashed: list[rwset_pb2.CollectionHashedReadWriteSet] = []
    pvt = rwset_pb2.TxPvtReadWriteSet()
    ns_pvt = pvt.ns_pvt_rwset.add(namespace=namespace) if private else None
    for coll, writes in private.items():
        plaintext = kv_rwset_pb2.KVRWSet(
            writes=[
                kv_rwset_pb2.KVWrite(
                    key=w.key, is_delete=w.value is None, value=w.value or b""
                )
                for w in writes
            ]
        ).SerializeToString()
        hashed_rwset = kv_rwset_pb2.HashedRWSet(
            hashed_writes=[
                kv_rwset_pb2.KVWriteHash(
                    key_hash=_sha256(w.key.encode()),
                    is_delete=w.value is None,
                    value_hash=b"" if w.value is None else _sha256(w.value),
                    is_purge=w.purge,
                )
                for w in writes
            ]
        )
        hashed.append(
            rwset_pb2.CollectionHashedReadWriteSet(
                collection_name=coll,
                hashed_rwset=hashed_rwset.SerializeToString(),
                pvt_rwset_hash=_sha256(plaintext),
            )
        )
        assert ns_pvt is not None
        ns_pvt.collection_pvt_rwset.add(collection_name=coll, rwset=plaintext)
    return hashed, pvt.SerializeToString()


def config_envelope(tx_id: str) -> bytes:
    """A CONFIG-type envelope (its content is irrelevant to the ledger)."""
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG, channel_id=CHANNEL_ID, tx_id=tx_id
    )
    payload = common_pb2.Payload(data=b"config")
    payload.header.channel_header = channel_header.SerializeToString()
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def failpoint_observer(spec: str | None) -> CommitObserver | None:
    """An observer that SIGKILLs this process at "STEP:BLOCK", or None without a spec.

    It fires the first time the ledger reports STEP for block BLOCK or a later one.
    """
    if not spec:
        return None
    step_name, _, block_text = spec.partition(":")
    step, first_block = CommitStep(step_name), int(block_text)

    def observe(reported: CommitStep, number: int) -> None:
        if reported is step and number >= first_block:
            os.kill(os.getpid(), signal.SIGKILL)

    return observe


def main(argv: Sequence[str]) -> int:
    folder, seed = argv[0], int(argv[1])
    observer = failpoint_observer(os.environ.get(FAILPOINT_ENV))
    with ChannelLedger.open(
        folder, channel_id=CHANNEL_ID, collections=Collections(), observer=observer
    ) as ledger:
        while ledger.height < MAX_BLOCKS:
            number = ledger.height
            content = workload(seed, number)
            previous = ledger.blockchain_info().currentBlockHash
            ledger.commit_block(content.block(number, previous), content.pvt_data)
            print(number, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
