"""Rich queries: CouchDB Mango queries over the JSON values of the state database.

`get_query_result` streams the matches of a query such as
`{"selector": {"docType": "record", "age": {"$gt": 40}}, "sort": [{"age": "desc"}]}`;
`get_query_result_page` returns one page and a bookmark for the next. Only
values that are JSON objects take part (like CouchDB, which keeps everything
else as attachments). Selection and ordering run in SQLite (`mango_sql` compiles
them; its docstring lists the semantics); only `fields` projection runs in Python.

Indexes that chaincode ships under `META-INF/statedb/couchdb/indexes/*.json`
become SQLite partial expression indexes over that namespace (`create_index`);
the planner uses them by itself, and `use_index` forces one.

Bookmarks are opaque strings: base64 of the last returned row's sort key, the
number of rows returned so far (for `limit`) and a fingerprint of the query and
namespace. The next page seeks past that sort key (keyset paging), so pages
stay consistent and cheap however deep they go. The bookmark is "" when no more
results follow (unlike CouchDB, which always returns one).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from peer.errors import InvalidBookmark
from peer.ledger.mango_order import index_columns, seek_after, sort_columns
from peer.ledger.mango_parse import (
    FieldPath,
    IndexDefinition,
    MangoQuery,
    parse_index_definition,
    parse_query,
)
from peer.ledger.mango_sql import compile_selector, state_filter
from peer.ledger.schema import transaction
from peer.ledger.statedb import KV, Page, Version

__all__ = [
    "create_index",
    "drop_index",
    "explain_query",
    "get_query_result",
    "get_query_result_page",
    "list_indexes",
    "register_functions",
]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A query ready to run: SQL text up to ORDER BY, its parameters and sort columns."""

    query: MangoQuery
    select: str
    params: tuple[Any, ...]
    order: list[tuple[str, bool]]
    scope: str  # fingerprint of query + namespace, carried in bookmarks


def get_query_result(
    conn: sqlite3.Connection, ns: str, query: str | bytes | MangoQuery
) -> Generator[KV, None, None]:
    """Stream every match of the query (honouring its sort, skip and limit).

    The query is checked and started at the call (a bad query raises here);
    the generator then holds its read snapshot until exhausted or closed.
    """
    plan = _plan(conn, ns, query)
    limit = -1 if plan.query.limit is None else plan.query.limit
    cursor = _execute(conn, plan, None, limit=limit, offset=plan.query.skip)
    return (_record(plan.query, row) for row in cursor)


def get_query_result_page(
    conn: sqlite3.Connection,
    ns: str,
    query: str | bytes | MangoQuery,
    *,
    page_size: int,
    bookmark: str = "",
) -> Page:
    """One page of matches and the bookmark for the next page ("" when done).

    The query's `skip` applies before the first page; its `limit` caps the
    total over all pages.
    """
    if page_size <= 0:
        raise ValueError(f"page_size must be positive, got {page_size}")
    plan = _plan(conn, ns, query)
    returned, after = _decode_bookmark(bookmark, plan) if bookmark else (0, None)
    wanted = page_size
    if plan.query.limit is not None:
        wanted = min(page_size, plan.query.limit - returned)
    if wanted <= 0:
        return Page((), "")
    offset = plan.query.skip if after is None else 0
    rows = _execute(conn, plan, after, limit=wanted + 1, offset=offset).fetchall()
    records = tuple(_record(plan.query, row) for row in rows[:wanted])
    within_limit = plan.query.limit is None or returned + wanted < plan.query.limit
    more = len(rows) > wanted and within_limit
    next_bookmark = (
        _encode_bookmark(plan, returned + wanted, rows[wanted - 1]) if more else ""
    )
    return Page(records, next_bookmark)


def explain_query(
    conn: sqlite3.Connection, ns: str, query: str | bytes | MangoQuery
) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines for the query (to check index use)."""
    plan = _plan(conn, ns, query)
    sql = f"EXPLAIN QUERY PLAN {_sql(plan, None)} LIMIT -1"
    return [str(row[3]) for row in conn.execute(sql, plan.params)]


# ---------------------------------------------------------------- indexes


def create_index(
    conn: sqlite3.Connection, ns: str, definition: str | bytes | IndexDefinition
) -> str:
    """Create (or replace) a chaincode's CouchDB index; returns the SQLite index name."""
    if not isinstance(definition, IndexDefinition):
        definition = parse_index_definition(definition)
    sqlite_name = _sqlite_index_name(ns, definition.ddoc, definition.name)
    stored = _definition_json(definition)
    with transaction(conn):
        row = conn.execute(
            "SELECT definition FROM mango_index WHERE ns = ? AND ddoc = ? AND name = ?",
            (ns, definition.ddoc, definition.name),
        ).fetchone()
        if row is not None and row[0] == stored:
            return sqlite_name
        conn.execute(f'DROP INDEX IF EXISTS "{sqlite_name}"')
        conn.execute(
            f'CREATE INDEX "{sqlite_name}" ON state ({", ".join(index_columns(definition))}) '
            f"WHERE {state_filter(ns)}"
        )
        conn.execute(
            "INSERT OR REPLACE INTO mango_index VALUES (?, ?, ?, ?, ?)",
            (ns, definition.ddoc, definition.name, sqlite_name, stored),
        )
        _seed_statistics(conn, sqlite_name, len(index_columns(definition)))
    return sqlite_name


def drop_index(conn: sqlite3.Connection, ns: str, ddoc: str, name: str) -> bool:
    """Drop an index; returns whether it existed."""
    sqlite_name = _sqlite_index_name(ns, ddoc, name)
    with transaction(conn):
        deleted = conn.execute(
            "DELETE FROM mango_index WHERE ns = ? AND ddoc = ? AND name = ?",
            (ns, ddoc, name),
        ).rowcount
        conn.execute(f'DROP INDEX IF EXISTS "{sqlite_name}"')
    return deleted > 0


def list_indexes(conn: sqlite3.Connection, ns: str) -> list[IndexDefinition]:
    """The namespace's indexes, by design document and name."""
    rows = conn.execute(
        "SELECT definition FROM mango_index WHERE ns = ? ORDER BY ddoc, name", (ns,)
    )
    return [parse_index_definition(row[0]) for row in rows]


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions compiled queries call (idempotent)."""
    conn.create_function("mango_regex", 2, _regex_search, deterministic=True)


_ASSUMED_ROWS = 1_000_000


def _seed_statistics(
    conn: sqlite3.Connection, sqlite_name: str, column_count: int
) -> None:
    """Give the planner plausible statistics until a real ANALYZE replaces them.

    Without statistics SQLite guesses that `ns = ?` on the primary key selects
    ~10 rows and prefers it (it also yields key order) over a Mango index. The
    seeded figures say what is typical instead: a namespace holds many rows, and
    equality on an indexed field selects few. SQLite documents editing
    sqlite_stat1 this way; `ANALYZE sqlite_schema` reloads it.
    """
    conn.execute("ANALYZE sqlite_schema")
    rows = _ASSUMED_ROWS
    pk_stat = f"{rows} {rows} 1"
    # (rank, value) pairs, then the key, then ns (the rest of the primary key).
    prefixes = [rows // 100, 10] + [
        max(1, 10 >> (i // 2)) for i in range(1, column_count - 2)
    ]
    index_stat = " ".join(str(n) for n in [rows, *prefixes[: column_count - 1], 1, 1])
    for index, stat in (("state", pk_stat), (sqlite_name, index_stat)):
        present = conn.execute(
            "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'state' AND idx = ?", (index,)
        ).fetchone()
        if present is None:
            conn.execute(
                "INSERT INTO sqlite_stat1 VALUES ('state', ?, ?)", (index, stat)
            )
    conn.execute("ANALYZE sqlite_schema")


def _sqlite_index_name(ns: str, ddoc: str, name: str) -> str:
    digest = hashlib.sha256(f"{ns}\x00{ddoc}\x00{name}".encode()).hexdigest()[:24]
    return f"mango_{digest}"


def _field_name(path: FieldPath) -> str:
    """Invert `parse_field`: join with dots, escaping dots inside a part."""
    return ".".join(part.replace(".", "\\.") for part in path)


def _definition_json(definition: IndexDefinition) -> str:
    fields = [
        {_field_name(f.path): "desc" if f.descending else "asc"}
        for f in definition.fields
    ]
    return json.dumps(
        {"index": {"fields": fields}, "ddoc": definition.ddoc, "name": definition.name},
        sort_keys=True,
    )


# ---------------------------------------------------------------- execution


def _plan(conn: sqlite3.Connection, ns: str, query: str | bytes | MangoQuery) -> _Plan:
    if not isinstance(query, MangoQuery):
        query = parse_query(query)
    register_functions(conn)
    compiled = compile_selector(query.selector, state_filter(ns))
    hint = _index_hint(conn, ns, query.use_index)
    order = sort_columns(query, compiled)
    select = (
        f"SELECT s.key, CAST(val AS BLOB), s.block_num, s.tx_num, "
        f"{', '.join(column for column, _ in order)} FROM state AS s{hint} "
        f"WHERE {state_filter(ns)} AND {compiled.where}"
    )
    scope = hashlib.sha256(f"{ns}\x00{query.fingerprint}".encode()).hexdigest()[:16]
    return _Plan(query, select, compiled.params, order, scope)


def _index_hint(
    conn: sqlite3.Connection, ns: str, use_index: tuple[str, str | None] | None
) -> str:
    """INDEXED BY for `use_index` when that index exists (CouchDB ignores unknown ones)."""
    if use_index is None:
        return ""
    ddoc, name = use_index
    sql = "SELECT sqlite_name FROM mango_index WHERE ns = ? AND ddoc = ?"
    params: tuple[str, ...] = (ns, ddoc)
    if name is not None:
        sql, params = sql + " AND name = ?", (*params, name)
    row = conn.execute(sql + " ORDER BY name LIMIT 1", params).fetchone()
    return "" if row is None else f' INDEXED BY "{row[0]}"'


def _sql(plan: _Plan, after: list[Any] | None) -> str:
    sql = plan.select
    if after is not None:
        seek, _ = seek_after(plan.order, after, len(plan.params) + 1)
        sql += f" AND {seek}"
    order_by = ", ".join(
        f"{c} DESC" if descending else c for c, descending in plan.order
    )
    return f"{sql} ORDER BY {order_by}"


def _execute(
    conn: sqlite3.Connection,
    plan: _Plan,
    after: list[Any] | None,
    *,
    limit: int,
    offset: int,
) -> sqlite3.Cursor:
    params = list(plan.params)
    if after is not None:
        _, seek_params = seek_after(plan.order, after, len(params) + 1)
        params += seek_params
    sql = f"{_sql(plan, after)} LIMIT ?{len(params) + 1} OFFSET ?{len(params) + 2}"
    return conn.execute(sql, (*params, limit, offset))


def _record(query: MangoQuery, row: tuple[Any, ...]) -> KV:
    key, value, block_num, tx_num = row[:4]
    if query.fields:
        value = _project(value, query.fields)
    return KV(key, value, Version(block_num, tx_num))


def _project(value: bytes, fields: tuple[FieldPath, ...]) -> bytes:
    """Keep only the listed fields (nested paths keep their nesting)."""
    document = json.loads(value)
    projected: dict[str, Any] = {}
    for path in fields:
        if path[0] in ("_id", "_rev"):
            continue
        found, item = _lookup(document, path)
        if found:
            target = projected
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = item
    return json.dumps(projected, separators=(",", ":"), ensure_ascii=False).encode()


def _lookup(document: Any, path: FieldPath) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return False, None
        document = document[part]
    return True, document


# ---------------------------------------------------------------- bookmarks


def _encode_bookmark(plan: _Plan, returned: int, row: tuple[Any, ...]) -> str:
    payload = {"q": plan.scope, "n": returned, "after": list(row[4:])}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_bookmark(bookmark: str, plan: _Plan) -> tuple[int, list[Any]]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(bookmark.encode()))
        scope, returned, after = payload["q"], payload["n"], payload["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise InvalidBookmark(
            f"bookmark {bookmark[:40]!r} is not one this peer issued"
        ) from error
    if scope != plan.scope:
        raise InvalidBookmark("bookmark belongs to a different query or namespace")
    if not isinstance(returned, int) or not isinstance(after, list):
        raise InvalidBookmark("bookmark is malformed")
    if len(after) != len(plan.order):
        raise InvalidBookmark("bookmark does not fit the query's sort")
    return returned, after


# ---------------------------------------------------------------- regex


def _regex_search(pattern: str, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return 1 if _compiled(pattern).search(value) else 0


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
