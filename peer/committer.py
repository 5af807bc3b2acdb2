"""The committer: verify a block from the orderer, validate it, commit it to the ledger.

Commit phase glue between Deliver and `peer.ledger.ChannelLedger`, for one channel:

1. the orderer's signature, against /Channel/Orderer/BlockValidation, before anything
   else reads the block; then its number and previous hash (else `BlockVerificationError`
   and nothing is written);
2. `peer.validator.evaluate_block` gives every transaction its TxValidationCode, with
   the signatures checked in one batch, in a process pool for large blocks
   (`ParallelVerifier`);
3. the codes go into the block's TRANSACTIONS_FILTER and `ChannelLedger.commit_block`
   appends it and applies its valid writes; a valid config block becomes the channel
   config for the next block.

One thread commits; the ledger adapter reads committed state through the ledger's
reader connection, which sees exactly the blocks committed before this one.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from common.channelconfig import ChannelConfig
from common.errors import ChannelConfigError, PolicyError, WireError
from common.policies import SignedData
from common.protoutil import (
    METADATA_ENTRY_COUNT,
    block_signature_messages,
    block_time,
    last_config_index,
    with_transaction_filter,
)
from peer.errors import BlockVerificationError
from peer.ledger.hashed import get_hashed_value, get_hashed_versions
from peer.ledger.ledger import ChannelLedger
from peer.ledger.statedb import Version, get_metadata_of, get_versions
from peer.lifecycle import ChaincodeDefinition, read_definition
from peer.validator import (
    HashedKey,
    PendingVerdicts,
    SerialVerifier,
    SignatureCheck,
    SignatureVerifier,
    ValidationContext,
    evaluate_block,
    verify_serially,
)
from protos.common import common_pb2
from protos.peer import transaction_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "BLOCK_VALIDATION_POLICY",
    "Committer",
    "LedgerStateView",
    "ParallelVerifier",
    "verify_block_signature",
]

_LOG = logging.getLogger(__name__)

BLOCK_VALIDATION_POLICY = "/Channel/Orderer/BlockValidation"
_SERIAL = SerialVerifier()


class Committer:
    """Validates and commits the blocks of one channel, in order."""

    def __init__(
        self,
        ledger: ChannelLedger,
        *,
        config: ChannelConfig,
        verifier: SignatureVerifier = _SERIAL,
    ) -> None:
        self._ledger = ledger
        self._config = config
        self._verifier = verifier
        self._view = LedgerStateView(ledger)

    @classmethod
    def join(
        cls,
        ledger: ChannelLedger,
        genesis_block: common_pb2.Block,
        *,
        verifier: SignatureVerifier = _SERIAL,
    ) -> Committer:
        """Commit a channel's genesis block to an empty ledger; a committer for what follows.

        The genesis block is trusted as given (it comes from the administrator joining
        the peer): it carries no orderer signature, and its config transaction is VALID.

        Raises:
            BlockVerificationError: the ledger is not empty, or the block is not a
                genesis block with a usable config.
        """
        number = genesis_block.header.number
        if ledger.height != 0 or number != 0:
            raise BlockVerificationError(
                f"joining needs block 0 and an empty ledger; got block {number} for a "
                f"ledger at height {ledger.height}",
                block_number=number,
            )
        config = _config_of(genesis_block)
        ledger.commit_block(with_transaction_filter(genesis_block, [_VALID]))
        return cls(ledger, config=config, verifier=verifier)

    @classmethod
    def resume(
        cls, ledger: ChannelLedger, *, verifier: SignatureVerifier = _SERIAL
    ) -> Committer:
        """Continue a ledger that holds blocks: its config is the last config block's.

        Raises:
            BlockVerificationError: the ledger is empty or its last config does not parse.
        """
        if ledger.height == 0:
            raise BlockVerificationError(
                "the ledger is empty: join the channel first", block_number=0
            )
        store = ledger.block_store
        last = store.block_by_number(ledger.height - 1)
        try:
            config_block = store.block_by_number(last_config_index(last))
        except WireError as error:
            raise BlockVerificationError(
                str(error), block_number=last.header.number
            ) from error
        return cls(ledger, config=_config_of(config_block), verifier=verifier)

    @property
    def config(self) -> ChannelConfig:
        """The channel config the next block is validated against."""
        return self._config

    @property
    def ledger(self) -> ChannelLedger:
        return self._ledger

    def commit_block(
        self, block: common_pb2.Block, pvt_data: Mapping[int, bytes] | None = None
    ) -> tuple[TxValidationCode, ...]:
        """Verify, validate and commit the next block; the codes of its transactions.

        The codes are also written into `block`'s TRANSACTIONS_FILTER, in place (copying
        a block of 500 transactions would cost more than validating several of them).

        Raises:
            BlockVerificationError: a bad orderer signature, a block that does not
                follow the ledger, or an invalid config update; nothing is written.
            BlockRejected, LedgerError: from `ChannelLedger.commit_block`.
        """
        verify_block_signature(block, self._config)
        self._check_follows(block)
        context = ValidationContext(
            config=self._config, ledger=self._view, verify=self._verifier
        )
        result = evaluate_block(block, context=context)
        _set_transaction_filter(block, result.codes)
        self._ledger.commit_block(block, pvt_data, decoded=result.decoded)
        if result.config is not None:
            self._config = result.config
        return result.codes

    def _check_follows(self, block: common_pb2.Block) -> None:
        number = block.header.number
        height = self._ledger.height
        if number != height:
            raise BlockVerificationError(
                f"block {number} does not follow the ledger at height {height}",
                block_number=number,
            )
        expected = self._ledger.blockchain_info().currentBlockHash
        if block.header.previous_hash != expected:
            raise BlockVerificationError(
                f"block {number} previous hash is not the hash of block {number - 1}",
                block_number=number,
            )


def verify_block_signature(block: common_pb2.Block, config: ChannelConfig) -> None:
    """Check the orderer signatures on `block` against the BlockValidation policy.

    Certificates are judged at the time of the block's last transaction (its channel
    header), so the verdict does not depend on when a peer catches up.

    Raises:
        BlockVerificationError: no or undecodable signatures, or the policy is not met.
    """
    number = block.header.number
    try:
        messages = block_signature_messages(block)
        policy = config.policy_manager.get(BLOCK_VALIDATION_POLICY)
        msps = config.msp_manager.at_time(block_time(block))
        policy.evaluate(
            [
                SignedData(data=m.message, identity=m.identity, signature=m.signature)
                for m in messages
            ],
            msps,
        )
    except (WireError, PolicyError) as error:
        raise BlockVerificationError(
            f"block {number} is not signed as {BLOCK_VALIDATION_POLICY} requires: "
            f"{error}",
            block_number=number,
        ) from error


class LedgerStateView:
    """A `ChannelLedger` as the validator's `LedgerView` (committed state only)."""

    def __init__(self, ledger: ChannelLedger) -> None:
        self._ledger = ledger

    def stored_tx_ids(self, tx_ids: Collection[str]) -> Collection[str]:
        return self._ledger.block_store.stored_tx_ids(tx_ids)

    def chaincode_definition(self, name: str) -> ChaincodeDefinition | None:
        return read_definition(self._ledger, name)

    def versions(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Version]:
        return get_versions(self._ledger.reader(), keys)

    def range_versions(
        self, ns: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, Version]]:
        for kv in self._ledger.get_state_range(ns, start_key, end_key):
            yield kv.key, kv.version

    def metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        return self._ledger.get_state_metadata(ns, key)

    def metadata_of(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Mapping[str, bytes]]:
        return get_metadata_of(self._ledger.reader(), keys)

    def hashed_versions(
        self, keys: Collection[HashedKey]
    ) -> Mapping[HashedKey, Version]:
        return get_hashed_versions(self._ledger.reader(), keys)

    def hashed_metadata(
        self, ns: str, coll: str, key_hash: bytes
    ) -> Mapping[str, bytes] | None:
        hashed = get_hashed_value(self._ledger.reader(), ns, coll, key_hash)
        return None if hashed is None else hashed.metadata


class ParallelVerifier:
    """Checks signature batches in worker processes; small batches in this process.

    The pool (spawned, so safe whatever threads the peer runs) starts on first use and
    lives until `close`. A batch is split into one chunk per worker (more with
    `chunks_per_worker`), so shipping messages costs little next to the ~80 µs of each
    ECDSA verification; the validator submits a block in parts while it decodes the
    rest. Batches below `min_batch` are checked here, where they cost less than the
    round trip. If the pool breaks (a worker died), the batch is checked here and a new
    pool starts on the next large batch.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        min_batch: int = 128,
        chunks_per_worker: int = 1,
    ) -> None:
        self._workers = workers or max(1, os.cpu_count() or 1)
        self._min_batch = min_batch
        self._chunks_per_worker = chunks_per_worker
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def submit(self, checks: Sequence[SignatureCheck]) -> PendingVerdicts:
        """Send a large batch to the workers; check a small one here and now."""
        if len(checks) < self._min_batch:
            verdicts = verify_serially(checks)
            return lambda: verdicts
        items = [(c.certificate, c.message, c.signature) for c in checks]
        try:
            pool = self._start()
            futures = [
                pool.submit(verify_chunk, chunk) for chunk in self._chunks(items)
            ]
        except BrokenProcessPool:
            return self._fall_back(checks)

        def collect() -> Sequence[bool]:
            try:
                return [verdict for future in futures for verdict in future.result()]
            except BrokenProcessPool:
                return self._fall_back(checks)()

        return collect

    def start(self) -> None:
        """Start the workers now rather than on the first large batch."""
        self._start()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _fall_back(self, checks: Sequence[SignatureCheck]) -> PendingVerdicts:
        _LOG.warning("signature pool broke; checking %d signatures here", len(checks))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        verdicts = verify_serially(checks)
        return lambda: verdicts

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
            )
            warm_up = [
                self._pool.submit(verify_chunk, []) for _ in range(self._workers)
            ]
            concurrent.futures.wait(warm_up)
        return self._pool

    def _chunks(
        self, items: list[tuple[bytes, bytes, bytes]]
    ) -> list[list[tuple[bytes, bytes, bytes]]]:
        count = self._workers * self._chunks_per_worker
        size = -(-len(items) // count)
        return [items[start : start + size] for start in range(0, len(items), size)]


def verify_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Worker entry point: (certificate, message, signature) triples → verdicts."""
    return verify_serially([SignatureCheck(*item) for item in items])


_VALID = transaction_pb2.VALID


def _set_transaction_filter(
    block: common_pb2.Block, codes: Sequence[TxValidationCode]
) -> None:
    entries = block.metadata.metadata
    missing = METADATA_ENTRY_COUNT - len(entries)
    if missing > 0:
        entries.extend([b""] * missing)
    entries[common_pb2.TRANSACTIONS_FILTER] = bytes(codes)


def _config_of(block: common_pb2.Block) -> ChannelConfig:
    try:
        return ChannelConfig.from_block(block)
    except ChannelConfigError as error:
        raise BlockVerificationError(
            f"block {block.header.number} holds no usable channel config: {error}",
            block_number=block.header.number,
        ) from error
