"""network.config_json: one JSON shape for a channel config, shown by `channel fetch
--json` and `channel config` alike, read back to the same bytes; bytes it cannot show
exactly stay base64, and a document that does not fit names the path in it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.channelconfig import keys
from common.configtx import compute_update
from common.errors import ConfigError
from network import channel_update_cli
from network.block_json import block_document
from network.config_json import (
    config_from_json,
    config_group_from_json,
    config_group_to_json,
    config_to_json,
    config_update_from_json,
    config_update_to_json,
)
from network.genesis import build_genesis_block
from protos.common import configtx_pb2, policies_pb2
from protos.msp import identities_pb2, msp_principal_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from tests.unit import example_channel

spec = example_channel.spec
crypto = example_channel.crypto
config = example_channel.config

_BATCH = orderer_pb2.BatchSize(max_message_count=9, absolute_max_bytes=1024)


def copy_of(config: configtx_pb2.Config) -> configtx_pb2.Config:
    copy = configtx_pb2.Config()
    copy.CopyFrom(config)
    return copy


def batch_size_value(config: configtx_pb2.Config) -> configtx_pb2.ConfigValue:
    return config.channel_group.groups[keys.ORDERER].values[keys.BATCH_SIZE]


def reread(document: Any) -> Any:
    """The document as a file holds it (JSON text and back)."""
    return json.loads(json.dumps(document))


def test_fetch_json_and_channel_config_show_a_config_the_same_way(
    config: configtx_pb2.Config,
) -> None:
    """The config of a config block in `fetch --json` is what `channel config` writes."""
    block = block_document(build_genesis_block(config, example_channel.CHANNEL))

    shown = block["data"]["data"][0]["payload"]["data"]["config"]  # type: ignore[index]

    assert shown == config_to_json(config)
    assert shown == json.loads(channel_update_cli.config_to_json(config))
    assert config_from_json(reread(shown), source="block.json") == config


def test_signature_policy_principals_are_decoded_and_read_back() -> None:
    """ROLE and IDENTITY principals are objects; the policy encodes to the same bytes."""
    identity = identities_pb2.SerializedIdentity(mspid="OrgMSP", id_bytes=b"PEM")
    role = msp_principal_pb2.MSPRole(
        msp_identifier="OrgMSP", role=msp_principal_pb2.MSPRole.ADMIN
    )
    principals = [
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
            principal=role.SerializeToString(),
        ),
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
            principal=identity.SerializeToString(),
        ),
    ]
    envelope = policies_pb2.SignaturePolicyEnvelope(identities=principals)
    config = configtx_pb2.Config(sequence=3)
    config.channel_group.policies["Admins"].policy.type = policies_pb2.Policy.SIGNATURE
    config.channel_group.policies["Admins"].policy.value = envelope.SerializeToString()

    document = reread(config_to_json(config))

    shown = document["channel_group"]["policies"]["Admins"]["policy"]["value"]
    assert [entry["principal"] for entry in shown["identities"]] == [
        {"msp_identifier": "OrgMSP", "role": "ADMIN"},
        {"mspid": "OrgMSP", "id_bytes": "UEVN"},  # base64, as every bytes field
    ]
    assert config_from_json(document, source="c.json") == config


@pytest.mark.parametrize(
    "value",
    [
        _BATCH.SerializeToString() + b"\x50\x01",  # an unknown field 10
        b"\x10\x80\x08\x08\x09",  # absolute_max_bytes before max_message_count
    ],
    ids=["unknown-field", "field-order"],
)
def test_bytes_not_in_canonical_form_stay_base64(
    config: configtx_pb2.Config, value: bytes
) -> None:
    """Decoding them would lose or reorder bytes, so they are shown as they are."""
    odd = copy_of(config)
    batch_size_value(odd).value = value

    document = reread(config_to_json(odd))

    orderer = document["channel_group"]["groups"][keys.ORDERER]
    assert isinstance(orderer["values"][keys.BATCH_SIZE]["value"], str)
    assert config_from_json(document, source="c.json") == odd


def test_base64_is_read_where_an_object_is_shown(config: configtx_pb2.Config) -> None:
    document = reread(config_to_json(config))
    orderer = document["channel_group"]["groups"][keys.ORDERER]
    orderer["values"][keys.BATCH_SIZE]["value"] = "CAk="  # max_message_count 9

    edited = config_from_json(document, source="c.json")

    assert orderer_pb2.BatchSize.FromString(batch_size_value(edited).value) == (
        orderer_pb2.BatchSize(max_message_count=9)
    )


def test_a_config_update_reads_back_exactly(config: configtx_pb2.Config) -> None:
    updated = copy_of(config)
    batch_size_value(updated).value = _BATCH.SerializeToString()
    update = compute_update(example_channel.CHANNEL, config, updated)

    document = reread(config_update_to_json(update))

    orderer = document["write_set"]["groups"][keys.ORDERER]
    assert orderer["values"][keys.BATCH_SIZE]["value"]["max_message_count"] == 9
    assert config_update_from_json(document, source="u.json") == update


def test_an_organisation_group_reads_back_alone(config: configtx_pb2.Config) -> None:
    """A group on its own has the shape it has in a config; paths start at it."""
    group = config.channel_group.groups[keys.APPLICATION].groups["HospitalAMSP"]
    document = reread(config_group_to_json(group))

    assert (
        document
        == reread(config_to_json(config))["channel_group"]["groups"][keys.APPLICATION][
            "groups"
        ]["HospitalAMSP"]
    )
    assert config_group_from_json(document, source="org.json") == group
    document["values"][keys.MSP]["value"]["config"] = 1
    with pytest.raises(ConfigError, match=r"org.json: values.MSP.value.config: "):
        config_group_from_json(document, source="org.json")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda root: root["policies"]["Admins"]["policy"].update(value=7),
            "c.json: channel_group.policies.Admins.policy.value: expected a "
            "ImplicitMetaPolicy object or base64",
        ),
        (
            lambda root: root["values"].update(Extra={"value": {"x": 1}}),
            "c.json: channel_group.values.Extra.value: no message is known for a "
            "value named 'Extra'",
        ),
        (
            lambda root: first_principal(root).update(principal_classification="X"),
            r"c.json: channel_group.groups.Application.groups.HospitalAMSP.policies."
            r"Readers.policy.value.identities\[0\]: a decoded principal needs",
        ),
        (
            lambda root: first_principal(root)["principal"].update(role="NURSE"),
            r"identities\[0\].principal: not a MSPRole",
        ),
        (
            lambda root: msp_of(root).update(type=1),
            "HospitalAMSP.values.MSP.value.config: a decoded config needs type 0",
        ),
    ],
    ids=["policy-value", "unknown-value", "classification", "role", "msp-type"],
)
def test_a_document_that_does_not_fit_names_the_path(
    config: configtx_pb2.Config, edit: Any, message: str
) -> None:
    document = reread(config_to_json(config))
    edit(document["channel_group"])

    with pytest.raises(ConfigError, match=message):
        config_from_json(document, source="c.json")


def hospital(root: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = root["groups"][keys.APPLICATION]["groups"]["HospitalAMSP"]
    return group


def first_principal(root: dict[str, Any]) -> dict[str, Any]:
    policy = hospital(root)["policies"]["Readers"]["policy"]
    principal: dict[str, Any] = policy["value"]["identities"][0]
    return principal


def msp_of(root: dict[str, Any]) -> dict[str, Any]:
    msp: dict[str, Any] = hospital(root)["values"][keys.MSP]["value"]
    return msp
