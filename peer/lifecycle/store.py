"""The chaincode packages installed on this peer: install, list, look up by package id.

Before execution. `InstallChaincode` lands here; the launcher later runs what
`code_dir` unpacked. Layout under the peer's storage folder, `lifecycle/`:

    chaincodes/<label>.<sha256>.tar.gz   the package file as installed (Fabric's name)
    build/<label>.<sha256>/              its code archive, unpacked once

Files are written to a temporary name, flushed and renamed, so a crash never leaves a
half-written package or build folder behind under the final name.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from peer.errors import InvalidPackage, LifecycleError, PackageNotFound
from peer.lifecycle.index_check import check_package_indexes
from peer.lifecycle.package import (
    ChaincodePackage,
    check_runnable,
    extract_code,
    parse_package,
)

__all__ = ["LIFECYCLE_FOLDER", "InstalledPackage", "PackageStore", "package_file_name"]

LIFECYCLE_FOLDER = "lifecycle"
_CHAINCODES = "chaincodes"
_BUILD = "build"
_PACKAGE_FILE = re.compile(r"(.+)[.]([0-9a-f]{64})[.]tar[.]gz")
_PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*:[0-9a-f]{64}")
_TEMPORARY = ".partial-"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledPackage:
    """One installed package: its id, label, type and (Python) module to serve."""

    package_id: str
    label: str
    type: str
    module: str = ""


def package_file_name(package_id: str) -> str:
    """Fabric's file name of a package: the id's first ':' becomes '.', plus .tar.gz."""
    return package_id.replace(":", ".", 1) + ".tar.gz"


class PackageStore:
    """The installed packages under `folder` (thread-safe; calls block on disk I/O)."""

    def __init__(self, folder: Path) -> None:
        self._packages = folder / _CHAINCODES
        self._builds = folder / _BUILD
        self._lock = threading.Lock()
        self._known: dict[str, InstalledPackage] = {}

    def install(self, data: bytes) -> InstalledPackage:
        """Check, store and unpack a package; returns what was installed.

        Raises:
            InvalidPackage: the bytes are no package this peer can run, or a file
                under `META-INF/statedb/` is a bad or misplaced index (nothing is
                stored).
            LifecycleError: the package is already installed, or it cannot be stored.
        """
        package = parse_package(data)
        check_runnable(package)
        check_package_indexes(package)
        installed = _installed(package)
        with self._lock:
            path = self._packages / package_file_name(package.package_id)
            if path.exists():
                raise LifecycleError(
                    "chaincode already successfully installed (package ID "
                    f"'{package.package_id}')"
                )
            try:
                _write_atomically(path, data)
                self._unpack(package)
            except OSError as error:
                path.unlink(missing_ok=True)
                raise LifecycleError(
                    f"could not save cc install package: {error}"
                ) from error
            self._known[package.package_id] = installed
        return installed

    def installed(self) -> list[InstalledPackage]:
        """Every installed package, by package id.

        Raises:
            LifecycleError: the folder cannot be read or holds a broken package.
        """
        with self._lock:
            try:
                names = sorted(p.name for p in self._packages.iterdir())
            except FileNotFoundError:
                return []
            except OSError as error:
                raise LifecycleError(
                    f"error reading chaincode directory at {self._packages}: {error}"
                ) from error
            ids = [_id_of(name) for name in names if _PACKAGE_FILE.fullmatch(name)]
            return [self._describe(package_id) for package_id in sorted(ids)]

    def get(self, package_id: str) -> InstalledPackage:
        """The installed package with this id.

        Raises:
            PackageNotFound: it is not installed.
            LifecycleError: its file cannot be read or parsed.
        """
        with self._lock:
            return self._describe(package_id)

    def load(self, package_id: str) -> bytes:
        """The package file's bytes.

        Raises:
            PackageNotFound: it is not installed.
        """
        if not _PACKAGE_ID.fullmatch(package_id):
            raise _not_found(package_id)
        try:
            return (self._packages / package_file_name(package_id)).read_bytes()
        except FileNotFoundError:
            raise _not_found(package_id) from None
        except OSError as error:
            raise LifecycleError(
                f"could not load cc install package '{package_id}': {error}"
            ) from error

    def code_dir(self, package_id: str) -> Path:
        """The folder holding the package's unpacked code (unpacked on first use).

        Raises:
            PackageNotFound: it is not installed.
            LifecycleError: it cannot be unpacked.
        """
        if not _PACKAGE_ID.fullmatch(package_id):
            raise _not_found(package_id)
        folder = self._builds / package_file_name(package_id).removesuffix(".tar.gz")
        if folder.is_dir():
            return folder
        package = _parse_stored(package_id, self.load(package_id))
        with self._lock:
            try:
                self._unpack(package)
            except OSError as error:
                raise LifecycleError(
                    f"could not unpack chaincode package '{package_id}': {error}"
                ) from error
        return folder

    # Helpers (called with the lock held)

    def _describe(self, package_id: str) -> InstalledPackage:
        known = self._known.get(package_id)
        if known is None:
            known = _installed(_parse_stored(package_id, self.load(package_id)))
            self._known[package_id] = known
        return known

    def _unpack(self, package: ChaincodePackage) -> None:
        name = package_file_name(package.package_id).removesuffix(".tar.gz")
        final = self._builds / name
        if final.is_dir():
            return
        staging = self._builds / f"{_TEMPORARY}{name}"
        shutil.rmtree(staging, ignore_errors=True)
        extract_code(package.code, staging)
        staging.rename(final)


def _installed(package: ChaincodePackage) -> InstalledPackage:
    return InstalledPackage(
        package_id=package.package_id,
        label=package.metadata.label,
        type=package.type,
        module=package.metadata.module,
    )


def _parse_stored(package_id: str, data: bytes) -> ChaincodePackage:
    try:
        package = parse_package(data)
    except InvalidPackage as error:
        raise LifecycleError(
            f"installed package '{package_id}' does not parse: {error}"
        ) from error
    if package.package_id != package_id:
        raise LifecycleError(
            f"installed package file of '{package_id}' holds '{package.package_id}'"
        )
    return package


def _id_of(file_name: str) -> str:
    match = _PACKAGE_FILE.fullmatch(file_name)
    assert match is not None, "only package file names are passed"
    return f"{match.group(1)}:{match.group(2)}"


def _not_found(package_id: str) -> PackageNotFound:
    return PackageNotFound(
        f"chaincode install package '{package_id}' not found", package_id=package_id
    )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{_TEMPORARY}{path.name}")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    temporary.rename(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
