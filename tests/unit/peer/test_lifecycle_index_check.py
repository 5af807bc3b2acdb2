"""Install-time check of a package's CouchDB index files: good ones pass, bad and
misplaced ones are refused with the package label and file named, nothing stored.

Method: `check_index_files` on hand-made file maps for each kind of bad file; one
real package (`build_package`) with a bad index through `PackageStore.install`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peer.errors import InvalidPackage
from peer.lifecycle.index_check import check_index_files, index_file_problem
from peer.lifecycle.package import build_package
from peer.lifecycle.store import PackageStore

PUBLIC = "META-INF/statedb/couchdb/indexes/bad.json"
WARD = "src/records/META-INF/statedb/couchdb/collections/patients/indexes/ward.json"
GOOD = {
    "index": {"fields": ["owner", {"ward": "desc"}, "a\\.b"]},
    "ddoc": "_design/byOwnerDoc",
    "name": "byOwner",
    "type": "json",
}


def refusal(path: str, content: bytes | str) -> str:
    raw = content.encode() if isinstance(content, str) else content
    with pytest.raises(InvalidPackage) as caught:
        check_index_files("records_1", {"src/records/__init__.py": b"", path: raw})
    message = str(caught.value)
    assert message.startswith(f"chaincode package records_1: {path}: "), message
    return message


def test_good_indexes_and_other_files_pass() -> None:
    files = {
        PUBLIC: json.dumps(GOOD).encode(),
        WARD: b'{"index": {"fields": ["ward"]}}',
        "src/records/__init__.py": b"not json at all",
        "META-INF/other/readme.txt": b"left alone",
        "src/META-INF/statedbx/x.txt": b"not under META-INF/statedb/",
    }
    check_index_files("records_1", files)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"ddoc": "d"}', '"index" object'),
        ('{"index": ["owner"]}', '"index" object'),
        ('{"index": {"fields": "owner"}}', '"index.fields" must be an array'),
        ('{"index": {"fields": []}}', "non-empty"),
        ('{"index": {"fields": [3]}}', "field names or"),
        ('{"index": {"fields": [{"owner": "up"}]}}', '"asc" or "desc"'),
        ('{"index": {"fields": ["owner"]}, "type": "text"}', '"json"'),
        ('{"index": {"fields": ["a"]}, "extra": 1}', "unknown key(s) ['extra']"),
        ('{"index": {"fields": ["a"], "sort": []}}', "unknown key(s) ['sort'] in"),
        ('{"index": {"fields": ["a"]}, "name": 0}', '"name" must be a string'),
        ('{"index": {"fields": ["a"]}, "ddoc": false}', '"ddoc" must be a string'),
        ('{"index": {"fields": ["a"], "partial_filter_selector": {}}}', "partial"),
    ],
)
def test_each_kind_of_bad_definition_is_refused(content: str, expected: str) -> None:
    message = refusal(PUBLIC, content)
    assert "not a valid index definition" in message
    assert expected in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("META-INF/statedb/couchdb/readme.json", "not an index location"),
        ("META-INF/statedb/couchdb/indexes/notes.txt", "must end in .json"),
        ("META-INF/statedb/couchdb/indexes/sub/x.json", "not an index location"),
        ("src/records/META-INF/statedb/leveldb/indexes/x.json", "'leveldb'"),
        ("META-INF/statedb/couchdb/collections/p/x.json", "not an index location"),
        ("META-INF/statedb/couchdb/collections/a b/indexes/x.json", "'a b'"),
        ("META-INF/statedb/x.json", "not an index location"),
    ],
)
def test_misplaced_files_are_refused(path: str, expected: str) -> None:
    message = refusal(path, json.dumps(GOOD))
    assert expected in message


def test_the_first_bad_file_by_path_is_named() -> None:
    bad = b'{"index": {}}'
    problems = [index_file_problem(p, bad) for p in (PUBLIC, WARD)]
    assert all(problem is not None for problem in problems)
    with pytest.raises(InvalidPackage, match="META-INF/statedb/couchdb/indexes/bad"):
        check_index_files("records_1", {WARD: bad, PUBLIC: bad})


def test_install_refuses_a_bad_index_and_stores_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src-folder" / "records"
    index = source / "META-INF/statedb/couchdb/indexes/bad.json"
    index.parent.mkdir(parents=True)
    (source / "__init__.py").write_text("contracts = []\n")
    index.write_text('{"index": {"fields": ["owner"]}, "colour": "red"}')
    data, _ = build_package(label="records_1", kind="python", source=source)
    store = PackageStore(tmp_path / "lifecycle")
    with pytest.raises(InvalidPackage) as caught:
        store.install(data)
    assert str(caught.value).startswith(
        "chaincode package records_1: "
        "src/records/META-INF/statedb/couchdb/indexes/bad.json: "
        "not a valid index definition: unknown key(s) ['colour']"
    )
    assert store.installed() == []
    assert not (tmp_path / "lifecycle").exists()
