"""`medledger chaincode getinstalledpackage` and `calculatepackageid` against a real peer.

Method: the network of `lifecycle_fixtures` (one test, so one start); Hospital A's
admin installs a package on its peer with `medledger chaincode install`, then fetches
it back with `getinstalledpackage` and the file's id is recomputed offline with
`calculatepackageid`. A clinician of A (no admin) gets the refusal `install` gives
it, and an id the peer never installed is named as not found.
"""

from __future__ import annotations

import pytest

from peer.lifecycle.package import package_id
from tests.integration.peer import lifecycle_fixtures
from tests.integration.peer.lifecycle_fixtures import (
    Network,
    medledger,
    records_package,
)
from tests.support.peer import HOSPITAL_A

material = lifecycle_fixtures.material
network = lifecycle_fixtures.network


def flags(network: Network, user: str) -> list[str]:
    msp_dir = network.material.orderer.user(HOSPITAL_A, user).msp_dir
    return [
        *("--peer", network.peer_a.address),
        *("--identity", str(msp_dir), "--mspid", HOSPITAL_A),
    ]


async def test_an_admin_fetches_an_installed_package_and_others_cannot(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    package, label = records_package(network.folder / "code", "1.0")
    installed = package_id(label, package)
    package_file = network.folder / "records.tar.gz"
    package_file.write_bytes(package)
    status, _, err = await medledger(
        capsys, "chaincode", "install", str(package_file), *flags(network, "Admin")
    )
    assert status == 0, err

    fetched = network.folder / "fetched" / "from-a"
    status, out, err = await medledger(
        capsys,
        *("chaincode", "getinstalledpackage", "--package-id", installed),
        *("--output-directory", str(fetched)),
        *flags(network, "Admin"),
    )
    written = fetched / f"{installed}.tar.gz"
    assert (status, out, err) == (0, f"{written}\n", "")
    assert written.read_bytes() == package
    assert [path.name for path in fetched.iterdir()] == [written.name]
    status, out, _ = await medledger(
        capsys, "chaincode", "calculatepackageid", str(written)
    )
    assert (status, out) == (0, f"{installed}\n")

    # A clinician is refused as it is for install, and nothing is written.
    elsewhere = network.folder / "fetched" / "by-clinician"
    _, _, install_refusal = await medledger(
        capsys,
        *("chaincode", "install", str(package_file)),
        *flags(network, "dr-lee"),
    )
    status, out, err = await medledger(
        capsys,
        *("chaincode", "getinstalledpackage", "--package-id", installed),
        *("--output-directory", str(elsewhere)),
        *flags(network, "dr-lee"),
    )
    assert (status, out) == (1, "")
    assert err == install_refusal
    assert "not an admin under this MSP [HospitalAMSP]" in err
    assert err.count("\n") == 1
    assert not elsewhere.exists()

    unknown = f"{label}:{'0' * 64}"
    status, out, err = await medledger(
        capsys,
        *("chaincode", "getinstalledpackage", "--package-id", unknown),
        *("--output-directory", str(elsewhere)),
        *flags(network, "Admin"),
    )
    assert (status, out) == (1, "")
    assert err == (
        f"medledger: error: peer {network.peer_a.address}: chaincode install "
        f"package '{unknown}' not found (status 404)\n"
    )
    assert not elsewhere.exists()
