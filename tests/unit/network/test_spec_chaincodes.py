"""Unit tests for network.spec_chaincodes: the ``chaincodes`` section of the consortium YAML.

Each invalid case changes one thing in a small valid document and checks that the
ConfigError names the file, the key path and what was expected.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from network.spec_chaincodes import (
    DEFAULT_ENDORSEMENT_REFERENCE,
    ChaincodeLanguage,
    ChaincodeSpec,
    collection_package,
    endorsement_policy_bytes,
    read_chaincodes,
)
from protos.peer import collection_pb2, policy_pb2
from tests.unit.network.spec_documents import (
    Change,
    Document,
    assert_config_error,
    commission,
    hospital_a,
    parse_changed,
)

ASSET = Path(__file__).parents[3] / "chaincode" / "contracts" / "asset"
EXAMPLES = Path(__file__).parents[3] / "network" / "examples"

BASE: Document = {
    "consortium": "test",
    "organizations": [
        hospital_a(),
        commission(),
    ],
    "channels": [
        {
            "name": "records",
            "members": ["HospitalAMSP"],
            "orderer": {"organizations": ["HealthCommissionMSP"]},
        }
    ],
    "chaincodes": [{"name": "asset", "path": str(ASSET)}],
}


def read(change: Change | None = None) -> tuple[ChaincodeSpec, ...]:
    return read_chaincodes(parse_changed(BASE, change, source="cc.yaml"))


def chaincode(document: Document) -> dict[str, Any]:
    entry: dict[str, Any] = document["chaincodes"][0]
    return entry


def test_defaults() -> None:
    """A name and a path are enough: python, 1.0, sequence 1, every channel."""
    [spec] = read()

    assert spec.name == "asset"
    assert spec.path == ASSET.resolve()
    assert spec.language is ChaincodeLanguage.PYTHON
    assert (spec.version, spec.sequence, spec.label) == ("1.0", 1, "asset_1.0")
    assert spec.channels == ("records",)
    assert spec.endorsement_policy == DEFAULT_ENDORSEMENT_REFERENCE
    assert spec.module is None
    assert not spec.init_required
    assert spec.collections == ()


def test_all_keys() -> None:
    [spec] = read(
        lambda d: chaincode(d).update(
            version=2.1,
            sequence=3,
            module="chaincode.contracts.asset",
            endorsement_policy="OR('HospitalAMSP.peer')",
            init_required=True,
            collections=[
                {
                    "name": "hospitalA-private",
                    "policy": "OR('HospitalAMSP.member')",
                    "required_peer_count": 1,
                    "max_peer_count": 2,
                    "block_to_live": 10,
                    "member_only_read": False,
                    "endorsement_policy": "OR('HospitalAMSP.peer')",
                }
            ],
        )
    )

    assert (spec.version, spec.sequence) == ("2.1", 3)
    assert spec.module == "chaincode.contracts.asset"
    assert spec.init_required
    [collection] = spec.collections
    assert (collection.required_peer_count, collection.max_peer_count) == (1, 2)
    assert collection.block_to_live == 10
    assert not collection.member_only_read
    assert collection.member_only_write


def test_relative_path_is_relative_to_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / "__init__.py").write_text("")
    document = copy.deepcopy(BASE)
    chaincode(document)["path"] = "cc"
    file = tmp_path / "consortium.yaml"
    file.write_text(yaml.safe_dump(document))

    from network.spec import load_spec

    [spec] = read_chaincodes(load_spec(file))
    assert spec.path == (tmp_path / "cc").resolve()


def test_ccaas_listens_on_its_port() -> None:
    [spec] = read(lambda d: chaincode(d).update(language="ccaas", port=9999))

    assert spec.address == "127.0.0.1:9999"


def test_endorsement_policy_bytes() -> None:
    reference = policy_pb2.ApplicationPolicy.FromString(
        endorsement_policy_bytes(DEFAULT_ENDORSEMENT_REFERENCE)
    )
    signature = policy_pb2.ApplicationPolicy.FromString(
        endorsement_policy_bytes("OR('HospitalAMSP.peer')")
    )

    assert reference.channel_config_policy_reference == DEFAULT_ENDORSEMENT_REFERENCE
    assert signature.WhichOneof("Type") == "signature_policy"


def test_collection_package() -> None:
    [spec] = read(
        lambda d: chaincode(d).update(
            collections=[{"name": "private", "policy": "OR('HospitalAMSP.member')"}]
        )
    )

    package = collection_pb2.CollectionConfigPackage.FromString(
        collection_package(spec.collections)
    )

    [config] = package.config
    static = config.static_collection_config
    assert static.name == "private"
    assert static.maximum_peer_count == 1
    assert static.member_only_read
    assert static.member_only_write
    assert static.member_orgs_policy.HasField("signature_policy")
    assert not static.HasField("endorsement_policy")
    assert collection_package(()) == b""


INVALID: list[tuple[str, Change, str]] = [
    (
        "unknown key",
        lambda d: chaincode(d).update(lang="python"),
        "chaincodes[0].lang: unknown key 'lang'",
    ),
    (
        "missing path",
        lambda d: chaincode(d).pop("path"),
        "chaincodes[0]: missing key 'path'",
    ),
    (
        "path not a folder",
        lambda d: chaincode(d).update(path="/no/such/folder"),
        "chaincodes[0].path: no folder /no/such/folder",
    ),
    (
        "bad language",
        lambda d: chaincode(d).update(language="java"),
        "chaincodes[0].language: expected the language 'python', 'node' or 'ccaas'",
    ),
    (
        "unknown channel",
        lambda d: chaincode(d).update(channels=["billing"]),
        "chaincodes[0].channels[0]: no channel 'billing' in this spec",
    ),
    (
        "bad policy",
        lambda d: chaincode(d).update(endorsement_policy="OR('HospitalAMSP.peer'"),
        "chaincodes[0].endorsement_policy: not a valid policy",
    ),
    (
        "policy names an unknown organisation",
        lambda d: chaincode(d).update(endorsement_policy="OR('NopeMSP.peer')"),
        "chaincodes[0].endorsement_policy: the policy names MSP id 'NopeMSP'",
    ),
    (
        "sequence zero",
        lambda d: chaincode(d).update(sequence=0),
        "chaincodes[0].sequence: expected an integer",
    ),
    (
        "ccaas without port",
        lambda d: chaincode(d).update(language="ccaas"),
        "chaincodes[0]: missing key 'port'",
    ),
    (
        "port on python chaincode",
        lambda d: chaincode(d).update(port=9999),
        "chaincodes[0].port: 'port' applies to ccaas chaincode only",
    ),
    (
        "folder that is no package needs a module",
        lambda d: chaincode(d).update(path=str(EXAMPLES)),
        "chaincodes[0]: missing key 'module'",
    ),
    (
        "duplicate name",
        lambda d: d["chaincodes"].append(dict(chaincode(d))),
        "chaincodes[1].name: duplicate chaincode name",
    ),
    (
        "collection without policy",
        lambda d: chaincode(d).update(collections=[{"name": "private"}]),
        "chaincodes[0].collections[0]: missing key 'policy'",
    ),
    (
        "collection peer counts",
        lambda d: chaincode(d).update(
            collections=[
                {
                    "name": "private",
                    "policy": "OR('HospitalAMSP.member')",
                    "required_peer_count": 2,
                    "max_peer_count": 1,
                }
            ]
        ),
        "max_peer_count (1) must not be below required_peer_count (2)",
    ),
    (
        "collection policy is a path",
        lambda d: chaincode(d).update(
            collections=[{"name": "p", "policy": "/Channel/Application/Readers"}]
        ),
        "chaincodes[0].collections[0].policy: expected a signature policy",
    ),
]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [pytest.param(change, fragment, id=name) for name, change, fragment in INVALID],
)
def test_invalid_section_is_rejected(change: Change, fragment: str) -> None:
    assert_config_error(lambda: read(change), source="cc.yaml", fragment=fragment)
