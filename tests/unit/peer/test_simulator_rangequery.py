"""RangeQueryResults: raw reads up to 50 results, Fabric's Merkle summary beyond."""

from __future__ import annotations

import hashlib

import pytest

from peer.simulator.rangequery import MAX_DEGREE, RangeQueryResults
from protos.ledger.rwset.kvrwset import kv_rwset_pb2


def reads(count: int, start: int = 0) -> list[kv_rwset_pb2.KVRead]:
    return [
        kv_rwset_pb2.KVRead(key=f"k{i:06d}", version=kv_rwset_pb2.Version(block_num=i))
        for i in range(start, start + count)
    ]


def leaf(chunk: list[kv_rwset_pb2.KVRead]) -> bytes:
    return hashlib.sha256(
        kv_rwset_pb2.QueryReads(kv_reads=chunk).SerializeToString()
    ).digest()


def combine(hashes: list[bytes]) -> bytes:
    return hashlib.sha256(b"".join(hashes)).digest()


def run(items: list[kv_rwset_pb2.KVRead]) -> tuple[list[kv_rwset_pb2.KVRead], object]:
    results = RangeQueryResults()
    for item in items:
        results.add(item)
    return results.done()


@pytest.mark.parametrize("count", [0, 1, MAX_DEGREE])
def test_up_to_max_degree_results_stay_raw(count: int) -> None:
    items = reads(count)
    raw, summary = run(items)
    assert raw == items
    assert summary is None


def test_one_more_than_max_degree_becomes_one_leaf() -> None:
    items = reads(MAX_DEGREE + 1)
    raw, summary = run(items)
    assert raw == []
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=MAX_DEGREE, max_level=1, max_level_hashes=[leaf(items)]
    )


def test_leftover_results_become_a_last_leaf() -> None:
    items = reads(60)
    _, summary = run(items)
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=MAX_DEGREE,
        max_level=1,
        max_level_hashes=[leaf(items[:51]), leaf(items[51:])],
    )


def test_a_full_level_is_combined_into_the_next() -> None:
    items = reads(51 * 51)
    leaves = [leaf(items[i * 51 : (i + 1) * 51]) for i in range(51)]
    _, summary = run(items)
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=MAX_DEGREE, max_level=2, max_level_hashes=[combine(leaves)]
    )


def test_lower_levels_are_folded_up_at_the_end() -> None:
    items = reads(51 * 51 + 51 * 2 + 3)
    first = [leaf(items[i * 51 : (i + 1) * 51]) for i in range(51)]
    later = [leaf(items[i * 51 : (i + 1) * 51]) for i in range(51, 53)]
    tail = leaf(items[53 * 51 :])
    _, summary = run(items)
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=MAX_DEGREE,
        max_level=2,
        max_level_hashes=[combine(first), combine([*later, tail])],
    )


def test_a_single_lower_hash_is_carried_up_unchanged() -> None:
    items = reads(51 * 51 + 1)
    first = [leaf(items[i * 51 : (i + 1) * 51]) for i in range(51)]
    _, summary = run(items)
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=MAX_DEGREE,
        max_level=2,
        max_level_hashes=[combine(first), leaf(items[-1:])],
    )


def test_small_degree_top_level_overflow_adds_a_level() -> None:
    results = RangeQueryResults(max_degree=2)
    items = reads(3 * 3 * 3 - 3)  # 24 results: 8 leaves of 3
    for item in items:
        results.add(item)
    leaves = [leaf(items[i * 3 : (i + 1) * 3]) for i in range(8)]
    # Leaves 0-2 combine into a, 3-5 into b (level 2); 6-7 are left at level 1. At the
    # end 6-7 fold into c at level 2, which then holds 3 > 2 hashes: one more level.
    a, b, c = combine(leaves[0:3]), combine(leaves[3:6]), combine(leaves[6:8])
    _, summary = results.done()
    assert summary == kv_rwset_pb2.QueryReadsMerkleSummary(
        max_degree=2, max_level=3, max_level_hashes=[combine([a, b, c])]
    )


def test_degree_below_two_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RangeQueryResults(max_degree=1)
