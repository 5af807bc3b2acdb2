"""The config JSON of `medledger channel config`: decoded where configtxlator decodes,
and read back to exactly the same common.Config (so an unedited file changes nothing).
"""

from __future__ import annotations

import json

import pytest

from common.channelconfig import ChannelConfig, keys
from common.errors import ConfigError
from network.channel_update_cli import config_from_json, config_to_json
from protos.orderer import configuration_pb2 as orderer_pb2
from tests.unit import example_channel

spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view


def test_an_unedited_config_reads_back_byte_for_byte(view: ChannelConfig) -> None:
    text = config_to_json(view.config)

    assert config_from_json(text, source="current.json") == view.config


def test_known_values_and_policies_are_json_objects(view: ChannelConfig) -> None:
    document = json.loads(config_to_json(view.config))

    root = document["channel_group"]
    orderer = root["groups"][keys.ORDERER]
    assert orderer["values"][keys.BATCH_SIZE]["value"]["max_message_count"] == 500
    assert "type" in orderer["values"][keys.CONSENSUS_TYPE]["value"]
    admins = root["policies"]["Admins"]["policy"]
    assert admins["value"] == {"rule": "MAJORITY", "sub_policy": "Admins"}
    hospital = root["groups"][keys.APPLICATION]["groups"]["HospitalAMSP"]
    assert "identities" in hospital["policies"]["Endorsement"]["policy"]["value"]
    principals = hospital["policies"]["Readers"]["policy"]["value"]["identities"]
    assert principals[0]["principal"]["msp_identifier"] == "HospitalAMSP"
    msp = hospital["values"][keys.MSP]["value"]["config"]
    assert msp["name"] == "HospitalAMSP"
    assert msp["root_certs"]  # base64 of the PEM, as configtxlator shows it
    assert hospital["version"] == "0"  # defaults printed, as configtxlator does


def test_an_edited_value_is_encoded_again(view: ChannelConfig) -> None:
    document = json.loads(config_to_json(view.config))
    orderer = document["channel_group"]["groups"][keys.ORDERER]
    orderer["values"][keys.BATCH_SIZE]["value"]["max_message_count"] = 7

    config = config_from_json(json.dumps(document), source="updated.json")

    value = config.channel_group.groups[keys.ORDERER].values[keys.BATCH_SIZE].value
    assert orderer_pb2.BatchSize.FromString(value).max_message_count == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "updated.json: not JSON"),
        ("[]", "not a common.Config"),
        ('{"sequenze": "1"}', "not a common.Config"),
    ],
)
def test_unreadable_files_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_json(text, source="updated.json")


def test_a_value_that_does_not_fit_its_message_is_named(view: ChannelConfig) -> None:
    document = json.loads(config_to_json(view.config))
    orderer = document["channel_group"]["groups"][keys.ORDERER]
    orderer["values"][keys.BATCH_SIZE]["value"]["max_message_count"] = "many"

    with pytest.raises(
        ConfigError,
        match=r"updated.json: channel_group.groups.Orderer.values.BatchSize.value: "
        "not a BatchSize",
    ):
        config_from_json(json.dumps(document), source="updated.json")


def test_a_decoded_policy_needs_a_known_type(view: ChannelConfig) -> None:
    document = json.loads(config_to_json(view.config))
    document["channel_group"]["policies"]["Admins"]["policy"]["type"] = "meta"

    with pytest.raises(
        ConfigError,
        match=r"channel_group.policies.Admins.policy: a decoded value needs type 1",
    ):
        config_from_json(json.dumps(document), source="updated.json")
