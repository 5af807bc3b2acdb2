"""Unit tests for network.spec (and common.config): loading the consortium YAML.

Each invalid case changes one thing in a small valid document and checks that the
ConfigError names the key path and says what was expected.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from common.config import ConfigNode
from common.errors import ConfigError
from network.spec import (
    RESERVED_SECTIONS,
    ConsortiumSpec,
    NodeRole,
    load_spec,
    parse_spec,
)
from tests.unit.example_channel import EXAMPLE
from tests.unit.network.spec_documents import (
    Change,
    Document,
    assert_config_error,
    commission,
    hospital_a,
    org,
    parse_changed,
)

BASE: Document = {
    "consortium": "test-consortium",
    "organizations": [
        hospital_a(
            users=[
                {"name": "Admin", "admin": True},
                {"name": "dr-lee", "attributes": {"role": "clinician"}},
            ]
        ),
        commission(),
    ],
}


def load(change: Change | None = None) -> ConsortiumSpec:
    """Parse BASE after applying `change` to a deep copy of it."""
    return parse_changed(BASE, change, source="test.yaml")


# --- the example and valid documents ----------------------------------------------


def test_example_loads_with_three_hospitals_and_a_commission() -> None:
    """The shipped example is valid and has the shape the brief describes."""
    spec = load_spec(EXAMPLE)

    assert spec.name == "hospital-consortium"
    assert spec.source == EXAMPLE
    assert [o.mspid for o in spec.organizations] == [
        "HospitalAMSP",
        "HospitalBMSP",
        "HospitalCMSP",
        "HealthCommissionMSP",
    ]
    for hospital in spec.organizations[:3]:
        assert [p.name for p in hospital.peers] == ["peer0"]
        assert hospital.orderers == ()
        roles = {u.attributes.get("role") for u in hospital.users}
        assert {"clinician", "patient"} <= roles
        assert [u.name for u in hospital.admins] == ["Admin"]
    commission = spec.organization("HealthCommissionMSP")
    assert commission.peers == ()
    assert [o.name for o in commission.orderers] == ["orderer0", "orderer1", "orderer2"]
    assert {o.role for o in commission.orderers} == {NodeRole.ORDERER}


def test_example_patient_has_its_attributes() -> None:
    hospital_a = load_spec(EXAMPLE).organization("HospitalAMSP")

    patient = next(u for u in hospital_a.users if u.name == "patient-0017")

    assert dict(patient.attributes) == {"role": "patient", "patient_id": "P0017"}
    assert patient.full_name == "patient-0017@hospital-a.example.com"
    assert not patient.admin


def test_node_names_and_addresses() -> None:
    peer = load().organizations[0].peers[0]

    assert peer.full_name == "peer0.hospital-a.example.com"
    assert peer.address == "127.0.0.1:7051"
    assert peer.role is NodeRole.PEER


def test_ipv6_address_is_bracketed() -> None:
    spec = load(lambda d: org(d, 0)["peers"][0].update(host="::1"))

    assert spec.organizations[0].peers[0].address == "[::1]:7051"


def test_reserved_sections_are_accepted_and_kept_unparsed() -> None:
    """Keys that later versions define load now, as raw nodes for their own readers."""
    spec = load(lambda d: d.update(channels=[{"name": "records"}], chaincodes={}))

    assert set(spec.reserved) == {"channels", "chaincodes"}
    assert set(spec.reserved) <= set(RESERVED_SECTIONS)
    channels = spec.reserved["channels"]
    assert isinstance(channels, ConfigNode)
    assert channels.as_list()[0].as_mapping(required=("name",))["name"].as_str() == (
        "records"
    )


def test_same_port_on_different_hosts_is_allowed() -> None:
    spec = load(lambda d: org(d, 1)["orderers"][0].update(host="10.0.0.2", port=7051))

    assert spec.organizations[1].orderers[0].port == 7051


def test_missing_and_null_node_lists_mean_none() -> None:
    spec = load(lambda d: org(d, 0).update(peers=None))

    assert spec.organizations[0].peers == ()
    assert spec.organizations[1].peers == ()


def test_yaml_anchors_may_share_attributes() -> None:
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "attributes:\n", "attributes: &clinician\n", 1
    )
    text += "channels: *clinician\n"

    spec = parse_spec(text)

    assert spec.reserved["channels"].as_items()[0][0] == "role"


def test_spec_is_frozen() -> None:
    spec = load()

    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.organizations[0].users[1].attributes["role"] = "x"  # type: ignore[index]


# --- invalid documents: one change each -------------------------------------------


def _delete(key: str, index: int = 0) -> Change:
    return lambda d: org(d, index).pop(key)


INVALID: list[tuple[str, Change, str]] = [
    (
        "missing consortium",
        lambda d: d.pop("consortium"),
        "top level: missing key 'consortium'",
    ),
    (
        "missing mspid",
        _delete("mspid", 1),
        "organizations[1]: missing key 'mspid'",
    ),
    (
        "missing users",
        _delete("users"),
        "organizations[0]: missing key 'users'",
    ),
    (
        "organizations not a list",
        lambda d: d.update(organizations={"a": 1}),
        "organizations: expected a list, got a mapping",
    ),
    (
        "no organisations",
        lambda d: d.update(organizations=[]),
        "organizations: expected at least one organisation",
    ),
    (
        "organisation not a mapping",
        lambda d: d["organizations"].append("Hospital B"),
        "organizations[2]: expected a mapping, got 'Hospital B'",
    ),
    (
        "port is text",
        lambda d: org(d, 0)["peers"][0].update(port="7051"),
        "organizations[0].peers[0].port: expected an integer from 1 to 65535, "
        "got '7051'",
    ),
    (
        "port out of range",
        lambda d: org(d, 0)["peers"][0].update(port=70000),
        "organizations[0].peers[0].port: expected an integer from 1 to 65535",
    ),
    (
        "port is a boolean",
        lambda d: org(d, 0)["peers"][0].update(port=True),
        "got the boolean true",
    ),
    (
        "admin is text",
        lambda d: org(d, 0)["users"][0].update(admin="yes please"),
        "organizations[0].users[0].admin: expected true or false",
    ),
    (
        "mspid with a space",
        lambda d: org(d, 0).update(mspid="Hospital A"),
        "organizations[0].mspid: expected an MSP id",
    ),
    (
        "mspid with a bang",
        lambda d: org(d, 0).update(mspid="HospitalA!"),
        "got 'HospitalA!'",
    ),
    (
        "duplicate mspid",
        lambda d: org(d, 1).update(mspid="HospitalAMSP"),
        "organizations[1].mspid: duplicate MSP id 'HospitalAMSP' "
        "(already used at organizations[0].mspid)",
    ),
    (
        "duplicate organisation name ignoring case",
        lambda d: org(d, 1).update(name="HOSPITAL A"),
        "organizations[1].name: duplicate organisation name 'HOSPITAL A'",
    ),
    (
        "duplicate domain",
        lambda d: org(d, 1).update(domain="hospital-a.example.com"),
        "organizations[1].domain: duplicate domain 'hospital-a.example.com'",
    ),
    (
        "duplicate host and port across organisations",
        lambda d: org(d, 1)["orderers"][0].update(port=7051),
        "organizations[1].orderers[0].port: duplicate host and port 127.0.0.1:7051 "
        "(already used at organizations[0].peers[0].port)",
    ),
    (
        "peer and orderer with one name",
        lambda d: org(d, 0).update(
            orderers=[{"name": "peer0", "host": "127.0.0.1", "port": 7060}]
        ),
        "organizations[0].orderers[0].name: duplicate node name 'peer0'",
    ),
    (
        "duplicate user ignoring case",
        lambda d: org(d, 0)["users"].append({"name": "DR-LEE"}),
        "organizations[0].users[2].name: duplicate user name 'DR-LEE' "
        "(already used at organizations[0].users[1].name)",
    ),
    (
        "unknown top-level key with a suggestion",
        lambda d: d.update(chanels=[]),
        "chanels: unknown key 'chanels'",
    ),
    (
        "unknown organisation key",
        lambda d: org(d, 0).update(msp_id="x"),
        "organizations[0].msp_id: unknown key 'msp_id' (expected one of: domain, "
        "gateways, mspid, name, orderers, peers, users); did you mean 'mspid'?",
    ),
    (
        "unknown node key",
        lambda d: org(d, 0)["peers"][0].update(listen="0.0.0.0:7051"),
        "organizations[0].peers[0].listen: unknown key 'listen'",
    ),
    (
        "unknown user key",
        lambda d: org(d, 0)["users"][0].update(role="admin"),
        "organizations[0].users[0].role: unknown key 'role'",
    ),
    (
        "no admin user",
        lambda d: org(d, 1)["users"][0].update(admin=False),
        "organizations[1].users: expected at least one user with 'admin: true'",
    ),
    (
        "numeric attribute value",
        lambda d: org(d, 0)["users"][1]["attributes"].update(patient_id=17),
        "organizations[0].users[1].attributes.patient_id: expected a text value "
        "(quote numbers",
    ),
    (
        "reserved hf. attribute",
        lambda d: org(d, 0)["users"][1]["attributes"].update({"hf.Type": "peer"}),
        "attributes.hf.Type: attribute 'hf.Type' is reserved",
    ),
    (
        "attribute name with a space",
        lambda d: org(d, 0)["users"][1]["attributes"].update({"care team": "x"}),
        "expected an attribute name",
    ),
    (
        "attributes not a mapping",
        lambda d: org(d, 0)["users"][1].update(attributes=["clinician"]),
        "organizations[0].users[1].attributes: expected a mapping, got a list",
    ),
    (
        "user name with a slash",
        lambda d: org(d, 0)["users"][1].update(name="dr/lee"),
        "organizations[0].users[1].name: expected a user name",
    ),
    (
        "user name too long for a common name",
        lambda d: org(d, 0)["users"][1].update(name="d" * 50),
        "is longer than 64 characters",
    ),
    (
        "upper-case node name",
        lambda d: org(d, 0)["peers"][0].update(name="Peer0"),
        "organizations[0].peers[0].name: expected a lower-case DNS label",
    ),
    (
        "domain with an underscore",
        lambda d: org(d, 0).update(domain="hospital_a.example.com"),
        "organizations[0].domain: expected a lower-case DNS domain",
    ),
    (
        "host with a space",
        lambda d: org(d, 0)["peers"][0].update(host="peer zero"),
        "organizations[0].peers[0].host: expected a host name or IP address",
    ),
    (
        "wildcard host",
        lambda d: org(d, 0)["peers"][0].update(host="0.0.0.0"),
        "0.0.0.0 is the listen-on-all address",
    ),
    (
        "bad subject alternative name",
        lambda d: org(d, 0)["peers"][0].update(sans=["a b"]),
        "organizations[0].peers[0].sans[0]: expected a host name",
    ),
    (
        "empty consortium name",
        lambda d: d.update(consortium=""),
        "consortium: expected a consortium name",
    ),
]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [pytest.param(change, fragment, id=name) for name, change, fragment in INVALID],
)
def test_invalid_spec_is_rejected(change: Change, fragment: str) -> None:
    assert_config_error(lambda: load(change), source="test.yaml", fragment=fragment)


def test_duplicate_yaml_key_is_rejected() -> None:
    """Plain YAML loading would keep the last value silently."""
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "  mspid: HospitalAMSP\n", "  mspid: HospitalAMSP\n  mspid: OtherMSP\n"
    )

    with pytest.raises(ConfigError, match=r"organizations\[0\]\.mspid: duplicate key"):
        parse_spec(text, source="test.yaml")


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^test\.yaml, line 2: not valid YAML"):
        parse_spec(
            "consortium: x\n  bad: indent\norganizations: []\n", source="test.yaml"
        )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("- consortium\n", "top level: expected a mapping of keys at the top level"),
        (
            "consortium: !!python/object:os.system x\norganizations: []\n",
            "consortium: cannot read the value",
        ),
    ],
)
def test_unusable_documents_are_rejected(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_spec(text, source="test.yaml")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "consortium.yaml"
    document = copy.deepcopy(BASE)
    org(document, 1)["mspid"] = "Bad MSP"
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    with pytest.raises(ConfigError) as raised:
        load_spec(path)

    assert str(raised.value).startswith(f"{path}, line ")
    assert "organizations[1].mspid" in str(raised.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError, match="cannot read the file"):
        load_spec(missing)
