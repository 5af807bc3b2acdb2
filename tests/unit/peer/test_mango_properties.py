"""Mango in SQL against a Python reference of the documented semantics, by hypothesis."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from peer.ledger.mango import get_query_result, get_query_result_page
from peer.ledger.mango_parse import (
    AllOf,
    AnyOf,
    Condition,
    ElementMatch,
    Negation,
    Selector,
    parse_query,
)
from peer.ledger.schema import open_channel_db
from peer.ledger.statedb import UpdateBatch, Version, apply_updates

MISSING = object()

# ---------------------------------------------------------------- the reference


def rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 2 if value else 1
    if isinstance(value, int | float):
        return 3
    if isinstance(value, str):
        return 4
    return 5 if isinstance(value, list) else 6


def equal(a: Any, b: Any) -> bool:
    if rank(a) != rank(b):
        return False
    if rank(a) >= 5:
        return json.dumps(a, separators=(",", ":")) == json.dumps(
            b, separators=(",", ":")
        )
    return bool(a == b)


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return MISSING
        document = document[part]
    return document


COMPARE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def matches(selector: Selector, document: Any) -> bool:
    if isinstance(selector, AllOf):
        return all(matches(p, document) for p in selector.parts)
    if isinstance(selector, AnyOf):
        return any(matches(p, document) for p in selector.parts)
    if isinstance(selector, Negation):
        return not matches(selector.part, document)
    value = lookup(document, selector.path)
    if isinstance(selector, ElementMatch):
        if not isinstance(value, list):
            return False
        results = [matches(selector.selector, element) for element in value]
        return all(results) and bool(results) if selector.every else any(results)
    if value is MISSING:
        return selector.operator == "$exists" and selector.argument is False
    return condition(selector, value)


def condition(selector: Condition, value: Any) -> bool:
    operator, argument = selector.operator, selector.argument
    if operator == "$eq":
        return equal(value, argument)
    if operator == "$ne":
        return not equal(value, argument)
    if operator in COMPARE:
        return compare(operator, value, argument)
    if operator in ("$in", "$nin"):
        found = any(equal(value, a) for a in argument if not isinstance(a, list))
        if isinstance(value, list):
            found = found or any(equal(e, a) for e in value for a in argument)
        return found if operator == "$in" else not found
    if operator == "$exists":
        return bool(argument)
    if operator == "$size":
        return isinstance(value, list) and len(value) == argument
    if operator == "$regex":
        return isinstance(value, str) and re.search(argument, value) is not None
    if operator == "$mod":
        is_integer = isinstance(value, int) and not isinstance(value, bool)
        return is_integer and math.fmod(value, argument[0]) == argument[1]
    raise AssertionError(operator)


def compare(operator: str, value: Any, argument: Any) -> bool:
    if argument is None:
        return bool(COMPARE[operator](rank(value), 0))
    if isinstance(argument, bool):
        return rank(value) in (1, 2) and bool(
            COMPARE[operator](rank(value), rank(argument))
        )
    return rank(value) == rank(argument) and bool(COMPARE[operator](value, argument))


# ---------------------------------------------------------------- strategies

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.sampled_from(["", "a", "ab", "b", "é", "B"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "a": VALUES,
        "b": SCALARS,
        "c": st.one_of(SCALARS, st.fixed_dictionaries({}, optional={"d": VALUES})),
        "tags": st.lists(SCALARS, max_size=3),
    },
)
FIELDS = st.sampled_from(["a", "b", "c.d", "tags"])


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    simple = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), VALUES),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), SCALARS),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(VALUES, max_size=3)),
        st.tuples(st.just("$exists"), st.booleans()),
        st.tuples(st.just("$size"), st.integers(0, 3)),
        st.tuples(st.just("$regex"), st.sampled_from(["^a", "b", "é$", "^$"])),
        st.tuples(st.just("$mod"), st.sampled_from([[2, 0], [2, 1], [3, -1]])),
    )
    return simple.map(lambda pair: {pair[0]: pair[1]})


def selectors() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.builds(lambda f, c: {f: c}, FIELDS, st.one_of(conditions(), SCALARS))
    element = st.builds(
        lambda f, op, c: {f: {op: c}},
        st.sampled_from(["a", "tags"]),
        st.sampled_from(["$elemMatch", "$allMatch"]),
        conditions(),
    )
    return st.recursive(
        st.one_of(leaf, element),
        lambda inner: st.one_of(
            st.builds(
                lambda op, parts: {op: parts},
                st.sampled_from(["$and", "$or", "$nor"]),
                st.lists(inner, max_size=3),
            ),
            st.builds(lambda part: {"$not": part}, inner),
        ),
        max_leaves=5,
    )


def load(documents: list[dict[str, Any]]) -> sqlite3.Connection:
    conn = open_channel_db(":memory:")
    batch = UpdateBatch()
    for i, document in enumerate(documents):
        batch.put("cc", f"k{i:02d}", json.dumps(document).encode(), Version(1, i))
    apply_updates(conn, batch, savepoint=1)
    return conn


@settings(max_examples=150, deadline=None)
@given(documents=st.lists(DOCUMENTS, max_size=8), selector=selectors())
def test_sql_agrees_with_the_reference(
    documents: list[dict[str, Any]], selector: dict[str, Any]
) -> None:
    query = json.dumps({"selector": selector})
    conn = load(documents)
    try:
        got = [kv.key for kv in get_query_result(conn, "cc", query)]
    finally:
        conn.close()

    parsed = parse_query(query).selector
    expected = [f"k{i:02d}" for i, d in enumerate(documents) if matches(parsed, d)]
    assert got == expected, query


def sort_key(document: Any, field: str) -> tuple[Any, ...]:
    value = lookup(document, (field,))
    if value is MISSING:
        return (-1, 0)
    return (rank(value), 0 if value is None else value)


@settings(max_examples=80, deadline=None)
@given(
    documents=st.lists(st.fixed_dictionaries({}, optional={"b": SCALARS}), max_size=10),
    descending=st.booleans(),
    page_size=st.integers(1, 4),
)
def test_sort_follows_collation_order_and_pages_concatenate(
    documents: list[dict[str, Any]], descending: bool, page_size: int
) -> None:
    direction = "desc" if descending else "asc"
    query = json.dumps({"selector": {}, "sort": [{"b": direction}]})
    conn = load(documents)
    try:
        full = [kv.key for kv in get_query_result(conn, "cc", query)]
        paged: list[str] = []
        bookmark = ""
        while True:
            page = get_query_result_page(
                conn, "cc", query, page_size=page_size, bookmark=bookmark
            )
            paged += [kv.key for kv in page.records]
            if not (bookmark := page.bookmark):
                break
    finally:
        conn.close()

    keyed = [(sort_key(d, "b"), f"k{i:02d}") for i, d in enumerate(documents)]
    expected = [key for _, key in sorted(keyed, reverse=descending)]
    assert full == expected
    assert paged == full
