"""Chaincode install packages: Fabric's format, package ids, and what a peer refuses.

Method: packages are built with `build_package` from folders in tmp_path, or written
byte by byte with tarfile to make each malformed case differ in one thing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from peer.errors import InvalidPackage
from peer.lifecycle.package import (
    ChaincodePackage,
    PackageMetadata,
    build_package,
    check_runnable,
    connection_info,
    extract_code,
    package_id,
    parse_package,
    read_code_file,
)


def tar_gz(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        if symlink is not None:
            link = tarfile.TarInfo(symlink)
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            archive.addfile(link)
    return buffer.getvalue()


def package_bytes(
    metadata: dict[str, str] | None = None, code: dict[str, bytes] | None = None
) -> bytes:
    document = metadata or {"type": "python", "label": "records_1", "module": "records"}
    source = (
        code if code is not None else {"src/records/__init__.py": b"contracts = []"}
    )
    return tar_gz(
        {"metadata.json": json.dumps(document).encode(), "code.tar.gz": tar_gz(source)}
    )


def python_folder(root: Path, name: str = "records") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("contracts = []\n")
    (folder / "contract.py").write_text("# the contract\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "contract.cpython-311.pyc").write_bytes(b"\0")
    return folder


def test_package_id_is_label_and_sha256_of_the_whole_file() -> None:
    data = package_bytes()
    parsed = parse_package(data)
    assert parsed.package_id == f"records_1:{hashlib.sha256(data).hexdigest()}"
    assert parsed.package_id == package_id("records_1", data)
    assert parsed.metadata == PackageMetadata("python", "records_1", "", "records")


def test_a_python_folder_packages_deterministically_without_caches(
    tmp_path: Path,
) -> None:
    folder = python_folder(tmp_path)
    first, metadata = build_package(label="records_1", kind="python", source=folder)
    second, _ = build_package(label="records_1", kind="python", source=folder)
    assert first == second
    assert metadata == PackageMetadata("python", "records_1", "records", "records")
    parsed = parse_package(first)
    assert read_code_file(parsed.code, "src/records/contract.py") == b"# the contract\n"
    assert (
        read_code_file(parsed.code, "src/records/__pycache__/contract.cpython-311.pyc")
        is None
    )
    with gzip.open(io.BytesIO(first)) as unpacked:
        assert unpacked.read(1)  # a gzip stream with a zero mtime in its header
    assert first[4:8] == b"\0\0\0\0"


def test_a_folder_of_modules_needs_a_module_to_serve(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "records.py").write_text("contracts = []\n")
    with pytest.raises(InvalidPackage, match="names no module to serve"):
        build_package(label="flat", kind="python", source=folder)
    data, metadata = build_package(
        label="flat", kind="python", source=folder, module="records"
    )
    assert metadata.module == "records"
    assert read_code_file(parse_package(data).code, "src/records.py") is not None


def test_ccaas_and_node_packages(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    (service / "connection.json").write_text(
        json.dumps(
            {"address": "records:9999", "dial_timeout": "10s", "tls_required": False}
        )
    )
    data, _ = build_package(label="records_ccaas", kind="ccaas", source=service)
    info = connection_info(parse_package(data).code)
    assert (info.address, info.dial_timeout, info.tls_required) == (
        "records:9999",
        "10s",
        False,
    )
    project = tmp_path / "node"
    project.mkdir()
    (project / "package.json").write_text('{"name": "records"}')
    (project / "node_modules").mkdir()
    (project / "node_modules" / "x.js").write_text("")
    data, metadata = build_package(label="records_node", kind="node", source=project)
    code = parse_package(data).code
    assert metadata.type == "node"
    assert read_code_file(code, "src/package.json") is not None
    assert read_code_file(code, "src/node_modules/x.js") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a gzip stream", "not a gzipped tar"),
        (tar_gz({"code.tar.gz": tar_gz({})}), r"missing metadata.json"),
        (tar_gz({"metadata.json": b'{"label": "x"}'}), "did not find a code package"),
        (
            package_bytes({"type": "python", "label": "bad label"}),
            "invalid label 'bad label'",
        ),
        (package_bytes({"type": "python", "label": ""}), "invalid label ''"),
        (package_bytes({"type": "python", "label": "_x"}), "invalid label '_x'"),
        (
            tar_gz({"metadata.json": b"[1]", "code.tar.gz": tar_gz({})}),
            "metadata.json is not a JSON object",
        ),
        (
            tar_gz({"metadata.json": b"{", "code.tar.gz": tar_gz({})}),
            "could not unmarshal metadata.json",
        ),
        (
            tar_gz({"metadata.json": b'{"label": 1}', "code.tar.gz": tar_gz({})}),
            "'label' in metadata.json is not a string",
        ),
        (tar_gz({}, symlink="metadata.json"), "is not a regular file"),
    ],
)
def test_malformed_packages_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidPackage, match=message):
        parse_package(data)


def test_fabric_peer_cli_packages_parse_but_golang_does_not_run_here() -> None:
    """A package as `peer lifecycle chaincode package` writes it (type golang, path)."""
    data = package_bytes(
        {"path": "github.com/x/records", "type": "golang", "label": "records_1"},
        {"src/github.com/x/records/main.go": b"package main"},
    )
    parsed = parse_package(data)
    assert parsed.metadata.path == "github.com/x/records"
    with pytest.raises(InvalidPackage, match="type 'golang' is not supported"):
        check_runnable(parsed)


@pytest.mark.parametrize(
    ("metadata", "code", "message"),
    [
        ({"type": "python", "label": "r"}, {"src/r.py": b""}, "names no module"),
        (
            {"type": "python", "label": "r", "module": "records"},
            {"src/other.py": b""},
            "neither src/records.py nor src/records/__init__.py",
        ),
        ({"type": "node", "label": "r"}, {"src/index.js": b""}, "no src/package.json"),
        ({"type": "ccaas", "label": "r"}, {}, "no connection.json"),
        (
            {"type": "CCAAS", "label": "r"},
            {"connection.json": b"{}"},
            "has no 'address'",
        ),
        (
            {"type": "ccaas", "label": "r"},
            {"connection.json": b'{"address": "a:1", "tls_required": "yes"}'},
            "'tls_required' in connection.json is not true or false",
        ),
    ],
)
def test_packages_this_peer_cannot_run_are_refused(
    metadata: dict[str, str], code: dict[str, bytes], message: str
) -> None:
    with pytest.raises(InvalidPackage, match=message):
        check_runnable(parse_package(package_bytes(metadata, code)))


def test_code_is_unpacked_inside_its_folder_only(tmp_path: Path) -> None:
    extract_code(tar_gz({"src/records/__init__.py": b"x = 1"}), tmp_path / "ok")
    assert (tmp_path / "ok/src/records/__init__.py").read_bytes() == b"x = 1"
    with pytest.raises(InvalidPackage, match="could not unpack"):
        extract_code(tar_gz({"../escape.py": b""}), tmp_path / "evil")
    assert not (tmp_path / "escape.py").exists()
    with pytest.raises(InvalidPackage, match="could not unpack"):
        extract_code(tar_gz({}, symlink="src/link"), tmp_path / "link")


def test_unknown_language_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackage, match="unknown chaincode language 'java'"):
        build_package(label="x", kind="java", source=tmp_path)
    with pytest.raises(InvalidPackage, match="not a folder"):
        build_package(label="x", kind="python", source=tmp_path / "none")
    assert isinstance(parse_package(package_bytes()), ChaincodePackage)
