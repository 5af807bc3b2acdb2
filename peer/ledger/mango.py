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

Private data: with `collection` set, `get_query_result`, `explain_query` and the
index functions work on that collection's plaintext in `pvt_state` instead (the
same compiler, another table and row filter). Collection indexes come from
`META-INF/statedb/couchdb/collections/<collection>/indexes/*.json`
(`package_index_collection` tells which file is which, `deploy_indexes` creates
every index among a package's files); they are registered in
`mango_index` under the namespace name `<ns>$$p<collection>`, CouchDB's
database-name suffix for a collection's private data in Fabric, which no
chaincode name can take. There is no paged private query, as in Fabric.

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
from collections.abc import Collection, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from peer.errors import InvalidBookmark, MangoQueryError
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
    "deploy_indexes",
    "drop_index",
    "explain_query",
    "get_query_result",
    "get_query_result_page",
    "list_indexes",
    "package_index_collection",
    "register_functions",
]


@dataclass(frozen=True, slots=True)
class _Target:
    """The rows a query or index covers: a table, a row filter, a registry name."""

    table: str
    where: str  # `state_filter` of the namespace (and collection)
    registry: str  # the `mango_index.ns` the target's indexes are listed under
    key_columns: int  # primary key columns: (ns, key) or (ns, coll, key)


def _target(ns: str, collection: str) -> _Target:
    if not collection:
        return _Target("state", state_filter(ns), ns, 2)
    return _Target("pvt_state", state_filter(ns, collection), f"{ns}$$p{collection}", 3)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A query ready to run: SQL text up to ORDER BY, its parameters and sort columns."""

    query: MangoQuery
    select: str
    params: tuple[Any, ...]
    order: list[tuple[str, bool]]
    scope: str  # fingerprint of query + namespace, carried in bookmarks


def get_query_result(
    conn: sqlite3.Connection,
    ns: str,
    query: str | bytes | MangoQuery,
    *,
    collection: str = "",
) -> Generator[KV, None, None]:
    """Stream every match of the query (honouring its sort, skip and limit).

    With `collection`, the matches among that collection's private plaintext.
    The query is checked and started at the call (a bad query raises here);
    the generator then holds its read snapshot until exhausted or closed.
    """
    plan = _plan(conn, _target(ns, collection), query)
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
    plan = _plan(conn, _target(ns, ""), query)
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
    conn: sqlite3.Connection,
    ns: str,
    query: str | bytes | MangoQuery,
    *,
    collection: str = "",
) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines for the query (to check index use)."""
    plan = _plan(conn, _target(ns, collection), query)
    sql = f"EXPLAIN QUERY PLAN {_sql(plan, None)} LIMIT -1"
    return [str(row[3]) for row in conn.execute(sql, plan.params)]


# ---------------------------------------------------------------- indexes


def create_index(
    conn: sqlite3.Connection,
    ns: str,
    definition: str | bytes | IndexDefinition,
    *,
    collection: str = "",
) -> str:
    """Create (or replace) a chaincode's CouchDB index; returns the SQLite index name.

    With `collection`, an index of that collection's private data.
    """
    if not isinstance(definition, IndexDefinition):
        definition = parse_index_definition(definition)
    target = _target(ns, collection)
    sqlite_name = _sqlite_index_name(target.registry, definition.ddoc, definition.name)
    stored = _definition_json(definition)
    columns = index_columns(definition)
    with transaction(conn):
        row = conn.execute(
            "SELECT definition FROM mango_index WHERE ns = ? AND ddoc = ? AND name = ?",
            (target.registry, definition.ddoc, definition.name),
        ).fetchone()
        if row is not None and row[0] == stored:
            return sqlite_name
        conn.execute(f'DROP INDEX IF EXISTS "{sqlite_name}"')
        conn.execute(
            f'CREATE INDEX "{sqlite_name}" ON {target.table} ({", ".join(columns)}) '
            f"WHERE {target.where}"
        )
        conn.execute(
            "INSERT OR REPLACE INTO mango_index VALUES (?, ?, ?, ?, ?)",
            (target.registry, definition.ddoc, definition.name, sqlite_name, stored),
        )
        _seed_statistics(conn, target, sqlite_name, len(columns))
    return sqlite_name


def drop_index(
    conn: sqlite3.Connection, ns: str, ddoc: str, name: str, *, collection: str = ""
) -> bool:
    """Drop an index; returns whether it existed."""
    registry = _target(ns, collection).registry
    sqlite_name = _sqlite_index_name(registry, ddoc, name)
    with transaction(conn):
        deleted = conn.execute(
            "DELETE FROM mango_index WHERE ns = ? AND ddoc = ? AND name = ?",
            (registry, ddoc, name),
        ).rowcount
        conn.execute(f'DROP INDEX IF EXISTS "{sqlite_name}"')
    return deleted > 0


def list_indexes(
    conn: sqlite3.Connection, ns: str, *, collection: str = ""
) -> list[IndexDefinition]:
    """The namespace's (or its collection's) indexes, by design document and name."""
    rows = conn.execute(
        "SELECT definition FROM mango_index WHERE ns = ? ORDER BY ddoc, name",
        (_target(ns, collection).registry,),
    )
    return [parse_index_definition(row[0]) for row in rows]


_PACKAGE_INDEX = re.compile(
    r"(?:^|/)META-INF/statedb/couchdb/(?:collections/([^/]+)/)?indexes/[^/]+[.]json"
)


def deploy_indexes(
    conn: sqlite3.Connection,
    ns: str,
    files: Iterable[tuple[str, bytes]],
    *,
    collections: Collection[str] | None = None,
) -> list[str]:
    """Create the indexes a chaincode package ships; returns their SQLite names.

    `files` are (path in the package, content) pairs: index files of the public
    state and of collections are created, other files ignored. With
    `collections`, indexes of any other collection are skipped (Fabric creates
    them only for collections the chaincode defines). Unchanged indexes cost a
    lookup only, so calling this again (at every install or commit) is cheap.

    Raises:
        MangoQueryError: an index file is not a supported index definition; the
            message names the file, and nothing is created.
    """
    found: list[tuple[str, IndexDefinition]] = []
    for path, content in files:
        collection = package_index_collection(path)
        if collection is None:
            continue
        if collection and collections is not None and collection not in collections:
            continue
        try:
            found.append((collection, parse_index_definition(content)))
        except MangoQueryError as error:
            raise MangoQueryError(f"{path}: {error}") from error
    with transaction(conn):
        return [
            create_index(conn, ns, definition, collection=collection)
            for collection, definition in found
        ]


def package_index_collection(path: str) -> str | None:
    """Whether a chaincode package file is a CouchDB index, and of what.

    Returns "" for an index of the public state
    (`META-INF/statedb/couchdb/indexes/x.json`), the collection name for
    `META-INF/statedb/couchdb/collections/<collection>/indexes/x.json`, and
    None for any other file. `META-INF` may sit below a folder (`src/`).
    """
    match = _PACKAGE_INDEX.search(path)
    if match is None or match.end() != len(path):
        return None
    return match.group(1) or ""


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions compiled queries call (idempotent)."""
    conn.create_function("mango_regex", 2, _regex_search, deterministic=True)


_ASSUMED_ROWS = 1_000_000


def _seed_statistics(
    conn: sqlite3.Connection, target: _Target, sqlite_name: str, column_count: int
) -> None:
    """Give the planner plausible statistics until a real ANALYZE replaces them.

    Without statistics SQLite guesses that `ns = ?` on the primary key selects
    ~10 rows and prefers it (it also yields key order) over a Mango index. The
    seeded figures say what is typical instead: a namespace (or collection)
    holds many rows, and equality on an indexed field selects few. SQLite
    documents editing sqlite_stat1 this way; `ANALYZE sqlite_schema` reloads it.
    """
    conn.execute("ANALYZE sqlite_schema")
    rows = _ASSUMED_ROWS
    # The primary key's leading columns (ns[, coll]) select everything, the key one row.
    stats = {target.table: _stat([rows] * target.key_columns + [1])}
    if target.table == "pvt_state":
        # (ns, coll, key_hash) then key: a key hash selects one row.
        stats["pvt_state_by_hash"] = _stat([rows, rows, rows, 1, 1])
    # (rank, value) pairs, then the key, then the rest of the primary key.
    prefixes = [rows // 100, 10] + [
        max(1, 10 >> (i // 2)) for i in range(1, column_count - 2)
    ]
    ones = [1] * target.key_columns
    stats[sqlite_name] = _stat([rows, *prefixes[: column_count - 1], *ones])
    for index, stat in stats.items():
        present = conn.execute(
            "SELECT 1 FROM sqlite_stat1 WHERE tbl = ? AND idx = ?",
            (target.table, index),
        ).fetchone()
        if present is None:
            conn.execute(
                "INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (target.table, index, stat)
            )
    conn.execute("ANALYZE sqlite_schema")


def _stat(counts: list[int]) -> str:
    return " ".join(str(n) for n in counts)


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


def _plan(
    conn: sqlite3.Connection, target: _Target, query: str | bytes | MangoQuery
) -> _Plan:
    if not isinstance(query, MangoQuery):
        query = parse_query(query)
    register_functions(conn)
    compiled = compile_selector(query.selector, target.where)
    hint = _index_hint(conn, target.registry, query.use_index)
    order = sort_columns(query, compiled)
    select = (
        f"SELECT s.key, CAST(val AS BLOB), s.block_num, s.tx_num, "
        f"{', '.join(column for column, _ in order)} FROM {target.table} AS s{hint} "
        f"WHERE {target.where} AND {compiled.where}"
    )
    fingerprint = f"{target.registry}\x00{query.fingerprint}"
    scope = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return _Plan(query, select, compiled.params, order, scope)


def _index_hint(
    conn: sqlite3.Connection,
    registry: str,
    use_index: tuple[str, str | None] | None,
) -> str:
    """INDEXED BY for `use_index` when that index exists (CouchDB ignores unknown ones)."""
    if use_index is None:
        return ""
    ddoc, name = use_index
    sql = "SELECT sqlite_name FROM mango_index WHERE ns = ? AND ddoc = ?"
    params: tuple[str, ...] = (registry, ddoc)
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
