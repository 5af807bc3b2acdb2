"""The peer's store of installed packages: Fabric's file names, lookups, restarts, refusals.

Method: real packages from `build_package`, a `PackageStore` over tmp_path; a second
store over the same folder stands for the peer after a restart.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peer.errors import InvalidPackage, LifecycleError, PackageNotFound
from peer.lifecycle.package import build_package
from peer.lifecycle.store import InstalledPackage, PackageStore, package_file_name


def records_package(root: Path, body: str = "contracts = []\n") -> bytes:
    folder = root / "src-folder" / "records"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(body)
    data, _ = build_package(label="records_1", kind="python", source=folder)
    return data


def test_install_writes_fabrics_file_and_unpacks_the_code(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "lifecycle")
    data = records_package(tmp_path)
    installed = store.install(data)
    assert installed == InstalledPackage(
        package_id=installed.package_id,
        label="records_1",
        type="python",
        module="records",
    )
    digest = installed.package_id.split(":")[1]
    assert package_file_name(installed.package_id) == f"records_1.{digest}.tar.gz"
    stored = tmp_path / "lifecycle/chaincodes" / f"records_1.{digest}.tar.gz"
    assert stored.read_bytes() == data
    code = store.code_dir(installed.package_id)
    assert (code / "src/records/__init__.py").read_text() == "contracts = []\n"
    assert store.load(installed.package_id) == data
    assert store.get(installed.package_id) == installed


def test_a_restarted_peer_lists_and_unpacks_what_was_installed(tmp_path: Path) -> None:
    first = PackageStore(tmp_path)
    one = first.install(records_package(tmp_path / "one"))
    two = first.install(records_package(tmp_path / "two", "contracts = [] # 2\n"))
    shutil.rmtree(tmp_path / "build")
    again = PackageStore(tmp_path)
    assert again.installed() == sorted([one, two], key=lambda p: p.package_id)
    assert (again.code_dir(two.package_id) / "src/records/__init__.py").exists()


def test_installing_twice_is_refused(tmp_path: Path) -> None:
    store = PackageStore(tmp_path)
    data = records_package(tmp_path)
    installed = store.install(data)
    with pytest.raises(
        LifecycleError, match="chaincode already successfully installed"
    ):
        store.install(data)
    assert store.installed() == [installed]


def test_invalid_packages_leave_nothing_behind(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "lifecycle")
    with pytest.raises(InvalidPackage):
        store.install(b"\x1f\x8b not really")
    assert store.installed() == []
    assert not (tmp_path / "lifecycle").exists()


@pytest.mark.parametrize(
    "package_id",
    [
        "records_1:" + "0" * 64,
        "../../etc:" + "0" * 64,
        "records_1",
        "records_1:xyz",
        "",
    ],
)
def test_unknown_or_malformed_package_ids_are_not_found(
    tmp_path: Path, package_id: str
) -> None:
    store = PackageStore(tmp_path)
    for lookup in (store.get, store.load, store.code_dir):
        with pytest.raises(PackageNotFound, match="chaincode install package"):
            lookup(package_id)
