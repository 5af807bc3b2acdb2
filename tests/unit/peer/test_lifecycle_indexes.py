"""Chaincode indexes deployed from a package: which deployments are due and creating them.

Method: a real channel database (the committer's `open_writer`) and real packages
built with `build_package`; `lifecycle_mark` is driven by writing `_lifecycle` rows
the way a committed block leaves them. Log lines are read with `caplog`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.ledger.connections import open_writer
from peer.ledger.mango import explain_query, list_indexes
from peer.ledger.statedb import UpdateBatch, Version, apply_updates, write_updates
from peer.lifecycle.definitions import LIFECYCLE_NAMESPACE
from peer.lifecycle.indexes import (
    IndexDeployment,
    IndexOutcome,
    deploy_package_indexes,
    index_files,
    lifecycle_mark,
    pending_deployments,
)
from peer.lifecycle.package import build_package, parse_package

NS = "records"
PUBLIC_INDEX = "META-INF/statedb/couchdb/indexes/byOwner.json"
WARD_INDEX = "META-INF/statedb/couchdb/collections/patients/indexes/byWard.json"


def index_json(field: str, name: str) -> bytes:
    document = {"index": {"fields": [field]}, "ddoc": f"{name}Doc", "name": name}
    return json.dumps(document).encode()


def deployment(
    *, sequence: int = 1, package_id: str = "records_1:aa", chaincode: str = NS
) -> IndexDeployment:
    return IndexDeployment(
        channel_id="ch",
        chaincode=chaincode,
        sequence=sequence,
        package_id=package_id,
        collections=frozenset({"patients"}),
    )


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    path = tmp_path / "ledger.sqlite"
    conn = open_writer(path)
    yield path, conn
    conn.close()


# ---------------------------------------------------------------- what is due


def test_pending_deployments_are_the_new_and_the_changed() -> None:
    """Only deployments not yet done exactly as they are come out, in order."""
    done = deployment()
    upgraded = deployment(sequence=2, package_id="records_2:bb")
    other = deployment(chaincode="claims")

    assert pending_deployments([done, other], {("ch", NS): done}) == [other]
    assert pending_deployments([upgraded], {("ch", NS): done}) == [upgraded]
    assert pending_deployments([done], {("ch", NS): done}) == []


def test_index_files_are_the_package_index_files_sorted(tmp_path: Path) -> None:
    """Public and collection index files come out by path; code and stray JSON do not."""
    source = tmp_path / "records"
    files = {
        "__init__.py": b"contracts = []\n",
        WARD_INDEX: index_json("ward", "byWard"),
        PUBLIC_INDEX: index_json("owner", "byOwner"),
        "META-INF/statedb/couchdb/readme.json": b"{}",
    }
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    package, _ = build_package(label="records_1", kind="python", source=source)

    found = index_files(parse_package(package).code)

    assert [path for path, _ in found] == [
        f"src/records/{WARD_INDEX}",
        f"src/records/{PUBLIC_INDEX}",
    ]


def test_lifecycle_mark_moves_with_definitions_and_own_approvals(
    database: tuple[Path, sqlite3.Connection],
) -> None:
    """A `_lifecycle` write or an approval in this org's implicit collection moves the
    mark; other namespaces and other orgs' approvals do not."""
    _, conn = database
    assert lifecycle_mark(conn, "HospitalAMSP") == (-1, -1)

    batch = UpdateBatch()
    batch.put(NS, "k", b"v", Version(3, 0))
    apply_updates(conn, batch, savepoint=Version(3, 0))
    assert lifecycle_mark(conn, "HospitalAMSP") == (-1, -1)

    batch = UpdateBatch()
    batch.put(LIFECYCLE_NAMESPACE, "namespaces/metadata/records", b"m", Version(4, 0))
    apply_updates(conn, batch, savepoint=Version(4, 0))
    assert lifecycle_mark(conn, "HospitalAMSP") == (4, -1)

    for coll, block in (
        ("_implicit_org_HospitalBMSP", 5),
        ("_implicit_org_HospitalAMSP", 6),
    ):
        conn.execute(
            "INSERT INTO pvt_state VALUES (?, ?, 'k', x'00', ?, 0, x'01', NULL)",
            (LIFECYCLE_NAMESPACE, coll, block),
        )
    assert lifecycle_mark(conn, "HospitalAMSP") == (4, 6)


# ---------------------------------------------------------------- deploying


def test_deploy_creates_then_is_a_no_op_then_replaces_a_changed_index(
    database: tuple[Path, sqlite3.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    """First run creates both indexes (one log line each), a second run changes
    nothing and logs nothing, an upgraded definition replaces the index."""
    path, conn = database
    files = [
        (PUBLIC_INDEX, index_json("owner", "byOwner")),
        (WARD_INDEX, index_json("ward", "byWard")),
    ]
    with caplog.at_level(logging.INFO, logger="peer.lifecycle.indexes"):
        first = deploy_package_indexes(path, deployment(), files)
        created = [r.getMessage() for r in caplog.records]
        caplog.clear()
        again = deploy_package_indexes(path, deployment(), files)
        quiet = list(caplog.records)
        upgraded = [(PUBLIC_INDEX, index_json("size", "byOwner"))]
        replaced = deploy_package_indexes(path, deployment(sequence=2), upgraded)

    assert [o.status for o in first] == ["created", "created"]
    assert len(created) == 2
    assert "collection=patients ddoc=byWardDoc name=byWard" in created[1]
    assert [o.status for o in again] == ["unchanged", "unchanged"]
    assert quiet == []
    assert [o.status for o in replaced] == ["replaced"]
    [public] = list_indexes(conn, NS)
    assert [f.path for f in public.fields] == [("size",)]
    [ward] = list_indexes(conn, NS, collection="patients")
    assert ward.name == "byWard"
    plan = explain_query(
        conn,
        NS,
        json.dumps({"selector": {"size": 3}, "use_index": ["_design/byOwnerDoc"]}),
    )
    assert any("USING INDEX mango_" in line for line in plan), plan


def test_bad_files_and_undefined_collections_are_logged_and_skipped(
    database: tuple[Path, sqlite3.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is no index, or an index of a collection the definition does not
    define, is logged and skipped; the good file is still created."""
    path, conn = database
    files = [
        (
            "META-INF/statedb/couchdb/collections/other/indexes/x.json",
            index_json("a", "x"),
        ),
        ("META-INF/statedb/couchdb/indexes/bad.json", b'{"index": {}}'),
        (PUBLIC_INDEX, index_json("owner", "byOwner")),
    ]
    with caplog.at_level(logging.ERROR, logger="peer.lifecycle.indexes"):
        outcomes = deploy_package_indexes(path, deployment(), files)

    assert [o.status for o in outcomes] == ["skipped", "skipped", "created"]
    assert "defines no such collection" in outcomes[0].detail
    assert "index.fields" in outcomes[1].detail
    assert len(caplog.records) == 2
    assert (
        "file=META-INF/statedb/couchdb/indexes/bad.json"
        in caplog.records[1].getMessage()
    )
    assert [i.name for i in list_indexes(conn, NS)] == ["byOwner"]
    assert list_indexes(conn, NS, collection="other") == []


def test_deploy_waits_for_a_committer_holding_the_write_lock(
    database: tuple[Path, sqlite3.Connection],
) -> None:
    """A deployment started while the committer's transaction is open waits for its
    commit (busy timeout) instead of failing, and both writes land."""
    path, conn = database
    files = [(PUBLIC_INDEX, index_json("owner", "byOwner"))]
    outcomes: list[list[IndexOutcome]] = []
    conn.execute("BEGIN IMMEDIATE")
    worker = threading.Thread(
        target=lambda: outcomes.append(
            deploy_package_indexes(path, deployment(), files)
        )
    )
    worker.start()
    batch = UpdateBatch()
    batch.put(NS, "k", b'{"owner": "a"}', Version(7, 0))
    write_updates(conn, batch)
    conn.execute("COMMIT")
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert [[o.status for o in found] for found in outcomes] == [["created"]]
    assert (
        conn.execute("SELECT count(*) FROM state WHERE ns = ?", (NS,)).fetchone()[0]
        == 1
    )
