"""Malformed Mango queries and index definitions fail with a message saying what is wrong."""

from __future__ import annotations

import json

import pytest

from peer.errors import MangoQueryError, QueryError
from peer.ledger.mango_parse import parse_field, parse_index_definition, parse_query


def selector(value: object) -> str:
    return json.dumps({"selector": value})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{not json", "query is not valid JSON"),
        ("[]", "query must be a JSON object, got an array"),
        ("{}", 'query has no "selector"'),
        ('{"selector": []}', '"selector" must be an object, got an array'),
        ('{"selector": {}, "selectr": {}}', r"unknown query field\(s\) \['selectr'\]"),
        (selector({"a": {"$foo": 1}}), r"unknown operator '\$foo'"),
        (selector({"$gt": 1}), r"operator \$gt must be applied to a field"),
        (selector({"a": {"$in": 1}}), r"\$in needs an array, got a number"),
        (selector({"a": {"$nin": "x"}}), r"\$nin needs an array, got a string"),
        (selector({"a": {"$all": {}}}), r"\$all needs an array"),
        (
            selector({"a": {"$size": "2"}}),
            r"\$size needs a non-negative integer, got '2'",
        ),
        (selector({"a": {"$size": -1}}), r"\$size needs a non-negative integer"),
        (selector({"a": {"$size": 1.5}}), r"\$size needs a non-negative integer"),
        (selector({"a": {"$size": True}}), r"\$size needs a non-negative integer"),
        (selector({"a": {"$exists": "yes"}}), r"\$exists needs true or false"),
        (selector({"a": {"$regex": 5}}), r"\$regex needs a string"),
        (selector({"a": {"$regex": "("}}), r"\$regex '\(' is not a valid pattern"),
        (selector({"a": {"$type": "date"}}), r"\$type needs one of"),
        (selector({"a": {"$mod": [0, 1]}}), r"\$mod needs \[divisor, remainder\]"),
        (selector({"a": {"$mod": [2]}}), r"\$mod needs \[divisor, remainder\]"),
        (selector({"a": {"$gt": [1]}}), r"\$gt cannot compare with an array or object"),
        (selector({"$and": {}}), r"\$and needs an array of selectors"),
        (selector({"$or": [1]}), r"\$or needs an array of selectors"),
        (selector({"$nor": "x"}), r"\$nor needs an array of selectors"),
        (selector({"$not": []}), r"\$not needs an object"),
        (selector({"a": {"$elemMatch": 1}}), r"\$elemMatch needs an object"),
        (selector({"a..b": 1}), "field name 'a..b' has an empty part"),
        (selector({'a"b': 1}), "is not supported"),
        ('{"selector": {}, "sort": "a"}', '"sort" must be an array, got a string'),
        (
            '{"selector": {}, "sort": [{"a": "up"}]}',
            'must be "asc" or "desc", got \'up\'',
        ),
        (
            '{"selector": {}, "sort": [{"a": "asc", "b": "asc"}]}',
            "entries must be field names",
        ),
        ('{"selector": {}, "sort": [1]}', "entries must be field names"),
        (
            '{"selector": {}, "limit": -1}',
            '"limit" must be a non-negative integer, got -1',
        ),
        ('{"selector": {}, "limit": "5"}', '"limit" must be a non-negative integer'),
        ('{"selector": {}, "skip": 1.5}', '"skip" must be a non-negative integer'),
        ('{"selector": {}, "fields": "a"}', '"fields" must be an array of field names'),
        ('{"selector": {}, "use_index": 5}', '"use_index" must be'),
        ('{"selector": {}, "use_index": ["a", "b", "c"]}', '"use_index" must be'),
    ],
)
def test_bad_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(MangoQueryError, match=message):
        parse_query(query)


def test_deep_nesting_is_refused() -> None:
    deep: dict[str, object] = {"a": 1}
    for _ in range(100):
        deep = {"$and": [deep]}

    with pytest.raises(MangoQueryError, match="nested deeper than"):
        parse_query(selector(deep))


def test_mango_errors_are_query_errors() -> None:
    assert issubclass(MangoQueryError, QueryError)


def test_ignorable_couchdb_options_are_accepted() -> None:
    query = parse_query('{"selector": {"a": 1}, "execution_stats": true, "r": 1}')

    assert query.limit is None


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("[1]", "index definition must be a JSON object"),
        ('{"name": "x"}', 'needs an "index" object'),
        ('{"index": {}}', '"index.fields" must be an array'),
        ('{"index": {"fields": []}}', '"index.fields" must be a non-empty array'),
        (
            '{"index": {"fields": ["a"]}, "type": "text"}',
            'only "json" indexes are supported',
        ),
        (
            '{"index": {"fields": ["a"], "partial_filter_selector": {}}}',
            "not supported",
        ),
        ('{"index": {"fields": ["a"]}, "name": 5}', '"name" and "ddoc" of an index'),
    ],
)
def test_bad_index_definitions_say_what_is_wrong(definition: str, message: str) -> None:
    with pytest.raises(MangoQueryError, match=message):
        parse_index_definition(definition)


def test_index_definition_defaults_and_design_prefix() -> None:
    definition = parse_index_definition(
        '{"index": {"fields": ["owner", {"size": "desc"}]}, "ddoc": "_design/d", "name": "n"}'
    )

    assert (definition.ddoc, definition.name) == ("d", "n")
    assert [(f.path, f.descending) for f in definition.fields] == [
        (("owner",), False),
        (("size",), True),
    ]


def test_field_names_split_on_unescaped_dots() -> None:
    assert parse_field("a.b.c") == ("a", "b", "c")
    assert parse_field("a\\.b.c") == ("a.b", "c")
