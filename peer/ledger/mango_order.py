"""Ordering of Mango results: ORDER BY columns, keyset seeks and index columns.

Results are ordered by each sort field's collation rank and value, then by the
key, so the order is total and a page can resume strictly after the last row it
returned (`seek_after`). A CouchDB index becomes the same (rank, value) column
pairs followed by the key (`index_columns`), so an index scan yields rows in
exactly the order the query asks for.
"""

from __future__ import annotations

from typing import Any

from peer.ledger.mango_parse import IndexDefinition, MangoQuery
from peer.ledger.mango_sql import KEY_COLUMN, CompiledSelector, root_operand

__all__ = ["index_columns", "seek_after", "sort_columns"]


def sort_columns(
    query: MangoQuery, compiled: CompiledSelector
) -> list[tuple[str, bool]]:
    """ORDER BY columns (expression, descending), ending with the key as tie-breaker.

    Columns the selector holds constant are left out: ordering by them is a
    no-op, and SQLite cannot match such terms to an index's order.
    """
    columns: list[tuple[str, bool]] = []
    for field in query.sort:
        if field.path == ("_id",):
            return [*columns, (KEY_COLUMN, field.descending)]
        operand = root_operand(field.path)
        if field.path not in compiled.ranked:
            columns.append((operand.rank, field.descending))
        if field.path not in compiled.valued:
            columns.append((operand.value, field.descending))
    last_descending = query.sort[-1].descending if query.sort else False
    return [*columns, (KEY_COLUMN, last_descending)]


def seek_after(
    columns: list[tuple[str, bool]], values: list[Any], first_param: int
) -> tuple[str, list[Any]]:
    """A condition for rows strictly after `values` in the order of `columns`.

    The lexicographic "after" is an OR over the columns; a redundant bound on
    the first column comes first so SQLite can start the index range there
    instead of filtering every row before the bookmark.
    """
    if len(values) != len(columns):
        raise ValueError("bookmark does not fit the query's sort")
    params: list[Any] = []
    placeholders: list[str | None] = []
    for value in values:
        if value is None:
            placeholders.append(None)
        else:
            params.append(value)
            placeholders.append(f"?{first_param + len(params) - 1}")
    alternatives = []
    for i, (column, descending) in enumerate(columns):
        equal = [
            f"{c} IS {p or 'NULL'}"
            for (c, _), p in zip(columns[:i], placeholders, strict=False)
        ]
        alternatives.append(
            " AND ".join([*equal, _after(column, descending, placeholders[i])])
        )
    condition = "(" + " OR ".join(f"({a})" for a in alternatives) + ")"
    first_column, first_descending = columns[0]
    first = placeholders[0]
    if first is not None and not first_descending:
        condition = f"{first_column} >= {first} AND {condition}"
    elif first is not None and first_column == KEY_COLUMN:
        condition = f"{first_column} <= {first} AND {condition}"
    return condition, params


def _after(column: str, descending: bool, placeholder: str | None) -> str:
    if not descending:
        return (
            f"{column} IS NOT NULL"
            if placeholder is None
            else f"{column} > {placeholder}"
        )
    if placeholder is None:
        return "0"
    return f"({column} < {placeholder} OR {column} IS NULL)"


def index_columns(definition: IndexDefinition) -> list[str]:
    """Indexed expressions for a CouchDB index, matching what queries compile to."""
    columns: list[str] = []
    for field in definition.fields:
        direction = " DESC" if field.descending else ""
        if field.path == ("_id",):
            columns.append(f"key{direction}")
            return columns
        operand = root_operand(field.path)
        columns += [f"{operand.rank}{direction}", f"{operand.value}{direction}"]
    last = definition.fields[-1]
    return [*columns, "key DESC" if last.descending else "key"]
