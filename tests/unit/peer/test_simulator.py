"""TxSimulator: the read-write set Fabric would record for each kind of state request."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from peer.errors import CollectionError, InvalidKey, QueryError, UnsupportedTransaction
from peer.ledger.statedb import Version
from peer.simulator import TxSimulator
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.unit.peer.simfakes import (
    FakeReader,
    decode_hashed,
    decode_private,
    decode_public,
    modification,
    sha256,
)

V1 = Version(1, 0)
V2 = Version(2, 3)
POLICY = {"VALIDATION_PARAMETER": b"policy-bytes"}


@pytest.fixture
def reader() -> FakeReader:
    fake = FakeReader()
    fake.put("cc", "a", b"one", V1)
    fake.put("cc", "b", b"two", V2, metadata=POLICY)
    fake.put("cc", "c", b"three", V1)
    fake.put("other", "x", b"ex", V1)
    return fake


def simulator(reader: FakeReader, **kwargs: object) -> TxSimulator:
    return TxSimulator(reader, channel_id="ch", tx_id="tx1", **kwargs)  # type: ignore[arg-type]


def version(read: kv_rwset_pb2.KVRead | kv_rwset_pb2.KVReadHash) -> Version | None:
    if not read.HasField("version"):
        return None
    return Version(read.version.block_num, read.version.tx_num)


# ---------------------------------------------------------------- public reads


def test_get_state_records_committed_version(reader: FakeReader) -> None:
    sim = simulator(reader)
    assert sim.get_state("cc", "b") == b"two"
    assert sim.get_state("cc", "missing") is None
    reads = decode_public(sim.results().public_rwset)["cc"].reads
    assert [(r.key, version(r)) for r in reads] == [("b", V2), ("missing", None)]


def test_reads_after_own_write_return_the_committed_value(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_state("cc", "a", b"new")
    sim.delete_state("cc", "c")
    assert sim.get_state("cc", "a") == b"one"
    assert sim.get_state("cc", "c") == b"three"
    rwset = decode_public(sim.results().public_rwset)["cc"]
    assert [(r.key, version(r)) for r in rwset.reads] == [("a", V1), ("c", V1)]
    assert [(w.key, w.is_delete, w.value) for w in rwset.writes] == [
        ("a", False, b"new"),
        ("c", True, b""),
    ]


def test_version_zero_is_recorded_as_present(reader: FakeReader) -> None:
    reader.put("cc", "genesis", b"g", Version(0, 0))
    sim = simulator(reader)
    sim.get_state("cc", "genesis")
    (read,) = decode_public(sim.results().public_rwset)["cc"].reads
    assert read.HasField("version")
    assert version(read) == Version(0, 0)


def test_last_write_wins_and_empty_value_deletes(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_state("cc", "k", b"first")
    sim.set_state("cc", "k", b"second")
    sim.set_state("cc", "gone", b"x")
    sim.set_state("cc", "gone", b"")
    writes = decode_public(sim.results().public_rwset)["cc"].writes
    assert [(w.key, w.is_delete, w.value) for w in writes] == [
        ("gone", True, b""),
        ("k", False, b"second"),
    ]


def test_metadata_write_replaces_and_sorts_entries(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_state_metadata("cc", "a", {"z": b"1", "VALIDATION_PARAMETER": b"p"})
    sim.set_state_metadata("cc", "b", {"only": b"x"})
    sim.delete_state_metadata("cc", "b")
    rwset = decode_public(sim.results().public_rwset)["cc"]
    entries = {
        m.key: [(e.name, e.value) for e in m.entries] for m in rwset.metadata_writes
    }
    assert entries == {"a": [("VALIDATION_PARAMETER", b"p"), ("z", b"1")], "b": []}
    assert not rwset.writes


def test_get_state_metadata_records_a_read(reader: FakeReader) -> None:
    sim = simulator(reader)
    assert sim.get_state_metadata("cc", "b") == POLICY
    assert sim.get_state_metadata("cc", "nope") == {}
    reads = decode_public(sim.results().public_rwset)["cc"].reads
    assert [(r.key, version(r)) for r in reads] == [("b", V2), ("nope", None)]


def test_writeset_metadata_names_written_keys_with_policies(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_state("cc", "a", b"x")
    sim.set_state("cc", "b", b"y")
    assert sim.results().writeset_metadata == {("cc", "", "b"): POLICY}


def test_a_write_after_a_read_takes_the_metadata_read_from_the_snapshot(
    reader: FakeReader,
) -> None:
    """Read-modify-write asks the state once per key; absent keys are known too."""
    asked: list[tuple[str, str]] = []
    original = reader.get_state_metadata

    def counting(ns: str, key: str) -> Mapping[str, bytes] | None:
        asked.append((ns, key))
        return original(ns, key)

    reader.get_state_metadata = counting  # type: ignore[method-assign]
    sim = simulator(reader)
    for key in ("a", "b", "nope"):
        sim.get_state("cc", key)
        sim.set_state("cc", key, b"new")
    sim.set_state("cc", "unread", b"new")
    assert asked == [("cc", "unread")]
    assert sim.results().writeset_metadata == {("cc", "", "b"): POLICY}


# ---------------------------------------------------------------- ranges


def pull(iterator: object, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        item = iterator.next()  # type: ignore[attr-defined]
        if item is None:
            break
        keys.append(item.key)
    return keys


def test_range_records_what_was_pulled(reader: FakeReader) -> None:
    sim = simulator(reader)
    iterator = sim.get_state_range("cc", "a", "z")
    assert pull(iterator, 2) == ["a", "b"]
    rwset = decode_public(sim.results().public_rwset)["cc"]
    (info,) = rwset.range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("a", "b", False)
    assert [(r.key, version(r)) for r in info.raw_reads.kv_reads] == [
        ("a", V1),
        ("b", V2),
    ]
    assert not rwset.reads


def test_exhausted_range_records_the_requested_end(reader: FakeReader) -> None:
    sim = simulator(reader)
    iterator = sim.get_state_range("cc", "", "")
    assert pull(iterator, 10) == ["a", "b", "c"]
    (info,) = decode_public(sim.results().public_rwset)["cc"].range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("", "", True)
    assert len(info.raw_reads.kv_reads) == 3


def test_range_never_pulled_has_no_reads_info(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.get_state_range("cc", "b", "c")
    (info,) = decode_public(sim.results().public_rwset)["cc"].range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("b", "", False)
    assert info.WhichOneof("reads_info") is None


def test_empty_range_is_exhausted_without_reads(reader: FakeReader) -> None:
    sim = simulator(reader)
    assert sim.get_state_range("cc", "m", "n").next() is None
    (info,) = decode_public(sim.results().public_rwset)["cc"].range_queries_info
    assert (info.end_key, info.itr_exhausted) == ("n", True)
    assert info.WhichOneof("reads_info") is None


def test_identical_ranges_are_recorded_once_in_opening_order(
    reader: FakeReader,
) -> None:
    sim = simulator(reader)
    for start in ("b", "a", "b"):
        pull(sim.get_state_range("cc", start, "z"), 10)
    infos = decode_public(sim.results().public_rwset)["cc"].range_queries_info
    assert [i.start_key for i in infos] == ["b", "a"]


def test_large_range_is_summarised_by_merkle_hashes() -> None:
    fake = FakeReader()
    for i in range(120):
        fake.put("cc", f"k{i:03d}", b"v", Version(1, i))
    sim = simulator(fake)
    assert len(pull(sim.get_state_range("cc", "", ""), 200)) == 120
    (info,) = decode_public(sim.results().public_rwset)["cc"].range_queries_info
    summary = info.reads_merkle_hashes
    assert info.WhichOneof("reads_info") == "reads_merkle_hashes"
    assert (summary.max_degree, summary.max_level) == (50, 1)
    reads = [
        kv_rwset_pb2.KVRead(
            key=f"k{i:03d}", version=kv_rwset_pb2.Version(block_num=1, tx_num=i)
        )
        for i in range(120)
    ]
    chunks = [reads[0:51], reads[51:102], reads[102:]]
    expected = [
        sha256(kv_rwset_pb2.QueryReads(kv_reads=chunk).SerializeToString())
        for chunk in chunks
    ]
    assert list(summary.max_level_hashes) == expected


def test_paginated_range_stops_at_page_and_bookmarks_next_key(
    reader: FakeReader,
) -> None:
    sim = simulator(reader)
    iterator = sim.get_state_range_page("cc", "a", "", page_size=2)
    assert pull(iterator, 5) == ["a", "b"]
    assert iterator.bookmark_and_close() == "c"
    last = sim.get_state_range_page("cc", "c", "", page_size=2)
    assert pull(last, 5) == ["c"]
    assert last.bookmark_and_close() == ""


# ---------------------------------------------------------------- queries and history


def test_rich_query_records_reads_but_no_range(reader: FakeReader) -> None:
    sim = simulator(reader)
    iterator = sim.execute_query("cc", "t")
    assert pull(iterator, 10) == ["b", "c"]
    rwset = decode_public(sim.results().public_rwset)["cc"]
    assert [(r.key, version(r)) for r in rwset.reads] == [("b", V2), ("c", V1)]
    assert not rwset.range_queries_info


def test_paginated_rich_query_carries_the_store_bookmark(reader: FakeReader) -> None:
    sim = simulator(reader)
    iterator = sim.execute_query_page("cc", "e", page_size=1, bookmark="")
    assert pull(iterator, 5) == ["a"]
    assert iterator.bookmark_and_close() == "a"


def test_history_records_nothing(reader: FakeReader) -> None:
    reader.history[("cc", "a")] = [
        modification("t2", b"one", 2),
        modification("t1", b"", 1),
    ]
    sim = simulator(reader)
    iterator = sim.get_history_for_key("cc", "a")
    first, second = iterator.next(), iterator.next()
    assert first is not None
    assert first.tx_id == "t2"
    assert second is not None
    assert second.is_delete
    assert iterator.next() is None
    assert decode_public(sim.results().public_rwset) == {}


# ---------------------------------------------------------------- private data


def test_private_write_hashes_and_plaintext(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_private_data("cc", "coll", "patient-1", b"diagnosis")
    sim.delete_private_data("cc", "coll", "patient-0")
    results = sim.results()
    hashed, pvt_hash = decode_hashed(results.public_rwset)[("cc", "coll")]
    assert [
        (w.key_hash, w.is_delete, w.value_hash, w.is_purge)
        for w in hashed.hashed_writes
    ] == [
        (sha256(b"patient-0"), True, b"", False),
        (sha256(b"patient-1"), False, sha256(b"diagnosis"), False),
    ]
    private, private_bytes = decode_private(results.private_rwset)[("cc", "coll")]
    assert [(w.key, w.is_delete, w.value) for w in private.writes] == [
        ("patient-0", True, b""),
        ("patient-1", False, b"diagnosis"),
    ]
    assert pvt_hash == sha256(private_bytes)
    assert results.private_writes == {("cc", "coll")}
    assert decode_public(results.public_rwset)["cc"] == kv_rwset_pb2.KVRWSet()


def test_purge_marks_the_hashed_write(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.purge_private_data("cc", "coll", "k")
    results = sim.results()
    hashed, _ = decode_hashed(results.public_rwset)[("cc", "coll")]
    (write,) = hashed.hashed_writes
    assert (write.key_hash, write.is_delete, write.is_purge) == (
        sha256(b"k"),
        True,
        True,
    )
    private, _ = decode_private(results.private_rwset)[("cc", "coll")]
    assert [(w.key, w.is_delete) for w in private.writes] == [("k", True)]


def test_private_metadata_write_keeps_entries_in_the_hashed_set_only(
    reader: FakeReader,
) -> None:
    sim = simulator(reader)
    sim.set_private_data_metadata("cc", "coll", "k", POLICY)
    results = sim.results()
    hashed, pvt_hash = decode_hashed(results.public_rwset)[("cc", "coll")]
    (metadata_write,) = hashed.metadata_writes
    assert metadata_write.key_hash == sha256(b"k")
    assert [(e.name, e.value) for e in metadata_write.entries] == list(POLICY.items())
    private, private_bytes = decode_private(results.private_rwset)[("cc", "coll")]
    assert [(m.key, list(m.entries)) for m in private.metadata_writes] == [("k", [])]
    assert pvt_hash == sha256(private_bytes)


def test_get_private_data_records_a_hashed_read(reader: FakeReader) -> None:
    reader.put_private("cc", "coll", "p", b"secret", V2)
    sim = simulator(reader)
    assert sim.get_private_data("cc", "coll", "p") == b"secret"
    assert sim.get_private_data("cc", "coll", "absent") is None
    results = sim.results()
    hashed, pvt_hash = decode_hashed(results.public_rwset)[("cc", "coll")]
    assert [(r.key_hash, version(r)) for r in hashed.hashed_reads] == [
        (sha256(b"absent"), None),
        (sha256(b"p"), V2),
    ]
    assert pvt_hash == b""
    assert results.private_rwset == b""
    assert results.private_reads == {("cc", "coll")}


def test_get_private_data_fails_when_plaintext_is_missing_here(
    reader: FakeReader,
) -> None:
    reader.put_private("cc", "coll", "p", b"secret", V2, plaintext=False)
    sim = simulator(reader)
    with pytest.raises(QueryError, match="not available"):
        sim.get_private_data("cc", "coll", "p")


def test_private_hash_and_metadata_reads(reader: FakeReader) -> None:
    reader.put_private("cc", "coll", "p", b"secret", V2, metadata=POLICY)
    sim = simulator(reader)
    assert sim.get_private_data_hash("cc", "coll", "p") == sha256(b"secret")
    assert sim.get_private_data_metadata("cc", "coll", "p") == POLICY
    assert sim.get_private_data_hash("cc", "coll", "q") is None
    sim.set_private_data("cc", "coll", "p", b"new")
    results = sim.results()
    assert results.private_reads == frozenset()
    assert results.writeset_metadata == {("cc", "coll", "p"): POLICY}


def test_collection_validator_guards_every_private_call(reader: FakeReader) -> None:
    class OnlyColl:
        def validate_collection(self, namespace: str, collection: str) -> None:
            if collection != "coll":
                raise CollectionError(
                    f"collection {collection} not defined for {namespace}"
                )

    sim = simulator(reader, collections=OnlyColl())
    sim.set_private_data("cc", "coll", "k", b"v")
    calls: list[Callable[[], object]] = [
        lambda: sim.set_private_data("cc", "bad", "k", b"v"),
        lambda: sim.get_private_data("cc", "bad", "k"),
        lambda: sim.get_private_data_hash("cc", "bad", "k"),
        lambda: sim.purge_private_data("cc", "bad", "k"),
    ]
    for call in calls:
        with pytest.raises(CollectionError, match="bad"):
            call()


def test_private_range_returns_plaintext_without_recording(reader: FakeReader) -> None:
    reader.put_private("cc", "coll", "p1", b"a", V1)
    reader.put_private("cc", "coll", "p2", b"b", V1)
    sim = simulator(reader)
    assert pull(sim.get_private_data_range("cc", "coll", "", ""), 5) == ["p1", "p2"]
    assert decode_public(sim.results().public_rwset) == {}


# ---------------------------------------------------------------- Fabric's restrictions


def test_writes_after_paginated_query_are_refused(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.get_state_range_page("cc", "", "", page_size=1)
    with pytest.raises(UnsupportedTransaction, match="paginated"):
        sim.set_state("cc", "k", b"v")


def test_paginated_query_after_write_is_refused(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.set_state("cc", "k", b"v")
    with pytest.raises(UnsupportedTransaction, match="read-only"):
        sim.execute_query_page("cc", "x", page_size=1, bookmark="")


def test_private_range_and_writes_do_not_mix(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.get_private_data_range("cc", "coll", "", "")
    with pytest.raises(UnsupportedTransaction):
        sim.set_private_data("cc", "coll", "k", b"v")
    other = simulator(reader)
    other.set_state("cc", "k", b"v")
    with pytest.raises(UnsupportedTransaction):
        other.get_private_data_range("cc", "coll", "", "")


def test_private_rich_query_returns_plaintext_without_recording(
    reader: FakeReader,
) -> None:
    reader.put_private("cc", "coll", "p1", b"match", V1)
    reader.put_private("cc", "coll", "p2", b"other", V1)
    sim = simulator(reader)
    iterator = sim.execute_query_on_private_data("cc", "coll", "match")
    assert pull(iterator, 5) == ["p1"]
    results = sim.results()
    assert decode_public(results.public_rwset) == {}
    assert results.private_reads == frozenset()


@pytest.mark.parametrize("key", ["", "bad\udc80surrogate"])
def test_invalid_keys_are_refused(reader: FakeReader, key: str) -> None:
    with pytest.raises(InvalidKey):
        simulator(reader).set_state("cc", key, b"v")


def test_done_closes_iterators_and_runs_on_done_once(reader: FakeReader) -> None:
    calls: list[str] = []
    sim = simulator(reader, on_done=lambda: calls.append("done"))
    iterator = sim.get_state_range("cc", "", "")
    iterator.next()
    sim.get_history_for_key("cc", "a").next()
    sim.done()
    sim.done()
    assert calls == ["done"]
    assert reader.closed_sources == 2
    assert iterator.next() is None
    with pytest.raises(UnsupportedTransaction, match="after done"):
        sim.get_state("cc", "a")


def test_results_can_be_taken_once(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.results()
    with pytest.raises(UnsupportedTransaction):
        sim.results()


# ---------------------------------------------------------------- determinism


def test_bytes_do_not_depend_on_call_order(reader: FakeReader) -> None:
    def run(order: list[int]) -> tuple[bytes, bytes]:
        sim = simulator(reader)
        steps: list[Callable[[], object]] = [
            lambda: sim.set_state("zeta", "k2", b"2"),
            lambda: sim.set_state("alpha", "k1", b"1"),
            lambda: sim.get_state("cc", "c"),
            lambda: sim.get_state("cc", "a"),
            lambda: sim.set_private_data("cc", "z-coll", "p", b"x"),
            lambda: sim.set_private_data("cc", "a-coll", "q", b"y"),
            lambda: sim.set_state_metadata("cc", "b", POLICY),
        ]
        for index in order:
            steps[index]()
        results = sim.results()
        return results.public_rwset, results.private_rwset

    forward = run([0, 1, 2, 3, 4, 5, 6])
    assert run([6, 5, 4, 3, 2, 1, 0]) == forward
    message = rwset_pb2.TxReadWriteSet.FromString(forward[0])
    assert message.data_model == rwset_pb2.TxReadWriteSet.KV
    assert [ns.namespace for ns in message.ns_rwset] == ["alpha", "cc", "zeta"]
    cc = message.ns_rwset[1]
    assert [c.collection_name for c in cc.collection_hashed_rwset] == [
        "a-coll",
        "z-coll",
    ]


def test_public_rwset_bytes_match_a_hand_built_message(reader: FakeReader) -> None:
    sim = simulator(reader)
    sim.get_state("cc", "a")
    sim.set_state("cc", "k", b"v")
    kv = kv_rwset_pb2.KVRWSet(
        reads=[kv_rwset_pb2.KVRead(key="a", version=kv_rwset_pb2.Version(block_num=1))],
        writes=[kv_rwset_pb2.KVWrite(key="k", value=b"v")],
    )
    expected = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.KV,
        ns_rwset=[
            rwset_pb2.NsReadWriteSet(namespace="cc", rwset=kv.SerializeToString())
        ],
    )
    assert sim.results().public_rwset == expected.SerializeToString()
