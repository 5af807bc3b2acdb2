"""Compiling checked Mango selectors, sorts and indexes to SQLite SQL.

Every field is looked at through three SQL expressions over the JSON text in
the `val` column (of `state`, or of `pvt_state` for private data): its value
(`json_extract`: numbers, text, 0/1 for booleans, JSON text for arrays and
objects), its JSON type (`json_type`, NULL when missing), and its CouchDB
collation rank (null 0 < false 1 < true 2 < number 3 < string 4 < array 5 <
object 6). Indexes are built on (rank, value) pairs, so a selector that pins a
field's rank and compares its value is an index seek.

Semantics, and where they differ from CouchDB:
- `$eq`/`$ne`/`$in`/`$nin` compare type and value (1 equals 1.0; arrays and
  objects compare as minified JSON text, so key order matters). `$in`/`$nin`
  on an array field test its elements, as CouchDB does.
- `$gt`/`$gte`/`$lt`/`$lte` compare within the argument's type: numbers with
  numbers, strings with strings (code-point order, not ICU collation), booleans
  with booleans. With `null` they follow the collation order, so
  `{"$gt": null}` matches every non-null value. Array or object arguments are
  refused.
- `sort` orders by collation rank, then value, then key; documents missing a
  sort field come first (ascending) instead of being left out.
- A missing field matches nothing except `{"$exists": false}` and negations.
- Empty `$and`/`$or`/`$nor` arrays match everything.
- `$regex` uses Python `re.search` (close to, not identical with, PCRE).
- `_id` is the state key (a string).

The SQL names only the columns `val` and `key` (the latter as `s.key`), which
the public and the private state tables share; `state_filter` picks the rows
of one namespace, or of one collection of a namespace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import count
from typing import Any

from peer.errors import MangoQueryError
from peer.ledger.mango_parse import (
    AllOf,
    AnyOf,
    Condition,
    ElementMatch,
    FieldPath,
    JsonValue,
    Negation,
    Selector,
)

__all__ = [
    "KEY_COLUMN",
    "CompiledSelector",
    "Operand",
    "compile_selector",
    "json_rank",
    "root_operand",
    "sql_literal",
    "state_filter",
]

KEY_COLUMN = "s.key"
_RANK = (
    "CASE {type} WHEN 'null' THEN 0 WHEN 'false' THEN 1 WHEN 'true' THEN 2 "
    "WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 "
    "WHEN 'array' THEN 5 WHEN 'object' THEN 6 END"
)
_SQL_COMPARISON = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_TYPE_TEST = {
    "null": "= 'null'",
    "boolean": "IN ('true', 'false')",
    "number": "IN ('integer', 'real')",
    "string": "= 'text'",
    "array": "= 'array'",
    "object": "= 'object'",
}
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True, slots=True)
class Operand:
    """The SQL expressions that look at one field (or at the key, for `_id`)."""

    value: str
    type: str
    rank: str
    path: str | None  # the JSON path expression; None for the key


@dataclass(frozen=True, slots=True)
class CompiledSelector:
    where: str
    params: tuple[Any, ...]
    ranked: frozenset[FieldPath]  # root fields whose rank the selector fixes
    valued: frozenset[FieldPath]  # root fields whose rank and value it fixes


KEY_OPERAND = Operand(KEY_COLUMN, "'text'", "4", None)


def compile_selector(selector: Selector, guard: str) -> CompiledSelector:
    """The WHERE condition (with ?N parameters) selecting documents that match.

    `guard` (the `state_filter` of the namespace) is repeated inside each branch
    of a top-level OR: SQLite's multi-index OR plan considers a partial index
    for a branch only when the branch itself implies the index's WHERE clause.
    """
    compiler = _Compiler(guard)
    where = compiler.compile(selector, None)
    pinned = list(_pinned(selector))
    return CompiledSelector(
        where,
        tuple(compiler.params),
        ranked=frozenset(path for path, _ in pinned),
        valued=frozenset(path for path, by_value in pinned if by_value),
    )


def state_filter(ns: str, collection: str = "") -> str:
    """The condition every rich query and every Mango index starts with.

    With a collection it selects that collection's rows of `pvt_state`.
    """
    if collection:
        return (
            f"ns = {sql_literal(ns)} AND coll = {sql_literal(collection)} "
            "AND typeof(val) = 'text'"
        )
    return f"ns = {sql_literal(ns)} AND typeof(val) = 'text'"


def json_rank(value: JsonValue) -> int:
    """CouchDB collation rank of a JSON value."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 2 if value else 1
    if isinstance(value, int | float):
        return 3
    if isinstance(value, str):
        return 4
    return 5 if isinstance(value, list) else 6


def sql_literal(text: str) -> str:
    if "\x00" in text:
        raise MangoQueryError(
            f"{text!r} contains U+0000, which cannot appear in a query"
        )
    return "'" + text.replace("'", "''") + "'"


def root_operand(path: FieldPath) -> Operand:
    if path == ("_id",):
        return KEY_OPERAND
    return _field_operand(sql_literal("$" + _path_suffix(path)))


def _field_operand(path_sql: str) -> Operand:
    json_type = f"json_type(val, {path_sql})"
    return Operand(
        value=f"json_extract(val, {path_sql})",
        type=json_type,
        rank=_RANK.format(type=json_type),
        path=path_sql,
    )


def _path_suffix(path: FieldPath) -> str:
    return "".join(f'."{part}"' for part in path)


def _pinned(selector: Selector) -> Iterable[tuple[FieldPath, bool]]:
    """(field, value fixed too) for root fields a top-level conjunct fixes the rank of."""
    if isinstance(selector, AllOf):
        for part in selector.parts:
            yield from _pinned(part)
    elif isinstance(selector, Condition) and selector.path != ("_id",):
        rank = json_rank(selector.argument)
        if selector.operator == "$eq":
            yield selector.path, True
        elif selector.operator in _SQL_COMPARISON and rank in (3, 4):
            yield selector.path, False


class _Compiler:
    """Turns a selector tree into SQL text, collecting numbered parameters."""

    def __init__(self, guard: str) -> None:
        self.params: list[Any] = []
        self._guard = guard
        self._aliases = count(1)

    def compile(self, selector: Selector, element: str | None) -> str:
        if isinstance(selector, AllOf):
            parts = [self.compile(p, element) for p in selector.parts]
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        if isinstance(selector, AnyOf):
            return self._any(
                [self.compile(p, element) for p in selector.parts], element
            )
        if isinstance(selector, Negation):
            return f"(({self.compile(selector.part, element)}) IS NOT 1)"
        operand = self._operand(selector.path, element)
        if isinstance(selector, ElementMatch):
            return self._element_match(operand, selector.selector, every=selector.every)
        return self._condition(operand, selector.operator, selector.argument, element)

    def _operand(self, path: FieldPath, element: str | None) -> Operand:
        if element is None:
            return root_operand(path)
        base = f"{element}.fullkey"
        if path:
            base = f"({base} || {sql_literal(_path_suffix(path))})"
        return _field_operand(base)

    def _param(self, value: Any) -> str:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value not in _INT64
        ):
            value = float(value)
        self.params.append(value)
        return f"?{len(self.params)}"

    def _condition(
        self, operand: Operand, operator: str, argument: JsonValue, element: str | None
    ) -> str:
        if operator == "$eq":
            return self._eq(operand, argument)
        if operator == "$ne":
            return f"({operand.type} IS NOT NULL AND ({self._eq(operand, argument)}) IS NOT 1)"
        if operator in _SQL_COMPARISON:
            return self._compare(operand, _SQL_COMPARISON[operator], argument)
        if operator == "$in":
            return self._in(operand, argument, element)
        if operator == "$nin":
            members = self._in(operand, argument, element)
            return f"({operand.type} IS NOT NULL AND ({members}) IS NOT 1)"
        if operator == "$exists":
            return f"{operand.type} IS {'NOT NULL' if argument else 'NULL'}"
        if operator == "$type":
            return f"{operand.type} {_TYPE_TEST[argument]}"
        return self._array_or_text(operand, operator, argument)

    def _array_or_text(
        self, operand: Operand, operator: str, argument: JsonValue
    ) -> str:
        if operator == "$regex":
            return f"({operand.rank} = 4 AND mango_regex({self._param(argument)}, {operand.value}))"
        if operator == "$mod":
            divisor, remainder = self._param(argument[0]), self._param(argument[1])
            return f"({operand.type} = 'integer' AND {operand.value} % {divisor} = {remainder})"
        if operand.path is None:
            return "0"  # $size / $all: the key is a string, never an array
        if operator == "$size":
            size = self._param(argument)
            return f"({operand.rank} = 5 AND json_array_length(val, {operand.path}) = {size})"
        if operator == "$all":
            if not argument:
                return "0"
            tests = [
                self._exists_element(operand, self._equal_element(a)) for a in argument
            ]
            return f"({operand.rank} = 5 AND " + " AND ".join(tests) + ")"
        raise AssertionError(
            f"operator {operator} passed the parser but has no compiler"
        )

    def _equal_element(self, argument: JsonValue) -> Callable[[str], str]:
        return lambda alias: self._eq(self._operand((), alias), argument)

    def _eq(self, operand: Operand, argument: JsonValue) -> str:
        rank = json_rank(argument)
        if rank <= 2:
            return f"{operand.rank} = {rank}"
        if rank <= 4:
            return f"({operand.rank} = {rank} AND {operand.value} = {self._param(argument)})"
        text = json.dumps(argument, separators=(",", ":"), ensure_ascii=False)
        return (
            f"({operand.rank} = {rank} AND {operand.value} = json({self._param(text)}))"
        )

    def _compare(self, operand: Operand, sql_operator: str, argument: JsonValue) -> str:
        rank = json_rank(argument)
        if rank == 0:
            return f"{operand.rank} {sql_operator} 0"
        if rank <= 2:
            return (
                f"({operand.rank} IN (1, 2) AND {operand.rank} {sql_operator} {rank})"
            )
        value = self._param(argument)
        return f"({operand.rank} = {rank} AND {operand.value} {sql_operator} {value})"

    def _in(
        self, operand: Operand, arguments: list[JsonValue], element: str | None
    ) -> str:
        scalars = [a for a in arguments if not isinstance(a, list)]
        terms = self._in_values(operand, scalars)
        if operand.path is not None and arguments:
            element_test = self._exists_element(
                operand,
                lambda alias: self._any(
                    self._in_values(self._operand((), alias), arguments), alias
                ),
            )
            terms.append(f"({operand.rank} = 5 AND {element_test})")
        return self._any(terms, element)

    def _any(self, terms: list[str], element: str | None) -> str:
        """OR of the terms; at the document root each term carries the guard."""
        if not terms:
            return "0"
        if element is None and len(terms) > 1:
            terms = [f"({self._guard} AND {term})" for term in terms]
        return "(" + " OR ".join(terms) + ")"

    def _in_values(self, operand: Operand, arguments: list[JsonValue]) -> list[str]:
        """Tests for equality with each argument; numbers and strings make one IN list each."""
        terms = []
        for rank in (3, 4):
            same = [a for a in arguments if json_rank(a) == rank]
            if same:
                values = ", ".join(self._param(a) for a in same)
                terms.append(
                    f"({operand.rank} = {rank} AND {operand.value} IN ({values}))"
                )
        return terms + [
            self._eq(operand, a) for a in arguments if json_rank(a) not in (3, 4)
        ]

    def _element_match(
        self, operand: Operand, selector: Selector, *, every: bool
    ) -> str:
        if operand.path is None:
            return "0"
        if not every:
            test = self._exists_element(
                operand, lambda alias: self.compile(selector, alias)
            )
            return f"({operand.rank} = 5 AND {test})"
        alias = f"j{next(self._aliases)}"
        inner = self.compile(selector, alias)
        return (
            f"({operand.rank} = 5 AND json_array_length(val, {operand.path}) > 0 "
            f"AND NOT EXISTS (SELECT 1 FROM json_each(val, {operand.path}) AS {alias} "
            f"WHERE ({inner}) IS NOT 1))"
        )

    def _exists_element(self, operand: Operand, inner: Callable[[str], str]) -> str:
        """EXISTS an element of the array for which `inner(alias)` holds."""
        alias = f"j{next(self._aliases)}"
        condition = inner(alias)
        return (
            f"EXISTS (SELECT 1 FROM json_each(val, {operand.path}) AS {alias} "
            f"WHERE {condition})"
        )
