"""Install-time check of the CouchDB index files a chaincode package ships.

Install phase, before anything is stored. Fabric's peer refuses a package whose
`META-INF/statedb/...` files are not valid index definitions in a valid place; this
peer does the same so the installing admin learns of a bad index at once, not as a
log line after the definition is committed. `META-INF` may sit below a folder (as in
Python packages, `src/<module>/META-INF/...`), as `peer.ledger.mango` reads it.

Accepted: `.../META-INF/statedb/couchdb/indexes/<name>.json` and
`.../META-INF/statedb/couchdb/collections/<collection>/indexes/<name>.json` holding a
JSON object with `index.fields` (field names or `{"field": "asc"|"desc"}`) and
optionally `ddoc`, `name` (strings) and `type` ("json"); any other key, or any other
file under `META-INF/statedb/`, is refused. The definition itself is read by the
ledger's Mango parser (`parse_index_definition`), the one the deployer uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from peer.errors import InvalidPackage, MangoQueryError
from peer.ledger.mango import package_index_collection
from peer.ledger.mango_parse import parse_index_definition
from peer.lifecycle.package import ChaincodePackage, code_files

__all__ = ["check_index_files", "check_package_indexes", "index_file_problem"]

_STATEDB = re.compile(r"(?:^|/)(META-INF/statedb/.*)")
_COLLECTION = re.compile(r"[A-Za-z0-9_-]+")
_TOP_KEYS = frozenset({"index", "ddoc", "name", "type"})
_INDEX_KEYS = frozenset({"fields"})
_PLACES = (
    "index files belong in META-INF/statedb/couchdb/indexes/ or "
    "META-INF/statedb/couchdb/collections/<collection>/indexes/"
)


def check_package_indexes(package: ChaincodePackage) -> None:
    """Refuse a package with a bad or misplaced file under `META-INF/statedb/`.

    Raises:
        InvalidPackage: the first such file (by path), named in the message as
            `chaincode package <label>: <path>: <problem>`; or the code archive
            does not open.
    """
    check_index_files(package.metadata.label, code_files(package.code))


def check_index_files(label: str, files: Mapping[str, bytes]) -> None:
    """`check_package_indexes` on a code archive's files (path in archive → bytes).

    Raises:
        InvalidPackage: a file under `META-INF/statedb/` is misplaced or invalid.
    """
    for path in sorted(files):
        problem = index_file_problem(path, files[path])
        if problem is not None:
            raise InvalidPackage(f"chaincode package {label}: {path}: {problem}")


def index_file_problem(path: str, content: bytes) -> str | None:
    """What is wrong with one code archive file as a state database file (None: ok).

    Files outside any `META-INF/statedb/` folder are none of this check's business.
    """
    match = _STATEDB.search(path)
    if match is None:
        return None
    collection = package_index_collection(path)
    if collection is None:
        return _misplaced(match.group(1))
    if collection and not _COLLECTION.fullmatch(collection):
        return (
            f"collection name {collection!r} is not valid (letters, digits, '_' "
            "and '-' only)"
        )
    return _definition_problem(content)


def _misplaced(statedb_path: str) -> str:
    parts = statedb_path.split("/")
    if len(parts) > 3 and parts[2] != "couchdb":
        return f"state database {parts[2]!r} is not supported (only couchdb); {_PLACES}"
    if not parts[-1].endswith(".json"):
        return f"index file names must end in .json; {_PLACES}"
    return f"not an index location; {_PLACES}"


def _definition_problem(content: bytes) -> str | None:
    try:
        parse_index_definition(content)
    except MangoQueryError as error:
        return f"not a valid index definition: {error}"
    document = json.loads(content)
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        return (
            f"not a valid index definition: unknown key(s) {unknown}; "
            f"allowed: {sorted(_TOP_KEYS)}"
        )
    unknown = sorted(set(document["index"]) - _INDEX_KEYS)
    if unknown:
        return (
            f'not a valid index definition: unknown key(s) {unknown} in "index"; '
            f"allowed: {sorted(_INDEX_KEYS)}"
        )
    for key in ("ddoc", "name"):
        if key in document and not isinstance(document[key], str):
            return f'not a valid index definition: "{key}" must be a string'
    return None
