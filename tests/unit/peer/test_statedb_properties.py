"""The state database against a plain dict model, and composite keys, by hypothesis."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.errors import InvalidKey
from peer.ledger.keys import (
    MAX_UNICODE_RUNE,
    create_composite_key,
    partial_composite_key_range,
    split_composite_key,
    validate_simple_key,
)
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import (
    UpdateBatch,
    Version,
    apply_updates,
    get_state,
    get_state_range,
    get_state_range_page,
    get_versions,
    savepoint,
)

# Characters chosen to stress UTF-8 ordering: ASCII, 2/3/4-byte sequences, U+0000.
KEY_ALPHABET = st.sampled_from(
    ["\x00", "\x01", "a", "b", "z", "é", "\uffff", "\U0010fffe"]
)
KEYS = st.text(KEY_ALPHABET, min_size=1, max_size=4)
BOUNDS = st.text(KEY_ALPHABET, max_size=4)
NAMESPACES = st.sampled_from(["cc", "other"])
PART = st.text(
    st.sampled_from(["a", "b", "é", "\uffff", "\U0010fffe", " "]), max_size=3
)


@dataclass(frozen=True)
class Op:
    ns: str
    key: str
    value: bytes | None  # None: delete


OPS = st.builds(Op, NAMESPACES, KEYS, st.one_of(st.none(), st.binary(max_size=6)))
BLOCKS = st.lists(st.lists(OPS, max_size=8), max_size=5)

Model = dict[tuple[str, str], tuple[bytes, Version]]


@contextmanager
def committed(blocks: list[list[Op]]) -> Iterator[tuple[sqlite3.Connection, Model]]:
    """A fresh database and the dict model, both with the blocks applied."""
    conn = open_channel_db(":memory:")
    try:
        yield conn, commit_blocks(conn, blocks)
    finally:
        conn.close()


def commit_blocks(conn: sqlite3.Connection, blocks: list[list[Op]]) -> Model:
    model: Model = {}
    for block_num, ops in enumerate(blocks, start=1):
        batch = UpdateBatch()
        for tx_num, op in enumerate(ops):
            version = Version(block_num, tx_num)
            if op.value is None:
                batch.delete(op.ns, op.key, version)
                model.pop((op.ns, op.key), None)
            else:
                batch.put(op.ns, op.key, op.value, version)
                model[(op.ns, op.key)] = (op.value, version)
        apply_updates(conn, batch, savepoint=block_num)
    return model


def model_range(
    model: Model, ns: str, start: str, end: str
) -> list[tuple[str, bytes, Version]]:
    def in_range(key: str) -> bool:
        after_start = key.encode() >= start.encode()
        return after_start and (end == "" or key.encode() < end.encode())

    keys = sorted((k for n, k in model if n == ns and in_range(k)), key=str.encode)
    return [(k, *model[(ns, k)]) for k in keys]


@settings(max_examples=60, deadline=None)
@given(blocks=BLOCKS)
def test_point_reads_and_versions_match_the_model(blocks: list[list[Op]]) -> None:
    with committed(blocks) as (conn, model):
        for (ns, key), (value, version) in model.items():
            found = get_state(conn, ns, key)
            assert found is not None
            assert (found.value, found.version) == (value, version)
        probes = [(op.ns, op.key) for ops in blocks for op in ops]
        expected = {k: v[1] for k, v in model.items()}
        assert get_versions(conn, probes) == expected
        for ns, key in probes:
            if (ns, key) not in model:
                assert get_state(conn, ns, key) is None
        assert savepoint(conn) == (len(blocks) or None)


@settings(max_examples=60, deadline=None)
@given(blocks=BLOCKS, ns=NAMESPACES, start=BOUNDS, end=BOUNDS)
def test_ranges_match_the_model(
    blocks: list[list[Op]], ns: str, start: str, end: str
) -> None:
    with committed(blocks) as (conn, model):
        got = [
            (kv.key, kv.value, kv.version)
            for kv in get_state_range(conn, ns, start, end)
        ]

    assert got == model_range(model, ns, start, end)


@settings(max_examples=60, deadline=None)
@given(
    blocks=BLOCKS, ns=NAMESPACES, start=BOUNDS, end=BOUNDS, page_size=st.integers(1, 4)
)
def test_pages_concatenate_to_the_full_range(
    blocks: list[list[Op]], ns: str, start: str, end: str, page_size: int
) -> None:
    pages, bookmark = [], ""
    with committed(blocks) as (conn, model):
        while True:
            page = get_state_range_page(
                conn, ns, start, end, page_size=page_size, bookmark=bookmark
            )
            assert page.fetched_records_count <= page_size
            pages.append(page)
            bookmark = page.bookmark
            if not bookmark:
                break

    got = [(kv.key, kv.value, kv.version) for page in pages for kv in page.records]
    assert got == model_range(model, ns, start, end)
    assert all(p.fetched_records_count == page_size for p in pages[:-1])


@settings(max_examples=80, deadline=None)
@given(object_type=PART, attributes=st.lists(PART, max_size=3))
def test_composite_keys_split_back(object_type: str, attributes: list[str]) -> None:
    key = create_composite_key(object_type, attributes)

    assert key.startswith("\x00")
    assert split_composite_key(key) == (object_type, tuple(attributes))


@settings(max_examples=50, deadline=None)
@given(
    stored=st.lists(st.tuples(PART, st.lists(PART, max_size=3)), max_size=12),
    query_type=PART,
    query_attributes=st.lists(PART, max_size=2),
    simple=st.lists(
        st.text(st.sampled_from("ab\uffff"), min_size=1, max_size=3), max_size=3
    ),
)
def test_partial_composite_queries_return_exactly_the_matching_keys(
    stored: list[tuple[str, list[str]]],
    query_type: str,
    query_attributes: list[str],
    simple: list[str],
) -> None:
    keys = {create_composite_key(t, a): (t, tuple(a)) for t, a in stored}
    ops = [Op("cc", key, b"v") for key in [*keys, *simple]]
    start, end = partial_composite_key_range(query_type, query_attributes)

    with committed([ops]) as (conn, _):
        got = [kv.key for kv in get_state_range(conn, "cc", start, end)]

    n = len(query_attributes)
    expected = [
        k
        for k, (t, a) in keys.items()
        if t == query_type and a[:n] == tuple(query_attributes) and len(a) >= n
    ]
    assert got == sorted(expected, key=str.encode)


def test_partial_range_ends_at_the_largest_code_point() -> None:
    assert partial_composite_key_range("asset", ["red"]) == (
        "\x00asset\x00red\x00",
        "\x00asset\x00red\x00" + MAX_UNICODE_RUNE,
    )


@pytest.mark.parametrize(
    ("object_type", "attributes", "message"),
    [
        ("a\x00b", [], "U\\+0000"),
        ("asset", ["x\U0010ffff"], "U\\+10FFFF"),
        ("asset", ["\ud800"], "not valid UTF-8"),
    ],
)
def test_composite_key_parts_are_validated(
    object_type: str, attributes: list[str], message: str
) -> None:
    with pytest.raises(InvalidKey, match=message):
        create_composite_key(object_type, attributes)


@pytest.mark.parametrize("key", ["plain", "\x01a", "a\x00b"])
def test_split_rejects_simple_keys(key: str) -> None:
    with pytest.raises(InvalidKey, match="not a composite key"):
        split_composite_key(key)


def test_simple_keys_may_not_start_with_u0000() -> None:
    validate_simple_key("asset1")
    with pytest.raises(InvalidKey, match="reserved for composite keys"):
        validate_simple_key("\x00asset\x00")
    with pytest.raises(InvalidKey, match="UTF-8"):
        validate_simple_key("\udcff")
