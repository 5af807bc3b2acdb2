"""`medledger chaincode install` of a package with a bad CouchDB index is refused.

Method: the two-hospital lifecycle network (`lifecycle_fixtures`); the console
command runs in a worker thread with Hospital A's Admin MSP folder, its output read
from stdout/stderr. The package is the records contract plus an index file with a key
Fabric does not allow; the peer must answer with an error naming the package and the
file, the command exit non-zero, and `queryinstalled` list nothing afterwards.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from peer.lifecycle.package import build_package
from tests.integration.peer import lifecycle_fixtures
from tests.integration.peer.lifecycle_fixtures import (
    CONTRACT,
    RECORDS,
    Network,
    medledger,
)
from tests.support.peer import HOSPITAL_A

BAD_INDEX = "META-INF/statedb/couchdb/indexes/bad.json"

material = lifecycle_fixtures.material
network = lifecycle_fixtures.network


async def test_install_of_a_package_with_a_bad_index_is_refused(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    """Non-zero exit, the package label and index file in the message, nothing stored."""
    source = network.folder / "code" / RECORDS
    index = source / BAD_INDEX
    index.parent.mkdir(parents=True)
    (source / "__init__.py").write_text(textwrap.dedent(CONTRACT).format(version="1"))
    index.write_text(json.dumps({"index": {"fields": ["owner"]}, "colour": "red"}))
    package, _ = build_package(label="records_bad", kind="python", source=source)
    package_file = network.folder / "records_bad.tar.gz"
    package_file.write_bytes(package)
    msp_dir = network.material.orderer.user(HOSPITAL_A, "Admin").msp_dir
    flags = ["--peer", network.peer_a.address, "--identity", str(msp_dir)]
    flags += ["--mspid", HOSPITAL_A]

    status, out, err = await medledger(
        capsys, "chaincode", "install", str(package_file), *flags
    )
    assert status != 0
    assert out == ""
    assert (
        f"chaincode package records_bad: src/{RECORDS}/{BAD_INDEX}: "
        "not a valid index definition: unknown key(s) ['colour']"
    ) in err, err

    status, out, err = await medledger(
        capsys, "chaincode", "queryinstalled", "-O", "json", *flags
    )
    assert status == 0, err
    assert json.loads(out).get("installed_chaincodes", []) == []
