"""Chaincode indexes deployed to a channel's database: what is due and creating it.

Commit phase, after a block (and at install). As Fabric's peer does with CouchDB, a
peer creates the indexes a chaincode package ships once the package serves a
committed definition on the channel: this peer's organisation approved that package
for the committed sequence and the package is installed here. An index of the public
state comes from `META-INF/statedb/couchdb/indexes/*.json`, one of a collection from
`META-INF/statedb/couchdb/collections/<collection>/indexes/*.json`; as in Fabric, a
collection index is created only for a collection the definition defines (any
member peer or not; a non-member's index just stays empty), and index files are
created one at a time in file-name order, a bad file being logged and skipped.

`pending_deployments` (pure) says which deployments are due; `deploy_package_indexes`
creates one deployment's indexes on a connection of its own: each index in its own
short write transaction, so the committer's writes wait at most for one CREATE INDEX
(its connection waits for locks up to SQLite's busy timeout). Unchanged indexes are
only looked up, so deploying again is a no-op; a changed definition replaces the
index. Indexes that a later package no longer ships are kept, as CouchDB keeps them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from peer.errors import MangoQueryError
from peer.ledger.mango import create_index, list_indexes, package_index_collection
from peer.ledger.mango_parse import IndexDefinition, parse_index_definition
from peer.lifecycle.approvals import implicit_collection
from peer.lifecycle.definitions import LIFECYCLE_NAMESPACE
from peer.lifecycle.package import code_files

__all__ = [
    "BUSY_TIMEOUT_S",
    "IndexDeployment",
    "IndexOutcome",
    "deploy_package_indexes",
    "index_files",
    "lifecycle_mark",
    "pending_deployments",
]

_LOG = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 60.0
"""How long the deployer's connection waits for the committer's write lock."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexDeployment:
    """A package serving a committed definition on a channel: its indexes are due."""

    channel_id: str
    chaincode: str
    sequence: int
    package_id: str
    collections: frozenset[str]
    """The collections the definition defines (collection indexes of others are skipped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexOutcome:
    """What deploying one index file did: created, replaced, unchanged or skipped."""

    path: str
    collection: str
    status: str
    detail: str = ""


def pending_deployments(
    wanted: Iterable[IndexDeployment],
    deployed: Mapping[tuple[str, str], IndexDeployment],
) -> list[IndexDeployment]:
    """The wanted deployments not yet done as they are (by channel and chaincode)."""
    return [
        deployment
        for deployment in wanted
        if deployed.get((deployment.channel_id, deployment.chaincode)) != deployment
    ]


def index_files(code: bytes) -> list[tuple[str, bytes]]:
    """The CouchDB index files of a package's code archive, sorted by path.

    Raises:
        InvalidPackage: the code archive does not open.
    """
    files = code_files(code)
    return sorted(
        (path, content)
        for path, content in files.items()
        if package_index_collection(path) is not None
    )


def lifecycle_mark(conn: sqlite3.Connection, mspid: str) -> tuple[int, int]:
    """Where `_lifecycle` last changed for this peer: committed definitions and the
    organisation's own approvals (its implicit collection's plaintext).

    Two cheap look-ups on the primary keys: definitions and approvals only ever
    grow or are overwritten, so a new block number means something changed.
    """
    definitions = conn.execute(
        "SELECT max(block_num) FROM state WHERE ns = ?", (LIFECYCLE_NAMESPACE,)
    ).fetchone()[0]
    approvals = conn.execute(
        "SELECT max(block_num) FROM pvt_state WHERE ns = ? AND coll = ?",
        (LIFECYCLE_NAMESPACE, implicit_collection(mspid)),
    ).fetchone()[0]
    return (-1 if definitions is None else definitions), (
        -1 if approvals is None else approvals
    )


def deploy_package_indexes(
    database: Path, deployment: IndexDeployment, files: Sequence[tuple[str, bytes]]
) -> list[IndexOutcome]:
    """Create the indexes among `files` (package path, content) in the channel database.

    Logs one line per index created or replaced and one per file skipped; never
    raises for a bad file (as Fabric, which logs index failures and goes on).

    Raises:
        sqlite3.Error: the database cannot be opened.
    """
    conn = sqlite3.connect(str(database), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        return [
            _deploy_file(conn, deployment, path, content) for path, content in files
        ]
    finally:
        conn.close()


def _deploy_file(
    conn: sqlite3.Connection, deployment: IndexDeployment, path: str, content: bytes
) -> IndexOutcome:
    collection = package_index_collection(path)
    assert collection is not None, "only index files are deployed"
    if collection and collection not in deployment.collections:
        return _skipped(
            deployment, path, collection, "the definition defines no such collection"
        )
    try:
        definition = parse_index_definition(content)
    except MangoQueryError as error:
        return _skipped(deployment, path, collection, str(error))
    try:
        existing = _existing(conn, deployment.chaincode, collection, definition)
        if existing == definition:
            return IndexOutcome(path=path, collection=collection, status="unchanged")
        sqlite_name = create_index(
            conn, deployment.chaincode, definition, collection=collection
        )
    except sqlite3.Error as error:
        return _skipped(deployment, path, collection, f"database error: {error}")
    status = "created" if existing is None else "replaced"
    _LOG.info(
        "%s index channel=%s chaincode=%s collection=%s ddoc=%s name=%s file=%s "
        "sqlite_index=%s package_id=%s",
        status,
        deployment.channel_id,
        deployment.chaincode,
        collection or "-",
        definition.ddoc,
        definition.name,
        path,
        sqlite_name,
        deployment.package_id,
    )
    return IndexOutcome(path=path, collection=collection, status=status)


def _existing(
    conn: sqlite3.Connection, ns: str, collection: str, definition: IndexDefinition
) -> IndexDefinition | None:
    for known in list_indexes(conn, ns, collection=collection):
        if (known.ddoc, known.name) == (definition.ddoc, definition.name):
            return known
    return None


def _skipped(
    deployment: IndexDeployment, path: str, collection: str, reason: str
) -> IndexOutcome:
    _LOG.error(
        "index not created channel=%s chaincode=%s collection=%s file=%s "
        "package_id=%s: %s",
        deployment.channel_id,
        deployment.chaincode,
        collection or "-",
        path,
        deployment.package_id,
        reason,
    )
    return IndexOutcome(
        path=path, collection=collection, status="skipped", detail=reason
    )
