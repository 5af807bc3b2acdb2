"""Parsing and checking Mango (CouchDB `_find`) queries and index definitions.

The result is a small tree of frozen dataclasses that `mango_sql` compiles to
SQL. Everything a chaincode can get wrong is caught here and reported as a
`MangoQueryError` whose message says what is wrong and where.

Selector rules (as in CouchDB): keys starting with "$" are operators, other keys
are field names ("a.b" is nested, "a\\.b" is a field named "a.b"); a field whose
value is not an object is an implicit `$eq`; an object with non-operator keys
selects sub-fields; several keys in one object are an implicit `$and`;
combination operators (`$and`, `$or`, `$nor`, `$not`) may also appear under a
field and then apply to it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from peer.errors import MangoQueryError

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "ElementMatch",
    "FieldPath",
    "IndexDefinition",
    "MangoQuery",
    "Negation",
    "Selector",
    "SortField",
    "parse_field",
    "parse_index_definition",
    "parse_query",
]

JsonValue: TypeAlias = (
    Any  # None | bool | int | float | str | list | dict, from json.loads
)
FieldPath: TypeAlias = tuple[str, ...]

COMPARISON_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
RANGE_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})
LIST_OPERATORS = frozenset({"$in", "$nin", "$all"})
VALUE_OPERATORS = (
    COMPARISON_OPERATORS
    | LIST_OPERATORS
    | {
        "$exists",
        "$type",
        "$size",
        "$mod",
        "$regex",
    }
)
ELEMENT_OPERATORS = frozenset({"$elemMatch", "$allMatch"})
COMBINATION_OPERATORS = frozenset({"$and", "$or", "$nor", "$not"})
JSON_TYPES = ("null", "boolean", "number", "string", "array", "object")

_QUERY_KEYS = frozenset({"selector", "fields", "sort", "limit", "skip", "use_index"})
# CouchDB options with no meaning here; accepted and ignored.
_IGNORED_QUERY_KEYS = frozenset(
    {"r", "conflicts", "execution_stats", "update", "stable", "stale"}
)
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Condition:
    """`path` satisfies `operator` with `argument`; path () is the current array element."""

    path: FieldPath
    operator: str
    argument: JsonValue


@dataclass(frozen=True, slots=True)
class ElementMatch:
    """Some (`every` False: `$elemMatch`) or all (`$allMatch`) elements of an array match."""

    path: FieldPath
    selector: Selector
    every: bool


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Selector, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Selector, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    part: Selector


Selector: TypeAlias = Condition | ElementMatch | AllOf | AnyOf | Negation


@dataclass(frozen=True, slots=True)
class SortField:
    path: FieldPath
    descending: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MangoQuery:
    """A checked query; `fingerprint` identifies it for bookmark validation."""

    selector: Selector
    fields: tuple[FieldPath, ...] = ()
    sort: tuple[SortField, ...] = ()
    limit: int | None = None
    skip: int = 0
    use_index: tuple[str, str | None] | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """A chaincode-shipped CouchDB index (`META-INF/statedb/couchdb/indexes/*.json`)."""

    ddoc: str
    name: str
    fields: tuple[SortField, ...]


def parse_query(text: str | bytes) -> MangoQuery:
    """Parse and check a Mango query string such as `{"selector": {...}, "sort": [...]}`."""
    document = _load_object(text, "query")
    unknown = set(document) - _QUERY_KEYS - _IGNORED_QUERY_KEYS
    if unknown:
        raise MangoQueryError(
            f"unknown query field(s) {sorted(unknown)}; "
            f"supported: {sorted(_QUERY_KEYS)}"
        )
    if "selector" not in document:
        raise MangoQueryError('query has no "selector"')
    selector = document["selector"]
    if not isinstance(selector, dict):
        raise MangoQueryError(f'"selector" must be an object, got {_kind(selector)}')
    canonical = json.dumps(
        {k: document[k] for k in sorted(_QUERY_KEYS & set(document))}, sort_keys=True
    )
    return MangoQuery(
        selector=_parse_selector(selector, (), in_element=False, depth=0),
        fields=_parse_fields(document.get("fields", [])),
        sort=_parse_sort(document.get("sort", []), "sort"),
        limit=_parse_count(document, "limit"),
        skip=_parse_count(document, "skip") or 0,
        use_index=_parse_use_index(document.get("use_index")),
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest()[:16],
    )


def parse_index_definition(text: str | bytes) -> IndexDefinition:
    """Parse a CouchDB index definition as chaincode packages ship them."""
    document = _load_object(text, "index definition")
    index = document.get("index")
    if not isinstance(index, dict):
        raise MangoQueryError('index definition needs an "index" object with "fields"')
    if "partial_filter_selector" in index:
        raise MangoQueryError("partial_filter_selector indexes are not supported")
    fields = _parse_sort(index.get("fields"), "index.fields")
    if not fields:
        raise MangoQueryError('"index.fields" must be a non-empty array of field names')
    index_type = document.get("type", "json")
    if index_type != "json":
        raise MangoQueryError(
            f'only "json" indexes are supported, got type {index_type!r}'
        )
    name = document.get("name") or _default_index_name(fields)
    ddoc = document.get("ddoc") or name
    if not isinstance(name, str) or not isinstance(ddoc, str):
        raise MangoQueryError('"name" and "ddoc" of an index must be strings')
    return IndexDefinition(ddoc=_strip_design(ddoc), name=name, fields=fields)


def parse_field(name: str) -> FieldPath:
    """Split a field name on unescaped dots: "a.b" → ("a", "b"), "a\\.b" → ("a.b",)."""
    if not isinstance(name, str) or not name:
        raise MangoQueryError(f"field name must be a non-empty string, got {name!r}")
    parts = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", name)]
    if any(part == "" for part in parts):
        raise MangoQueryError(f"field name {name!r} has an empty part")
    if any('"' in part for part in parts):
        raise MangoQueryError(
            f"field name {name!r} contains '\"', which is not supported"
        )
    return tuple(parts)


# ---------------------------------------------------------------- selectors


def _parse_selector(
    selector: dict[str, JsonValue], path: FieldPath, *, in_element: bool, depth: int
) -> Selector:
    if depth > _MAX_DEPTH:
        raise MangoQueryError(f"selector is nested deeper than {_MAX_DEPTH} levels")
    parts: list[Selector] = []
    for key, value in selector.items():
        if key.startswith("$"):
            parts.append(_parse_operator(key, value, path, in_element, depth + 1))
        else:
            parts.append(
                _parse_field_value(path + parse_field(key), value, in_element, depth)
            )
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_field_value(
    path: FieldPath, value: JsonValue, in_element: bool, depth: int
) -> Selector:
    if isinstance(value, dict) and value:
        return _parse_selector(value, path, in_element=in_element, depth=depth + 1)
    return Condition(path, "$eq", value)


def _parse_operator(
    operator: str, argument: JsonValue, path: FieldPath, in_element: bool, depth: int
) -> Selector:
    if operator in COMBINATION_OPERATORS:
        return _parse_combination(operator, argument, path, in_element, depth)
    if operator not in VALUE_OPERATORS and operator not in ELEMENT_OPERATORS:
        supported = sorted(VALUE_OPERATORS | ELEMENT_OPERATORS | COMBINATION_OPERATORS)
        raise MangoQueryError(f"unknown operator {operator!r}; supported: {supported}")
    if not path and not in_element:
        raise MangoQueryError(
            f"operator {operator} must be applied to a field, "
            f'as in {{"field": {{"{operator}": ...}}}}'
        )
    if operator in ELEMENT_OPERATORS:
        if not isinstance(argument, dict):
            raise MangoQueryError(
                f"{operator} needs an object (a selector), got {_kind(argument)}"
            )
        inner = _parse_selector(argument, (), in_element=True, depth=depth)
        return ElementMatch(path, inner, every=operator == "$allMatch")
    _check_argument(operator, argument)
    return Condition(path, operator, argument)


def _parse_combination(
    operator: str, argument: JsonValue, path: FieldPath, in_element: bool, depth: int
) -> Selector:
    if operator == "$not":
        if not isinstance(argument, dict):
            raise MangoQueryError(
                f"$not needs an object (a selector), got {_kind(argument)}"
            )
        return Negation(
            _parse_selector(argument, path, in_element=in_element, depth=depth)
        )
    if not isinstance(argument, list) or not all(isinstance(a, dict) for a in argument):
        raise MangoQueryError(f"{operator} needs an array of selectors (objects)")
    parts = tuple(
        _parse_selector(item, path, in_element=in_element, depth=depth)
        for item in argument
    )
    if operator == "$and":
        return AllOf(parts)
    if operator == "$or":
        return AnyOf(parts) if parts else AllOf(())
    return Negation(AnyOf(parts)) if parts else AllOf(())


def _check_argument(operator: str, argument: JsonValue) -> None:
    if operator in RANGE_OPERATORS and isinstance(argument, list | dict):
        raise MangoQueryError(f"{operator} cannot compare with an array or object")
    if operator in LIST_OPERATORS and not isinstance(argument, list):
        raise MangoQueryError(f"{operator} needs an array, got {_kind(argument)}")
    if operator == "$exists" and not isinstance(argument, bool):
        raise MangoQueryError(f"$exists needs true or false, got {_kind(argument)}")
    if operator == "$type" and argument not in JSON_TYPES:
        raise MangoQueryError(
            f"$type needs one of {list(JSON_TYPES)}, got {argument!r}"
        )
    if operator == "$size" and not (_is_integer(argument) and argument >= 0):
        raise MangoQueryError(f"$size needs a non-negative integer, got {argument!r}")
    if operator == "$mod":
        _check_mod(argument)
    if operator == "$regex":
        _check_regex(argument)


def _check_mod(argument: JsonValue) -> None:
    if not (
        isinstance(argument, list)
        and len(argument) == 2
        and all(_is_integer(a) for a in argument)
        and argument[0] != 0
    ):
        raise MangoQueryError(
            f"$mod needs [divisor, remainder] with integers and a non-zero divisor, "
            f"got {argument!r}"
        )


def _check_regex(argument: JsonValue) -> None:
    if not isinstance(argument, str):
        raise MangoQueryError(f"$regex needs a string, got {_kind(argument)}")
    try:
        re.compile(argument)
    except re.error as error:
        raise MangoQueryError(
            f"$regex {argument!r} is not a valid pattern: {error}"
        ) from error


# ---------------------------------------------------------------- options


def _parse_fields(fields: JsonValue) -> tuple[FieldPath, ...]:
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise MangoQueryError('"fields" must be an array of field names')
    return tuple(parse_field(f) for f in fields)


def _parse_sort(sort: JsonValue, where: str) -> tuple[SortField, ...]:
    if not isinstance(sort, list):
        raise MangoQueryError(f'"{where}" must be an array, got {_kind(sort)}')
    return tuple(_parse_sort_item(item, where) for item in sort)


def _parse_sort_item(item: JsonValue, where: str) -> SortField:
    if isinstance(item, str):
        return SortField(parse_field(item))
    if isinstance(item, dict) and len(item) == 1:
        ((name, direction),) = item.items()
        if direction in ("asc", "desc"):
            return SortField(parse_field(name), descending=direction == "desc")
        raise MangoQueryError(
            f'"{where}" direction for {name!r} must be "asc" or "desc", got {direction!r}'
        )
    raise MangoQueryError(
        f'"{where}" entries must be field names or {{"field": "asc"|"desc"}}, got {item!r}'
    )


def _parse_count(document: dict[str, JsonValue], name: str) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    if not _is_integer(value) or value < 0:
        raise MangoQueryError(f'"{name}" must be a non-negative integer, got {value!r}')
    return int(value)


def _parse_use_index(value: JsonValue) -> tuple[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return _strip_design(value), None
    if (
        isinstance(value, list)
        and 1 <= len(value) <= 2
        and all(isinstance(v, str) and v for v in value)
    ):
        return _strip_design(value[0]), (value[1] if len(value) == 2 else None)
    raise MangoQueryError(
        f'"use_index" must be "design-doc" or ["design-doc", "index-name"], got {value!r}'
    )


def _strip_design(ddoc: str) -> str:
    return ddoc.removeprefix("_design/")


def _default_index_name(fields: tuple[SortField, ...]) -> str:
    text = json.dumps([[list(f.path), f.descending] for f in fields])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _load_object(text: str | bytes, what: str) -> dict[str, JsonValue]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise MangoQueryError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise MangoQueryError(f"{what} must be a JSON object, got {_kind(document)}")
    return document


def _is_integer(value: JsonValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: JsonValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
