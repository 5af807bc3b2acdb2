"""Unit tests for network.spec_channels: the channels section of the consortium YAML.

A small valid document is changed in one place per invalid case; each ConfigError must
name the file, the key path and what was wrong.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from common.errors import ConfigError
from network.spec import ConsortiumSpec, load_spec
from network.spec_channels import (
    DEFAULT_BATCH_TIMEOUT,
    BatchSizeSpec,
    CapabilitiesSpec,
    ChannelSpec,
    OrdererType,
    PolicyKind,
    PolicyRule,
)
from tests.unit.example_channel import EXAMPLE
from tests.unit.network.spec_documents import Change, Document, parse_changed

MIB = 1024 * 1024

BASE: Document = {
    "consortium": "test-consortium",
    "organizations": [
        {
            "name": "Hospital A",
            "mspid": "HospitalAMSP",
            "domain": "hospital-a.example.com",
            "peers": [
                {"name": "peer0", "host": "127.0.0.1", "port": 7051},
                {"name": "peer1", "host": "127.0.0.1", "port": 7061},
            ],
            "users": [{"name": "Admin", "admin": True}],
        },
        {
            "name": "Hospital B",
            "mspid": "HospitalBMSP",
            "domain": "hospital-b.example.com",
            "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 8051}],
            "users": [{"name": "Admin", "admin": True}],
        },
        {
            "name": "Health Commission",
            "mspid": "HealthCommissionMSP",
            "domain": "commission.example.com",
            "orderers": [
                {"name": "orderer0", "host": "127.0.0.1", "port": 7050},
                {"name": "orderer1", "host": "127.0.0.1", "port": 8050},
            ],
            "users": [{"name": "Admin", "admin": True}],
        },
    ],
    "channels": [
        {
            "name": "records",
            "members": ["HospitalAMSP", "HospitalBMSP"],
            "orderer": {"organizations": ["HealthCommissionMSP"]},
        }
    ],
}


def load(change: Change | None = None) -> ConsortiumSpec:
    return parse_changed(BASE, change, source="test.yaml")


def channel(change: Change | None = None) -> ChannelSpec:
    """The first channel of BASE after `change`."""
    return load(change).channels[0]


def first(document: Document) -> dict[str, Any]:
    channel_document: dict[str, Any] = document["channels"][0]
    return channel_document


def orderer(document: Document) -> dict[str, Any]:
    section: dict[str, Any] = first(document)["orderer"]
    return section


# --- the example and the defaults -------------------------------------------------


def test_example_describes_the_medical_records_channel() -> None:
    spec = load_spec(EXAMPLE)

    records = spec.channel("medical-records")

    assert [c.name for c in spec.channels] == ["medical-records"]
    assert records.members == ("HospitalAMSP", "HospitalBMSP", "HospitalCMSP")
    assert records.orderer.type is OrdererType.ETCD
    assert records.orderer.organizations == ("HealthCommissionMSP",)
    assert [n.full_name for n in records.orderer.consenters] == [
        f"orderer{i}.commission.example.com" for i in range(3)
    ]
    assert records.orderer.batch_size == BatchSizeSpec(500, 10 * MIB, 2 * MIB)
    assert records.orderer.batch_timeout == "250ms"
    assert records.capabilities == CapabilitiesSpec(("V2_0",), ("V2_0",), ("V2_5",))
    assert {
        m: [p.name for p in peers] for m, peers in records.anchor_peers.items()
    } == {
        "HospitalAMSP": ["peer0"],
        "HospitalBMSP": ["peer0"],
        "HospitalCMSP": ["peer0"],
    }


def test_defaults_are_fabrics_sample_configtx() -> None:
    records = channel()

    assert records.orderer.type is OrdererType.SOLO
    assert [n.full_name for n in records.orderer.consenters] == [
        "orderer0.commission.example.com"
    ]
    assert records.orderer.batch_size == BatchSizeSpec(500, 10 * MIB, 2 * MIB)
    assert records.orderer.batch_timeout == DEFAULT_BATCH_TIMEOUT == "250ms"
    assert records.capabilities == CapabilitiesSpec()
    policies = records.policies
    assert {n: r.rule for n, r in policies.channel.items()} == {
        "Readers": "ANY Readers",
        "Writers": "ANY Writers",
        "Admins": "MAJORITY Admins",
    }
    assert {n: r.rule for n, r in policies.application.items()} == {
        "Readers": "ANY Readers",
        "Writers": "ANY Writers",
        "Admins": "MAJORITY Admins",
        "LifecycleEndorsement": "MAJORITY Endorsement",
        "Endorsement": "MAJORITY Endorsement",
    }
    assert policies.orderer["BlockValidation"].rule == "ANY Writers"
    assert {
        n: r.rule for n, r in policies.application_orgs["HospitalBMSP"].items()
    } == {
        "Readers": "OR('HospitalBMSP.admin', 'HospitalBMSP.peer', 'HospitalBMSP.client')",
        "Writers": "OR('HospitalBMSP.admin', 'HospitalBMSP.client')",
        "Admins": "OR('HospitalBMSP.admin')",
        "Endorsement": "OR('HospitalBMSP.peer')",
    }
    assert {
        n: r.rule for n, r in policies.orderer_orgs["HealthCommissionMSP"].items()
    } == {
        "Readers": "OR('HealthCommissionMSP.member')",
        "Writers": "OR('HealthCommissionMSP.member')",
        "Admins": "OR('HealthCommissionMSP.admin')",
    }
    assert list(policies.application_orgs) == ["HospitalAMSP", "HospitalBMSP"]
    assert [p.name for p in records.anchor_peers["HospitalAMSP"]] == ["peer0", "peer1"]
    assert dict(records.acls) == {}


def test_policy_kinds_are_told_apart_by_their_first_word() -> None:
    assert PolicyRule.parse("MAJORITY Admins") == PolicyRule(
        PolicyKind.IMPLICIT_META, "MAJORITY Admins"
    )
    assert PolicyRule.parse("OR('A.peer')").kind is PolicyKind.SIGNATURE
    assert PolicyRule.parse("ANY Writers").sub_policy == "Writers"
    assert PolicyRule.parse("OR('A.peer')").sub_policy is None


def test_no_channels_section_means_no_channels() -> None:
    spec = load(lambda d: d.pop("channels"))

    assert spec.channels == ()
    with pytest.raises(
        ConfigError, match=r"no channel named 'records' \(channels: none"
    ):
        spec.channel("records")


def test_overrides_replace_single_policies_and_add_new_ones() -> None:
    def change(document: Document) -> None:
        first(document)["policies"] = {
            "application": {"LifecycleEndorsement": "ANY Endorsement"},
            "organizations": {
                "HospitalAMSP": {
                    "Endorsement": "OR('HospitalAMSP.peer', 'HospitalAMSP.admin')",
                    "Auditors": "OR('HospitalAMSP.member')",
                }
            },
        }

    policies = channel(change).policies

    assert policies.application["LifecycleEndorsement"].rule == "ANY Endorsement"
    assert policies.application["Admins"].rule == "MAJORITY Admins"
    hospital_a = policies.application_orgs["HospitalAMSP"]
    assert hospital_a["Endorsement"].rule.endswith("'HospitalAMSP.admin')")
    assert hospital_a["Auditors"].kind is PolicyKind.SIGNATURE
    assert hospital_a["Readers"].rule.startswith("OR('HospitalAMSP.admin'")


def test_etcd_consenters_default_to_every_orderer_node() -> None:
    records = channel(lambda d: orderer(d).update(type="etcd"))

    assert records.orderer.type.consensus_type == "etcdraft"
    assert [n.name for n in records.orderer.consenters] == ["orderer0", "orderer1"]


def test_sizes_timeouts_capabilities_anchors_and_acls() -> None:
    def change(document: Document) -> None:
        orderer(document).update(
            batch_size={
                "max_message_count": 10,
                "absolute_max_bytes": "99 MB",
                "preferred_max_bytes": "512 KB",
            },
            batch_timeout="90s",
            consenters=["orderer1.commission.example.com"],
        )
        first(document).update(
            capabilities={"application": ["V2_0", "V2_5"], "channel": "V2_0"},
            anchor_peers={"HospitalAMSP": ["peer1"], "HospitalBMSP": []},
            acls={
                "qscc/GetBlockByNumber": "/Channel/Application/Writers",
                "event/Block": "Readers",
            },
        )

    records = channel(change)

    assert records.orderer.batch_size == BatchSizeSpec(10, 99 * MIB, 512 * 1024)
    assert records.orderer.batch_timeout == "1m30s"
    assert [n.name for n in records.orderer.consenters] == ["orderer1"]
    assert records.capabilities.application == ("V2_0", "V2_5")
    assert records.capabilities.orderer == ("V2_0",)
    assert [p.name for p in records.anchor_peers["HospitalAMSP"]] == ["peer1"]
    assert records.anchor_peers["HospitalBMSP"] == ()
    assert records.acls["event/Block"] == "Readers"


def test_an_organisation_may_be_member_and_orderer() -> None:
    def change(document: Document) -> None:
        document["organizations"][0]["orderers"] = [
            {"name": "orderer0", "host": "127.0.0.1", "port": 7070}
        ]
        orderer(document)["organizations"] = ["HospitalAMSP", "HealthCommissionMSP"]

    policies = channel(change).policies

    assert policies.application_orgs["HospitalAMSP"]["Writers"].rule == (
        "OR('HospitalAMSP.admin', 'HospitalAMSP.client')"
    )
    assert policies.orderer_orgs["HospitalAMSP"]["Writers"].rule == (
        "OR('HospitalAMSP.member')"
    )


# --- invalid documents: one change each -------------------------------------------


def _set(key: str, value: object) -> Change:
    return lambda d: first(d).update({key: value})


def _set_orderer(key: str, value: object) -> Change:
    return lambda d: orderer(d).update({key: value})


INVALID: list[tuple[str, Change, str]] = [
    (
        "upper-case channel name",
        _set("name", "Records"),
        "channels[0].name: expected a channel name",
    ),
    (
        "channel name with a space",
        _set("name", "medical records"),
        "channels[0].name: expected a channel name",
    ),
    (
        "channel name too long",
        _set("name", "r" * 250),
        "channels[0].name: expected a channel name",
    ),
    (
        "duplicate channel",
        lambda d: d["channels"].append(copy.deepcopy(first(d))),
        "channels[1].name: duplicate channel name 'records'",
    ),
    (
        "channels not a list",
        lambda d: d.update(channels={"name": "records"}),
        "channels: expected a list",
    ),
    (
        "missing members",
        lambda d: first(d).pop("members"),
        "channels[0]: missing key 'members'",
    ),
    (
        "misspelt key",
        _set("member", ["HospitalAMSP"]),
        "channels[0].member: unknown key 'member'",
    ),
    (
        "unknown member",
        _set("members", ["HospitalZMSP"]),
        "channels[0].members[0]: no organisation has MSP id 'HospitalZMSP'",
    ),
    (
        "duplicate member",
        _set("members", ["HospitalAMSP", "HospitalAMSP"]),
        "channels[0].members[1]: duplicate member organisation",
    ),
    (
        "no members",
        _set("members", []),
        "channels[0].members: expected at least one member organisation",
    ),
    (
        "orderer org without orderers",
        _set_orderer("organizations", ["HospitalAMSP"]),
        "channels[0].orderer.organizations[0]: organisation HospitalAMSP has no orderer",
    ),
    (
        "unknown orderer type",
        _set_orderer("type", "raft"),
        "channels[0].orderer.type: expected the orderer type 'solo' or 'etcd', "
        "got 'raft'",
    ),
    (
        "unknown consenter",
        _set_orderer("consenters", ["orderer9.commission.example.com"]),
        "channels[0].orderer.consenters[0]: 'orderer9.commission.example.com' is not "
        "an orderer node",
    ),
    (
        "peer as consenter",
        _set_orderer("consenters", ["peer0.hospital-a.example.com"]),
        "channels[0].orderer.consenters[0]: 'peer0.hospital-a.example.com' is not",
    ),
    (
        "solo with two consenters",
        _set_orderer(
            "consenters",
            ["orderer0.commission.example.com", "orderer1.commission.example.com"],
        ),
        "channels[0].orderer.consenters: a solo channel has exactly one consenter",
    ),
    (
        "duplicate consenter",
        lambda d: orderer(d).update(
            type="etcd",
            consenters=[
                "orderer0.commission.example.com",
                "orderer0.commission.example.com",
            ],
        ),
        "channels[0].orderer.consenters[1]: duplicate consenter",
    ),
    (
        "zero message count",
        _set_orderer("batch_size", {"max_message_count": 0}),
        "batch_size.max_message_count: expected an integer from 1 to 4294967295",
    ),
    (
        "bad byte size",
        _set_orderer("batch_size", {"absolute_max_bytes": "10 parsecs"}),
        "batch_size.absolute_max_bytes: expected a size in bytes",
    ),
    (
        "byte size above uint32",
        _set_orderer("batch_size", {"absolute_max_bytes": "4 GB"}),
        "batch_size.absolute_max_bytes: 4294967296 bytes is outside 1 to 4294967295",
    ),
    (
        "preferred above absolute",
        _set_orderer("batch_size", {"preferred_max_bytes": "20 MB"}),
        "batch_size.preferred_max_bytes: preferred_max_bytes (20971520) must not "
        "exceed absolute_max_bytes (10485760)",
    ),
    (
        "timeout without unit",
        _set_orderer("batch_timeout", "2"),
        "orderer.batch_timeout: expected a Go duration greater than zero",
    ),
    (
        "zero timeout",
        _set_orderer("batch_timeout", "0s"),
        "orderer.batch_timeout: expected a Go duration greater than zero",
    ),
    (
        "numeric timeout",
        _set_orderer("batch_timeout", 2),
        "orderer.batch_timeout: expected a Go duration greater than zero, such as "
        "'250ms', '2s' or '1m30s', got the int 2",
    ),
    (
        "unknown capability",
        _set("capabilities", {"channel": "V3_0"}),
        "capabilities.channel: unknown capability 'V3_0'",
    ),
    (
        "bad policy syntax",
        _set("policies", {"organizations": {"HospitalAMSP": {"Readers": "OR("}}}),
        "policies.organizations.HospitalAMSP.Readers: not a valid policy",
    ),
    (
        "bad implicit meta",
        _set("policies", {"channel": {"Admins": "MOST Admins"}}),
        "policies.channel.Admins: not a valid policy",
    ),
    (
        "sub-policy no child defines",
        _set("policies", {"application": {"Endorsement": "MAJORITY Endorsers"}}),
        "policies.application.Endorsement: policy Endorsement asks for 'Endorsers' of "
        "every child group of the application group",
    ),
    (
        "orderer orgs lack Endorsement",
        _set("policies", {"orderer": {"BlockValidation": "ANY Endorsement"}}),
        "policies.orderer.BlockValidation: policy BlockValidation asks for "
        "'Endorsement'",
    ),
    (
        "policy name with a slash",
        _set("policies", {"application": {"A/B": "ANY Readers"}}),
        "policies.application.A/B: invalid policy name 'A/B'",
    ),
    (
        "policy override for an outsider",
        _set("policies", {"organizations": {"OutsiderMSP": {}}}),
        "policies.organizations.OutsiderMSP: 'OutsiderMSP' is not an organisation of "
        "this channel",
    ),
    (
        "anchor peer of a non-member",
        _set("anchor_peers", {"HealthCommissionMSP": []}),
        "anchor_peers.HealthCommissionMSP: 'HealthCommissionMSP' is not a member",
    ),
    (
        "unknown anchor peer",
        _set("anchor_peers", {"HospitalBMSP": ["peer7"]}),
        "anchor_peers.HospitalBMSP[0]: organisation HospitalBMSP has no peer 'peer7'",
    ),
    (
        "ACL naming no policy",
        _set("acls", {"peer/Propose": "/Channel/Application/Writer"}),
        "acls.peer/Propose: no policy /Channel/Application/Writer on this channel",
    ),
    (
        "ACL with a bad resource name",
        _set("acls", {"peer Propose": "Writers"}),
        "acls.peer Propose: invalid ACL resource name",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [pytest.param(change, message, id=name) for name, change, message in INVALID],
)
def test_invalid_channel_sections_name_the_key(change: Change, message: str) -> None:
    spec = load(change)

    with pytest.raises(ConfigError) as caught:
        _ = spec.channels

    assert str(caught.value).startswith("test.yaml, line ")
    assert message in str(caught.value)
