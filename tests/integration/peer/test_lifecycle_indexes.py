"""A chaincode's CouchDB indexes reach the peers' channel databases through the lifecycle.

Method: the two-hospital lifecycle network (`lifecycle_fixtures`). A Python package
ships `META-INF/statedb/couchdb/indexes/byOwner.json`, an index of its collection
`patients` and one of a collection it does not define. Hospital A's peer has it
installed before the definition (with `patients`) is committed, so its indexes come
with the commit; Hospital B approves the same package id without installing it, so
its peer gets them only when the package is installed there afterwards. Each peer's
channel database is then read directly (`list_indexes`, EXPLAIN QUERY PLAN).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from network.lifecycle_cli import collections_from_json
from network.lifecycle_client import Definition, install
from peer.ledger.mango import explain_query, list_indexes
from peer.lifecycle.package import build_package
from peer.node import PeerNode
from tests.integration.peer import lifecycle_fixtures
from tests.integration.peer.lifecycle_fixtures import (
    CONTRACT,
    RECORDS,
    Network,
    approve_both,
    commit_both,
)
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
)

COLLECTIONS = json.dumps(
    [
        {
            "name": "patients",
            "policy": f"OR('{HOSPITAL_A}.member', '{HOSPITAL_B}.member')",
            "requiredPeerCount": 0,
            "maxPeerCount": 1,
        }
    ]
)
INDEXES = {
    "META-INF/statedb/couchdb/indexes/byOwner.json": ("owner", "byOwner"),
    "META-INF/statedb/couchdb/collections/patients/indexes/byWard.json": (
        "ward",
        "byWard",
    ),
    "META-INF/statedb/couchdb/collections/other/indexes/byAge.json": ("age", "byAge"),
}

material = lifecycle_fixtures.material
network = lifecycle_fixtures.network


def indexed_package(folder: Path) -> bytes:
    """The records contract with the index files of `INDEXES`."""
    source = folder / "indexed" / RECORDS
    source.mkdir(parents=True)
    (source / "__init__.py").write_text(textwrap.dedent(CONTRACT).format(version="1.0"))
    for path, (field, name) in INDEXES.items():
        index = source / path
        index.parent.mkdir(parents=True, exist_ok=True)
        document = {"index": {"fields": [field]}, "ddoc": f"{name}Doc", "name": name}
        index.write_text(json.dumps(document))
    package, _ = build_package(label="records_indexed", kind="python", source=source)
    return package


async def checked(node: PeerNode) -> None:
    """Wait until the peer's index deployer has seen every block committed so far."""
    height = node.channels.require(CHANNEL).height()
    await node.installed_chaincodes.indexes.wait_checked(CHANNEL, height)


def index_names(node: PeerNode, collection: str = "") -> list[str]:
    reader = node.channels.require(CHANNEL).ledger.reader()
    return [i.name for i in list_indexes(reader, RECORDS, collection=collection)]


def query_plan(
    node: PeerNode, selector: dict[str, str], ddoc: str, collection: str = ""
) -> list[str]:
    reader = node.channels.require(CHANNEL).ledger.reader()
    query = json.dumps({"selector": selector, "use_index": [f"_design/{ddoc}"]})
    return explain_query(reader, RECORDS, query, collection=collection)


async def test_indexes_come_with_the_commit_or_with_a_later_install(
    network: Network,
) -> None:
    """Installed before the commit (A): indexes exist once the commit's block is
    checked, a rich query with `use_index` uses them; installed after (B): none
    until the install, all of them as soon as it returns. The collection the
    definition does not define gets no index."""
    package = indexed_package(network.folder)
    installed = await install(network.peer_a, network.admin(HOSPITAL_A), package)
    definition = Definition(
        name=RECORDS,
        version="1.0",
        sequence=1,
        collections=collections_from_json(COLLECTIONS, source="test"),
    )
    await approve_both(network, definition, installed.package_id)
    await commit_both(network, definition)
    node_a, node_b = network.nodes
    await checked(node_a)
    await checked(node_b)

    assert index_names(node_a) == ["byOwner"]
    assert index_names(node_a, "patients") == ["byWard"]
    assert index_names(node_a, "other") == []
    plan = query_plan(node_a, {"owner": "dr-lee"}, "byOwnerDoc")
    assert any("USING INDEX mango_" in line for line in plan), plan
    plan = query_plan(node_a, {"ward": "w1"}, "byWardDoc", collection="patients")
    assert any("USING INDEX mango_" in line for line in plan), plan
    assert index_names(node_b) == []

    await install(network.peer_b, network.admin(HOSPITAL_B), package)
    assert index_names(node_b) == ["byOwner"]
    assert index_names(node_b, "patients") == ["byWard"]
