"""Chaincode install packages: Fabric 2.5's `.tar.gz` format, its package id, building one.

Before install. A package is a gzipped tar with two regular files at the top:
`metadata.json` (`{"type", "label", "path"}`; Python packages add `"module"`, what
`python -m chaincode serve --module` loads) and `code.tar.gz`, the code itself. Its
package id is `<label>:<hex SHA-256 of the whole package file>`, as in Fabric.

What the code archive holds depends on the type:

    python   src/...            the modules; `module` names the one to serve
    node     src/...            a Node project (package.json), run with
                                `fabric-chaincode-node start`
    ccaas    connection.json    {address, dial_timeout, tls_required, ...}: the peer
                                dials a chaincode server there

`build_package` makes packages deterministically (sorted entries, zero times and
owners), so the same folder always yields the same package id.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer.errors import InvalidPackage

__all__ = [
    "CODE_FILE",
    "CONNECTION_FILE",
    "METADATA_FILE",
    "PACKAGE_TYPES",
    "SOURCE_FOLDER",
    "ChaincodePackage",
    "ConnectionInfo",
    "PackageMetadata",
    "build_package",
    "check_runnable",
    "code_files",
    "connection_info",
    "extract_code",
    "package_id",
    "parse_connection",
    "parse_package",
    "read_code_file",
    "validate_label",
]

METADATA_FILE = "metadata.json"
CODE_FILE = "code.tar.gz"
CONNECTION_FILE = "connection.json"
SOURCE_FOLDER = "src"
PACKAGE_TYPES = ("python", "node", "ccaas")
MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""The largest file read out of a package (a bound against decompression bombs)."""

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_MODULE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_]\w*)?"
)
_SKIPPED = frozenset({"__pycache__", ".git", "node_modules", ".venv"})


@dataclass(frozen=True, slots=True)
class PackageMetadata:
    """The parsed `metadata.json` of a package."""

    type: str
    label: str
    path: str = ""
    module: str = ""


@dataclass(frozen=True, slots=True)
class ChaincodePackage:
    """A parsed install package: its metadata, code archive and package id."""

    metadata: PackageMetadata
    code: bytes
    package_id: str

    @property
    def type(self) -> str:
        """The package type in lower case (Fabric's builders compare it that way)."""
        return self.metadata.type.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """A `ccaas` package's `connection.json`: where and how the peer dials the server."""

    address: str
    dial_timeout: str = ""
    tls_required: bool = False
    client_auth_required: bool = False
    root_cert: str = ""
    client_key: str = ""
    client_cert: str = ""


def validate_label(label: str) -> None:
    """Fabric's label rule: alphanumerics and `._+-`, starting with an alphanumeric.

    Raises:
        InvalidPackage: the label breaks the rule.
    """
    if not _LABEL.fullmatch(label):
        raise InvalidPackage(
            f"invalid label '{label}'. Label must be non-empty, can only consist of "
            "alphanumerics, symbols from '.+-_', and can only begin with alphanumerics"
        )


def package_id(label: str, data: bytes) -> str:
    """`<label>:<hex SHA-256 of the package file>`."""
    return f"{label}:{hashlib.sha256(data).hexdigest()}"


def parse_package(data: bytes) -> ChaincodePackage:
    """Parse install package bytes as Fabric's peer does.

    Every entry must be a regular file; `metadata.json` and `code.tar.gz` are required,
    other top-level files are ignored.

    Raises:
        InvalidPackage: not a gzipped tar, a non-regular entry, a missing file, bad
            metadata or an invalid label.
    """
    files = _regular_files(data, what="chaincode package")
    code = files.get(CODE_FILE)
    if code is None:
        raise InvalidPackage("did not find a code package inside the package")
    raw_metadata = files.get(METADATA_FILE)
    if raw_metadata is None:
        raise InvalidPackage(
            f"did not find any package metadata (missing {METADATA_FILE})"
        )
    metadata = _parse_metadata(raw_metadata)
    validate_label(metadata.label)
    return ChaincodePackage(metadata, code, package_id(metadata.label, data))


def check_runnable(package: ChaincodePackage) -> None:
    """What Fabric's build step checks here: this peer can run the package's type.

    Raises:
        InvalidPackage: an unknown type, a Python package without a module to serve,
            a code archive that does not open, or a `ccaas` package without a valid
            `connection.json`.
    """
    kind = package.type
    if kind not in PACKAGE_TYPES:
        raise InvalidPackage(
            f"chaincode type '{package.metadata.type}' is not supported by this peer "
            f"(supported: {', '.join(PACKAGE_TYPES)})"
        )
    files = _regular_files(package.code, what=CODE_FILE)
    if kind == "python":
        _check_python_module(package, files)
    if kind == "node" and f"{SOURCE_FOLDER}/package.json" not in files:
        raise InvalidPackage(
            f"node package '{package.metadata.label}' has no "
            f"{SOURCE_FOLDER}/package.json in {CODE_FILE}"
        )
    if kind == "ccaas":
        connection_info(package.code)


def _check_python_module(package: ChaincodePackage, files: Mapping[str, bytes]) -> None:
    module = package.metadata.module
    label = package.metadata.label
    if not _MODULE.fullmatch(module):
        raise InvalidPackage(
            f"python package '{label}' names no module to serve ('module' in "
            f"{METADATA_FILE} is {module!r})"
        )
    top = module.partition(":")[0].partition(".")[0]
    candidates = (f"{SOURCE_FOLDER}/{top}.py", f"{SOURCE_FOLDER}/{top}/__init__.py")
    if not any(name in files for name in candidates):
        raise InvalidPackage(
            f"python package '{label}' serves module {module!r} but {CODE_FILE} has "
            f"neither {candidates[0]} nor {candidates[1]}"
        )


def code_files(code: bytes) -> dict[str, bytes]:
    """Every regular file of a code archive, by its path in the archive.

    Raises:
        InvalidPackage: the archive does not open or holds a non-regular entry.
    """
    return _regular_files(code, what=CODE_FILE)


def read_code_file(code: bytes, name: str) -> bytes | None:
    """The bytes of one regular file of a code archive (None when it has none).

    Raises:
        InvalidPackage: the archive does not open.
    """
    return _regular_files(code, what=CODE_FILE).get(name)


def connection_info(code: bytes) -> ConnectionInfo:
    """The `connection.json` of a `ccaas` package's code archive.

    Raises:
        InvalidPackage: missing, not a JSON object, without an address, or a field of
            the wrong type.
    """
    raw = read_code_file(code, CONNECTION_FILE)
    if raw is None:
        raise InvalidPackage(f"ccaas package has no {CONNECTION_FILE} in {CODE_FILE}")
    return parse_connection(raw)


def parse_connection(raw: bytes) -> ConnectionInfo:
    """Parse the bytes of a `connection.json`.

    Raises:
        InvalidPackage: not a JSON object, without an address, or a field of the
            wrong type.
    """
    document = _json_object(raw, what=CONNECTION_FILE)
    address = document.get("address")
    if not isinstance(address, str) or not address:
        raise InvalidPackage(f"{CONNECTION_FILE} has no 'address'")
    return ConnectionInfo(
        address=address,
        dial_timeout=_string(document, "dial_timeout", what=CONNECTION_FILE),
        tls_required=_boolean(document, "tls_required", what=CONNECTION_FILE),
        client_auth_required=_boolean(
            document, "client_auth_required", what=CONNECTION_FILE
        ),
        root_cert=_string(document, "root_cert", what=CONNECTION_FILE),
        client_key=_string(document, "client_key", what=CONNECTION_FILE),
        client_cert=_string(document, "client_cert", what=CONNECTION_FILE),
    )


def extract_code(code: bytes, target: Path) -> None:
    """Unpack a code archive into `target` (created); nothing may escape it.

    Raises:
        InvalidPackage: the archive does not open or holds unsafe entries (absolute
            paths, `..`, links leaving the folder, devices).
    """
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as error:
        raise InvalidPackage(f"could not unpack {CODE_FILE}: {error}") from None


def build_package(
    *, label: str, kind: str, source: Path, module: str = ""
) -> tuple[bytes, PackageMetadata]:
    """A deterministic install package of the folder `source` and its metadata.

    `python`: a folder that is a package (has `__init__.py`) goes in as `src/<name>/`
    and is served as `<name>` unless `module` says otherwise; any other folder goes in
    as `src/` and needs `module`. `node`: the folder (a Node project) becomes `src/`.
    `ccaas`: the folder's files (at least `connection.json`) sit at the archive's top.
    Caches (`__pycache__`, `node_modules`, `.git`) are left out.

    Raises:
        InvalidPackage: bad label or type, a missing folder, or no module for Python.
    """
    validate_label(label)
    kind = kind.lower()
    if kind not in PACKAGE_TYPES:
        raise InvalidPackage(
            f"unknown chaincode language '{kind}' (expected one of "
            f"{', '.join(PACKAGE_TYPES)})"
        )
    if not source.is_dir():
        raise InvalidPackage(f"{source}: not a folder")
    prefix = _code_prefix(kind, source)
    if kind == "python":
        module = module or (
            prefix.rsplit("/", 1)[-1] if prefix != SOURCE_FOLDER else ""
        )
    metadata = PackageMetadata(type=kind, label=label, path=source.name, module=module)
    code = _tar_gz(_folder_files(source, prefix))
    package = _tar_gz([(METADATA_FILE, _metadata_json(metadata)), (CODE_FILE, code)])
    check_runnable(ChaincodePackage(metadata, code, package_id(label, package)))
    return package, metadata


# Reading


def _regular_files(data: bytes, *, what: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                if not member.isreg():
                    raise InvalidPackage(
                        f"tar entry {member.name} of the {what} is not a regular file"
                    )
                if member.size > MAX_MEMBER_BYTES:
                    raise InvalidPackage(
                        f"tar entry {member.name} of the {what} is {member.size} "
                        f"bytes, more than {MAX_MEMBER_BYTES}"
                    )
                extracted = archive.extractfile(member)
                assert extracted is not None, "regular files can be read"
                files[_normal_name(member.name)] = extracted.read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as error:
        raise InvalidPackage(f"the {what} is not a gzipped tar: {error}") from None
    return files


def _normal_name(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _parse_metadata(raw: bytes) -> PackageMetadata:
    document = _json_object(raw, what=METADATA_FILE)
    return PackageMetadata(
        type=_string(document, "type", what=METADATA_FILE),
        label=_string(document, "label", what=METADATA_FILE),
        path=_string(document, "path", what=METADATA_FILE),
        module=_string(document, "module", what=METADATA_FILE),
    )


def _json_object(raw: bytes, *, what: str) -> Mapping[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPackage(f"could not unmarshal {what} as json: {error}") from None
    if not isinstance(document, dict):
        raise InvalidPackage(f"{what} is not a JSON object")
    return document


def _string(document: Mapping[str, Any], name: str, *, what: str) -> str:
    value = document.get(name, "")
    if not isinstance(value, str):
        raise InvalidPackage(f"'{name}' in {what} is not a string")
    return value


def _boolean(document: Mapping[str, Any], name: str, *, what: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise InvalidPackage(f"'{name}' in {what} is not true or false")
    return value


# Building


def _code_prefix(kind: str, source: Path) -> str:
    if kind == "ccaas":
        return ""
    if kind == "python" and (source / "__init__.py").is_file():
        return f"{SOURCE_FOLDER}/{source.resolve().name}"
    return SOURCE_FOLDER


def _folder_files(source: Path, prefix: str) -> list[tuple[str, bytes]]:
    files = []
    for path in sorted(_walk(source)):
        relative = path.relative_to(source).as_posix()
        name = f"{prefix}/{relative}" if prefix else relative
        files.append((name, path.read_bytes()))
    return files


def _walk(folder: Path) -> Iterator[Path]:
    for path in folder.iterdir():
        if path.name in _SKIPPED or path.suffix == ".pyc":
            continue
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file():
            yield path


def _tar_gz(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _metadata_json(metadata: PackageMetadata) -> bytes:
    document: dict[str, str] = {
        "type": metadata.type,
        "label": metadata.label,
        "path": metadata.path,
    }
    if metadata.module:
        document["module"] = metadata.module
    return json.dumps(document, separators=(",", ":")).encode()
