"""The Mango selector subset the mock ledger answers rich queries with."""

from __future__ import annotations

import json

import pytest

from chaincode.testing import SelectorError, compile_query

RECORD = json.dumps(
    {"color": "blue", "size": 5, "owner": {"name": "Tom", "org": "Org1"}, "tags": ["a"]}
).encode()


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({"color": "blue"}, True),
        ({"color": "red"}, False),
        ({"owner.name": "Tom"}, True),
        ({"owner.missing": None}, False),
        ({"size": {"$gt": 4, "$lte": 5}}, True),
        ({"size": {"$lt": 5}}, False),
        ({"color": {"$gte": "b"}}, True),
        ({"size": {"$gt": "4"}}, False),
        ({"color": {"$in": ["red", "blue"]}}, True),
        ({"color": {"$nin": ["blue"]}}, False),
        ({"color": {"$ne": "red"}}, True),
        ({"owner.org": {"$exists": True}, "weight": {"$exists": False}}, True),
        ({"$or": [{"color": "red"}, {"size": 5}]}, True),
        ({"$and": [{"color": "blue"}, {"size": 6}]}, False),
        ({"$not": {"color": "red"}}, True),
        ({"tags": ["a"]}, True),
    ],
)
def test_selector_matching(selector: dict[str, object], matches: bool) -> None:
    predicate = compile_query(
        json.dumps({"selector": selector, "sort": [{"size": "asc"}]})
    )
    assert predicate(RECORD) is matches


def test_values_that_are_not_json_objects_never_match() -> None:
    predicate = compile_query('{"selector": {}}')
    assert predicate(RECORD)
    assert not predicate(b"not json")
    assert not predicate(b"[1, 2]")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("not json", "not JSON"),
        ('{"fields": []}', "selector"),
        ('{"selector": {"$nor": []}}', "unsupported selector operator"),
        ('{"selector": {"size": {"$regex": "x"}}}', "unsupported condition operator"),
        ('{"selector": {"$or": [1]}}', "selector objects"),
    ],
)
def test_unsupported_queries_are_refused(query: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        compile_query(query)
