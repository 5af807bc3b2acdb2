"""Unit tests for peer.validator.mvcc: reads, range queries and hashed reads in block order.

Pure: transactions are read-write sets made with the simulator's `RwSetBuilder`, the
committed state is a dictionary `LedgerView`, and each test runs `validate_mvcc` over a
sequence of transactions as `validate_block` does (valid ones join `BlockWrites`).
"""

from __future__ import annotations

from collections.abc import Callable

from peer.ledger.statedb import Version
from peer.simulator import RwSetBuilder
from peer.simulator.rangequery import RangeQueryResults, apply_reads_info
from peer.simulator.rwset import key_hash
from peer.validator.mvcc import BlockWrites, CommittedVersions, validate_mvcc
from peer.validator.transaction import CollectionRwSet, EndorserTx, NamespaceRwSet
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import transaction_pb2
from tests.unit.peer.test_validator import FakeLedger

NS = "records"
VALID = transaction_pb2.VALID
MVCC = transaction_pb2.MVCC_READ_CONFLICT
PHANTOM = transaction_pb2.PHANTOM_READ_CONFLICT

Build = Callable[[RwSetBuilder], None]


def tx(build: Build) -> EndorserTx:
    """An endorser transaction whose read-write set `build` fills in."""
    builder = RwSetBuilder()
    build(builder)
    message = rwset_pb2.TxReadWriteSet.FromString(builder.build()[0])
    return EndorserTx(
        chaincode_name=NS,
        chaincode_version="1.0",
        tx_rwset=message,
        rwset=tuple(
            NamespaceRwSet(
                namespace=ns.namespace,
                kv=kv_rwset_pb2.KVRWSet.FromString(ns.rwset),
                collections=tuple(
                    CollectionRwSet(
                        name=c.collection_name,
                        hashed=kv_rwset_pb2.HashedRWSet.FromString(c.hashed_rwset),
                    )
                    for c in ns.collection_hashed_rwset
                ),
            )
            for ns in message.ns_rwset
        ),
        response_payload=b"",
        endorsements=(),
    )


def ledger_with(*keys: str, block: int = 1) -> FakeLedger:
    return FakeLedger(
        state={(NS, key): (Version(block, index), {}) for index, key in enumerate(keys)}
    )


def run(ledger: FakeLedger, *txs: EndorserTx) -> list[int]:
    """validate_mvcc over the transactions in order; valid ones' writes join the block."""
    committed = CommittedVersions.load(ledger, txs)
    pending = BlockWrites()
    codes: list[int] = []
    for position, item in enumerate(txs):
        code = validate_mvcc(item, ledger=ledger, committed=committed, pending=pending)
        if code == VALID:
            pending.add(item, Version(9, position), committed)
        codes.append(code)
    return codes


def reads(*pairs: tuple[str, Version | None]) -> Build:
    def build(builder: RwSetBuilder) -> None:
        for key, version in pairs:
            builder.add_read(NS, key, version)

    return build


def writes(**values: bytes) -> Build:
    def build(builder: RwSetBuilder) -> None:
        for key, value in values.items():
            builder.add_write(NS, key, value)

    return build


def both(*builds: Build) -> Build:
    def build(builder: RwSetBuilder) -> None:
        for each in builds:
            each(builder)

    return build


def range_query(
    ledger: FakeLedger,
    start: str,
    end: str,
    *,
    exhausted: bool = True,
    extra: tuple[str, Version] | None = None,
) -> Build:
    """A range query as the simulator records it over `ledger` (plus one extra result)."""

    def build(builder: RwSetBuilder) -> None:
        results = RangeQueryResults()
        if exhausted:
            seen = list(ledger.range_versions(NS, start, end))
        else:
            seen = [
                item for item in ledger.range_versions(NS, start, "") if item[0] <= end
            ]
        if extra is not None:
            seen = sorted([*seen, extra])
        for key, version in seen:
            results.add(
                kv_rwset_pb2.KVRead(
                    key=key,
                    version=kv_rwset_pb2.Version(
                        block_num=version.block_num, tx_num=version.tx_num
                    ),
                )
            )
        info = kv_rwset_pb2.RangeQueryInfo(
            start_key=start, end_key=end, itr_exhausted=exhausted
        )
        apply_reads_info(info, *results.done())
        builder.add_range_query(NS, info)

    return build


# --- public reads ------------------------------------------------------------------------


def test_a_read_holds_while_nothing_changed() -> None:
    ledger = ledger_with("a")
    assert run(ledger, tx(reads(("a", Version(1, 0)), ("b", None)))) == [VALID]


def test_stale_and_missing_versions_conflict() -> None:
    ledger = ledger_with("a")
    assert run(
        ledger,
        tx(reads(("a", Version(0, 7)))),
        tx(reads(("a", None))),
        tx(reads(("b", Version(1, 0)))),
    ) == [MVCC, MVCC, MVCC]


def test_an_earlier_write_or_delete_in_the_block_conflicts_even_at_the_same_version() -> (
    None
):
    ledger = ledger_with("a", "b")
    assert run(
        ledger,
        tx(writes(a=b"new", b=b"")),
        tx(reads(("a", Version(1, 0)))),
        tx(reads(("b", Version(1, 1)))),
    ) == [VALID, MVCC, MVCC]


def test_an_invalid_transaction_writes_nothing() -> None:
    ledger = ledger_with("a")
    stale_writer = tx(both(reads(("a", Version(0, 0))), writes(a=b"x")))
    assert run(ledger, stale_writer, tx(reads(("a", Version(1, 0))))) == [MVCC, VALID]


def test_a_metadata_write_moves_an_existing_key_only() -> None:
    """Goal: as Fabric, metadata-only writes to absent keys change nothing."""
    ledger = ledger_with("a")

    def metadata(key: str) -> Build:
        return lambda b: b.add_metadata_write(NS, key, {"k": b"v"})

    assert run(
        ledger,
        tx(metadata("a")),
        tx(metadata("absent")),
        tx(reads(("a", Version(1, 0)))),
        tx(reads(("absent", None))),
    ) == [VALID, VALID, MVCC, VALID]


# --- range queries ---------------------------------------------------------------------


def test_a_range_holds_while_nothing_changed() -> None:
    ledger = ledger_with("k1", "k2", "k3", "z")
    assert run(ledger, tx(range_query(ledger, "k", "l"))) == [VALID]


def test_a_range_changed_by_the_committed_state_is_a_phantom() -> None:
    ledger = ledger_with("k1", "k3")
    recorded = range_query(ledger, "k", "l", extra=("k2", Version(1, 5)))
    assert run(ledger, tx(recorded)) == [PHANTOM]


def test_earlier_inserts_updates_and_deletes_in_range_are_phantoms() -> None:
    ledger = ledger_with("k1", "k3")
    query = tx(range_query(ledger, "k", "l"))
    assert run(ledger, tx(writes(k2=b"x")), query) == [VALID, PHANTOM]
    assert run(ledger, tx(writes(k3=b"x")), query) == [VALID, PHANTOM]
    assert run(ledger, tx(writes(k1=b"")), query) == [VALID, PHANTOM]
    assert run(ledger, tx(writes(m1=b"x", j9=b"x")), query) == [VALID, VALID]


def test_an_unexhausted_range_covers_its_last_key() -> None:
    """Goal: Fabric's includeEndKey. Method: the chaincode stopped at k2, which an
    earlier transaction then deletes; k3 past the stop point may change freely."""
    ledger = ledger_with("k1", "k2", "k3")
    query = tx(range_query(ledger, "k1", "k2", exhausted=False))
    assert run(ledger, query) == [VALID]
    assert run(ledger, tx(writes(k3=b"")), query) == [VALID, VALID]
    assert run(ledger, tx(writes(k2=b"")), query) == [VALID, PHANTOM]


def test_a_long_range_is_checked_through_its_merkle_summary() -> None:
    """Goal: more than 50 results are compared as Fabric's Merkle summary."""
    ledger = ledger_with(*(f"k{index:03d}" for index in range(120)))
    build = range_query(ledger, "k", "l")
    query = tx(build)
    info = query.rwset[0].kv.range_queries_info[0]
    assert info.HasField("reads_merkle_hashes")
    assert run(ledger, query) == [VALID]
    assert run(ledger, tx(writes(k0505=b"x")), query) == [VALID, PHANTOM]
    assert run(ledger, tx(writes(k999=b"x")), query) == [VALID, PHANTOM]


# --- hashed reads ----------------------------------------------------------------------


def test_hashed_reads_follow_the_same_rules() -> None:
    ledger = FakeLedger(hashed={(NS, "pdc", key_hash("p1")): (Version(2, 0), {})})

    def read(version: Version | None) -> Build:
        return lambda b: b.add_hashed_read(NS, "pdc", "p1", version)

    def private_write(builder: RwSetBuilder) -> None:
        builder.add_private_write(NS, "pdc", "p1", b"x")

    assert run(ledger, tx(read(Version(2, 0))), tx(read(Version(1, 0)))) == [
        VALID,
        MVCC,
    ]
    assert run(ledger, tx(private_write), tx(read(Version(2, 0)))) == [VALID, MVCC]
