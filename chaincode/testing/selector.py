"""A small subset of CouchDB Mango selectors, for rich queries against the mock ledger.

Supported: `{"selector": {...}}` with field conditions (dotted paths for nested
fields) that are either a value (equality) or an object of operators `$eq`, `$ne`,
`$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`; and the combinators `$and`,
`$or`, `$not`. Other query keys (`sort`, `fields`, `use_index`, ...) are ignored; an
unsupported operator raises. Only JSON object values can match.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

_MISSING = object()


class SelectorError(ValueError):
    """The query is not JSON, has no selector, or uses an unsupported operator."""


def compile_query(query: str) -> Callable[[bytes], bool]:
    """A predicate over state values for a Mango query string.

    Raises:
        SelectorError: see the class.
    """
    try:
        document = json.loads(query)
    except ValueError as error:
        raise SelectorError(f"query is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("selector"), dict):
        raise SelectorError('query must be a JSON object with a "selector" object')
    selector: Mapping[str, object] = document["selector"]
    _check(selector)

    def matches(value: bytes) -> bool:
        try:
            record = json.loads(value)
        except ValueError:
            return False
        return isinstance(record, dict) and _matches(selector, record)

    return matches


_COMPARISONS: Mapping[str, Callable[[object, object], bool]] = {
    "$eq": lambda actual, wanted: actual is not _MISSING and actual == wanted,
    "$ne": lambda actual, wanted: actual != wanted,
    "$gt": lambda actual, wanted: _order(actual, wanted) in (1,),
    "$gte": lambda actual, wanted: _order(actual, wanted) in (0, 1),
    "$lt": lambda actual, wanted: _order(actual, wanted) in (-1,),
    "$lte": lambda actual, wanted: _order(actual, wanted) in (-1, 0),
    "$in": lambda actual, wanted: isinstance(wanted, list) and actual in wanted,
    "$nin": lambda actual, wanted: isinstance(wanted, list) and actual not in wanted,
    "$exists": lambda actual, wanted: (actual is not _MISSING) == bool(wanted),
}
_COMBINATORS = frozenset({"$and", "$or", "$not"})


def _check(selector: Mapping[str, object]) -> None:
    for field, condition in selector.items():
        if field in _COMBINATORS:
            parts = condition if isinstance(condition, list) else [condition]
            for part in parts:
                if not isinstance(part, dict):
                    raise SelectorError(f"{field} takes selector objects")
                _check(part)
        elif field.startswith("$"):
            raise SelectorError(f"unsupported selector operator {field}")
        elif isinstance(condition, dict):
            unknown = [op for op in condition if op not in _COMPARISONS]
            if unknown:
                raise SelectorError(f"unsupported condition operator {unknown[0]}")


def _matches(selector: Mapping[str, object], record: Mapping[str, object]) -> bool:
    return all(
        _field_matches(field, condition, record)
        for field, condition in selector.items()
    )


def _field_matches(field: str, condition: object, record: Mapping[str, object]) -> bool:
    if field == "$and":
        return all(_matches(part, record) for part in _parts(condition))
    if field == "$or":
        return any(_matches(part, record) for part in _parts(condition))
    if field == "$not":
        return not _matches(_parts(condition)[0], record)
    actual = _lookup(record, field)
    if isinstance(condition, dict):
        return all(_COMPARISONS[op](actual, wanted) for op, wanted in condition.items())
    return actual is not _MISSING and actual == condition


def _parts(condition: object) -> list[Mapping[str, object]]:
    parts = condition if isinstance(condition, list) else [condition]
    return [part for part in parts if isinstance(part, dict)]


def _lookup(record: Mapping[str, object], path: str) -> object:
    value: object = record
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _order(actual: object, wanted: object) -> int | None:
    """-1, 0 or 1 comparing two numbers or two strings; None when not comparable."""
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return (actual > wanted) - (actual < wanted)
    if isinstance(actual, str) and isinstance(wanted, str):
        return (actual > wanted) - (actual < wanted)
    return None
