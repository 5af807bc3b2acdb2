"""Unit tests for network.genesis: the channel config tree and the genesis block.

The hospital example's crypto material is generated once per session; the medical
records channel is built from it and checked value by value against the layout
configtxgen produces, and the block is decoded by the official `fabric_protos` in a
child process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from google.protobuf.message import Message

from common.errors import ConfigError, WireError
from common.policies import from_string, implicit_meta_from_string
from common.protoutil import (
    Timestamp,
    block_data_hash,
    block_header_hash,
    last_config_index,
    parse_envelope,
    verify_block_data_hash,
)
from network.cryptogen import CryptoLayout, crypto_layout
from network.genesis import (
    ETCDRAFT_OPTIONS,
    build_channel_config,
    build_genesis_block,
    read_block,
    write_block,
)
from network.spec import ConsortiumSpec, parse_spec
from protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from protos.msp import msp_config_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from protos.peer import configuration_pb2 as peer_pb2
from tests.conftest import skip_or_fail
from tests.unit import example_channel
from tests.unit.example_channel import CHANNEL, COMMISSION, EXAMPLE, HOSPITALS

NONCE = bytes(range(24))
WHEN = Timestamp(seconds=1_700_000_000)

M = TypeVar("M", bound=Message)


spec = example_channel.spec
crypto = example_channel.crypto
config = example_channel.config


@pytest.fixture(scope="session")
def block(config: configtx_pb2.Config) -> common_pb2.Block:
    return build_genesis_block(config, CHANNEL, timestamp=WHEN, nonce=NONCE)


def value(group: configtx_pb2.ConfigGroup, key: str, message_type: type[M]) -> M:
    decoded = message_type()
    decoded.ParseFromString(group.values[key].value)
    return decoded


def groups(config: configtx_pb2.Config) -> dict[str, configtx_pb2.ConfigGroup]:
    root = config.channel_group
    return {
        "Channel": root,
        "Orderer": root.groups["Orderer"],
        "Application": root.groups["Application"],
    }


def walk(
    group: configtx_pb2.ConfigGroup, path: str = "/Channel"
) -> Iterator[tuple[str, configtx_pb2.ConfigGroup]]:
    yield path, group
    for name in sorted(group.groups):
        yield from walk(group.groups[name], f"{path}/{name}")


def spec_with(change: Callable[[dict[str, Any]], object]) -> ConsortiumSpec:
    """The example spec with one change to its first channel."""
    document = yaml.safe_load(EXAMPLE.read_text())
    change(document["channels"][0])
    return parse_spec(yaml.safe_dump(document), source="changed.yaml")


# --- the config tree --------------------------------------------------------------


def test_tree_has_configtxgens_groups_values_and_policies(
    config: configtx_pb2.Config,
) -> None:
    tree = groups(config)

    assert config.sequence == 0
    assert set(tree["Channel"].groups) == {"Orderer", "Application"}
    assert set(tree["Channel"].values) == {
        "HashingAlgorithm",
        "BlockDataHashingStructure",
        "Capabilities",
    }
    assert set(tree["Channel"].policies) == {"Readers", "Writers", "Admins"}
    assert set(tree["Orderer"].values) == {
        "ConsensusType",
        "BatchSize",
        "BatchTimeout",
        "ChannelRestrictions",
        "Capabilities",
    }
    assert set(tree["Orderer"].policies) == {
        "Readers",
        "Writers",
        "Admins",
        "BlockValidation",
    }
    assert set(tree["Orderer"].groups) == {COMMISSION}
    assert set(tree["Orderer"].groups[COMMISSION].values) == {"MSP", "Endpoints"}
    assert set(tree["Application"].values) == {"Capabilities"}
    assert set(tree["Application"].policies) == {
        "Readers",
        "Writers",
        "Admins",
        "LifecycleEndorsement",
        "Endorsement",
    }
    assert set(tree["Application"].groups) == set(HOSPITALS)
    for mspid in HOSPITALS:
        org = tree["Application"].groups[mspid]
        assert set(org.values) == {"MSP", "AnchorPeers"}
        assert set(org.policies) == {"Readers", "Writers", "Admins", "Endorsement"}
        assert not org.groups


def test_every_element_is_version_0_with_admins_mod_policy(
    config: configtx_pb2.Config,
) -> None:
    for path, group in walk(config.channel_group):
        assert (group.version, group.mod_policy) == (0, "Admins"), path
        for key, config_value in group.values.items():
            assert (config_value.version, config_value.mod_policy) == (0, "Admins"), key
        for key, policy in group.policies.items():
            assert (policy.version, policy.mod_policy) == (0, "Admins"), key


def test_channel_values(config: configtx_pb2.Config) -> None:
    root = config.channel_group

    hashing = value(root, "HashingAlgorithm", configuration_pb2.HashingAlgorithm)
    structure = value(
        root, "BlockDataHashingStructure", configuration_pb2.BlockDataHashingStructure
    )
    capabilities = value(root, "Capabilities", configuration_pb2.Capabilities)

    assert hashing.name == "SHA256"
    assert structure.width == 4294967295
    assert set(capabilities.capabilities) == {"V2_0"}


def test_orderer_values(config: configtx_pb2.Config, crypto: CryptoLayout) -> None:
    orderer = config.channel_group.groups["Orderer"]

    batch_size = value(orderer, "BatchSize", orderer_pb2.BatchSize)
    timeout = value(orderer, "BatchTimeout", orderer_pb2.BatchTimeout)
    restrictions = value(
        orderer, "ChannelRestrictions", orderer_pb2.ChannelRestrictions
    )
    consensus = value(orderer, "ConsensusType", orderer_pb2.ConsensusType)
    capabilities = value(orderer, "Capabilities", configuration_pb2.Capabilities)
    metadata = etcdraft_pb2.ConfigMetadata.FromString(consensus.metadata)
    endpoints = value(
        orderer.groups[COMMISSION], "Endpoints", configuration_pb2.OrdererAddresses
    )

    assert (
        batch_size.max_message_count,
        batch_size.absolute_max_bytes,
        batch_size.preferred_max_bytes,
    ) == (500, 10 * 1024 * 1024, 2 * 1024 * 1024)
    assert timeout.timeout == "250ms"
    assert restrictions.max_count == 0
    assert set(capabilities.capabilities) == {"V2_0"}
    assert consensus.type == "etcdraft"
    assert consensus.state == orderer_pb2.ConsensusType.STATE_NORMAL
    assert metadata.options == ETCDRAFT_OPTIONS
    assert metadata.options.tick_interval == "500ms"
    commission = crypto.organization(COMMISSION)
    assert [(c.host, c.port) for c in metadata.consenters] == [
        ("127.0.0.1", 7050),
        ("127.0.0.1", 8050),
        ("127.0.0.1", 9050),
    ]
    for index, consenter in enumerate(metadata.consenters):
        tls_cert = commission.orderer(f"orderer{index}").tls_cert.read_bytes()
        assert consenter.client_tls_cert == consenter.server_tls_cert == tls_cert
    assert list(endpoints.addresses) == [
        "127.0.0.1:7050",
        "127.0.0.1:8050",
        "127.0.0.1:9050",
    ]


def test_application_values(config: configtx_pb2.Config) -> None:
    application = config.channel_group.groups["Application"]

    capabilities = value(application, "Capabilities", configuration_pb2.Capabilities)
    anchors = {
        mspid: [
            (peer.host, peer.port)
            for peer in value(
                application.groups[mspid], "AnchorPeers", peer_pb2.AnchorPeers
            ).anchor_peers
        ]
        for mspid in HOSPITALS
    }

    assert set(capabilities.capabilities) == {"V2_5"}
    assert anchors == {
        "HospitalAMSP": [("127.0.0.1", 7051)],
        "HospitalBMSP": [("127.0.0.1", 8051)],
        "HospitalCMSP": [("127.0.0.1", 9051)],
    }


@pytest.mark.parametrize("mspid", [*HOSPITALS, COMMISSION])
def test_msp_values_carry_the_organisation_msp_folder(
    config: configtx_pb2.Config, crypto: CryptoLayout, mspid: str
) -> None:
    parent = "Orderer" if mspid == COMMISSION else "Application"
    group = config.channel_group.groups[parent].groups[mspid]
    layout = crypto.organization(mspid)

    msp = value(group, "MSP", msp_config_pb2.MSPConfig)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)

    assert msp.type == 0
    assert fabric.name == mspid
    assert list(fabric.root_certs) == [layout.ca_cert.read_bytes()]
    assert list(fabric.tls_root_certs) == [layout.tlsca_cert.read_bytes()]
    assert list(fabric.revocation_list) == [layout.crl.read_bytes()]
    assert not fabric.HasField("signing_identity")
    assert fabric.crypto_config.signature_hash_family == "SHA2"
    assert fabric.crypto_config.identity_identifier_hash_function == "SHA256"
    assert fabric.fabric_node_ous.enable
    node_ous = fabric.fabric_node_ous
    assert [
        node_ous.client_ou_identifier.organizational_unit_identifier,
        node_ous.peer_ou_identifier.organizational_unit_identifier,
        node_ous.admin_ou_identifier.organizational_unit_identifier,
        node_ous.orderer_ou_identifier.organizational_unit_identifier,
    ] == ["client", "peer", "admin", "orderer"]
    assert node_ous.peer_ou_identifier.certificate == layout.ca_cert.read_bytes()


def test_policies_are_encoded_as_configtxgen_encodes_them(
    config: configtx_pb2.Config,
) -> None:
    application = config.channel_group.groups["Application"]
    endorsement = application.policies["LifecycleEndorsement"].policy
    writers = application.groups["HospitalAMSP"].policies["Writers"].policy
    block_validation = config.channel_group.groups["Orderer"].policies[
        "BlockValidation"
    ]

    assert endorsement.type == policies_pb2.Policy.IMPLICIT_META
    assert endorsement.value == implicit_meta_from_string(
        "MAJORITY Endorsement"
    ).SerializeToString(deterministic=True)
    assert writers.type == policies_pb2.Policy.SIGNATURE
    assert writers.value == from_string(
        "OR('HospitalAMSP.admin', 'HospitalAMSP.client')"
    ).SerializeToString(deterministic=True)
    assert block_validation.policy.value == implicit_meta_from_string(
        "ANY Writers"
    ).SerializeToString(deterministic=True)


def test_solo_channel_has_one_endpoint_and_no_metadata(crypto: CryptoLayout) -> None:
    solo = spec_with(lambda c: c["orderer"].update(type="solo", consenters=None))

    orderer = build_channel_config(solo, CHANNEL, crypto).channel_group.groups[
        "Orderer"
    ]

    consensus = value(orderer, "ConsensusType", orderer_pb2.ConsensusType)
    endpoints = value(
        orderer.groups[COMMISSION], "Endpoints", configuration_pb2.OrdererAddresses
    )
    assert (consensus.type, consensus.metadata) == ("solo", b"")
    assert list(endpoints.addresses) == ["127.0.0.1:7050"]


def test_acls_and_overrides_reach_the_tree(crypto: CryptoLayout) -> None:
    changed = spec_with(
        lambda c: c.update(
            acls={"qscc/GetBlockByNumber": "/Channel/Application/Writers"},
            anchor_peers={"HospitalBMSP": []},
            policies={"application": {"Endorsement": "ANY Endorsement"}},
        )
    )

    application = build_channel_config(changed, CHANNEL, crypto).channel_group.groups[
        "Application"
    ]

    acls = value(application, "ACLs", peer_pb2.ACLs)
    assert acls.acls["qscc/GetBlockByNumber"].policy_ref == (
        "/Channel/Application/Writers"
    )
    assert "AnchorPeers" not in application.groups["HospitalBMSP"].values
    assert application.policies["Endorsement"].policy.value == (
        implicit_meta_from_string("ANY Endorsement").SerializeToString()
    )


def test_unknown_channel_is_a_config_error(
    spec: ConsortiumSpec, crypto: CryptoLayout
) -> None:
    with pytest.raises(ConfigError, match="no channel named 'records'"):
        build_channel_config(spec, "records", crypto)


def test_missing_crypto_material_names_the_folder(
    spec: ConsortiumSpec, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel_config(spec, CHANNEL, crypto_layout(spec, tmp_path))

    assert str(caught.value).startswith(f"{tmp_path}/organizations/")
    assert "does not exist" in str(caught.value) or "cannot read" in str(caught.value)


# --- the genesis block ------------------------------------------------------------


def test_genesis_block_is_block_zero_with_one_config_envelope(
    block: common_pb2.Block, config: configtx_pb2.Config
) -> None:
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(
        payload.header.signature_header
    )
    config_envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)

    assert block.header.number == 0
    assert block.header.previous_hash == b""
    assert len(block.data.data) == 1
    assert envelope.signature == b""
    assert channel_header.type == common_pb2.CONFIG
    assert channel_header.version == 1
    assert channel_header.epoch == 0
    assert channel_header.channel_id == CHANNEL
    assert (channel_header.timestamp.seconds, channel_header.timestamp.nanos) == (
        WHEN.seconds,
        0,
    )
    assert signature_header.creator == b""
    assert signature_header.nonce == NONCE
    assert channel_header.tx_id == hashlib.sha256(NONCE).hexdigest()
    assert config_envelope.config == config
    assert not config_envelope.HasField("last_update")


def test_genesis_block_hashes_agree_with_protoutil(block: common_pb2.Block) -> None:
    parsed = parse_envelope(block.data.data[0])

    assert block.header.data_hash == block_data_hash(block.data.data)
    assert block.header.data_hash == hashlib.sha256(block.data.data[0]).digest()
    verify_block_data_hash(block)
    assert parsed.tx_id == hashlib.sha256(NONCE).hexdigest()
    assert len(block_header_hash(block.header)) == 32


def test_genesis_metadata_records_config_index_zero_unsigned(
    block: common_pb2.Block,
) -> None:
    entries = block.metadata.metadata
    signatures = common_pb2.Metadata.FromString(entries[common_pb2.SIGNATURES])
    orderer_metadata = common_pb2.OrdererBlockMetadata.FromString(signatures.value)
    last_config = common_pb2.Metadata.FromString(entries[common_pb2.LAST_CONFIG])

    assert len(entries) == 5
    assert not signatures.signatures
    assert orderer_metadata.HasField("last_config")
    assert orderer_metadata.last_config.index == 0
    assert common_pb2.LastConfig.FromString(last_config.value).index == 0
    assert last_config_index(block) == 0
    assert entries[common_pb2.TRANSACTIONS_FILTER] == b""


def test_genesis_block_is_deterministic_given_time_and_nonce(
    config: configtx_pb2.Config, block: common_pb2.Block
) -> None:
    again = build_genesis_block(config, CHANNEL, timestamp=WHEN, nonce=NONCE)
    other = build_genesis_block(config, CHANNEL, timestamp=WHEN, nonce=b"\x07" * 24)

    assert again.SerializeToString() == block.SerializeToString()
    assert other.header.data_hash != block.header.data_hash


def test_default_time_is_whole_seconds_and_nonce_is_fresh(
    config: configtx_pb2.Config,
) -> None:
    first = parse_envelope(build_genesis_block(config, CHANNEL).data.data[0])
    second = parse_envelope(build_genesis_block(config, CHANNEL).data.data[0])

    assert first.channel_header.timestamp is not None
    assert first.channel_header.timestamp.nanos == 0
    assert first.channel_header.timestamp.seconds > WHEN.seconds
    assert len(first.signature_header.nonce) == 24
    assert first.tx_id != second.tx_id


def test_block_file_round_trip(block: common_pb2.Block, tmp_path: Path) -> None:
    path = tmp_path / "channel-artifacts" / f"{CHANNEL}.block"

    write_block(path, block)

    assert path.read_bytes() == block.SerializeToString()
    assert read_block(path) == block
    assert not list(path.parent.glob(".*.tmp"))


def test_reading_a_bad_block_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.block"
    garbage.write_bytes(b"\xff\xff\xff")

    with pytest.raises(ConfigError, match="cannot read the block"):
        read_block(tmp_path / "absent.block")
    with pytest.raises(WireError):
        read_block(garbage)


# --- decoding with Fabric's own protos --------------------------------------------

FABRIC_DECODER = """
import json, sys
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_pb2
from fabric_protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from fabric_protos.peer import configuration_pb2 as peer_pb2

block = common_pb2.Block.FromString(open(sys.argv[1], "rb").read())
envelope = common_pb2.Envelope.FromString(block.data.data[0])
payload = common_pb2.Payload.FromString(envelope.payload)
header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
root = config.channel_group
application = root.groups["Application"]
orderer = root.groups["Orderer"]

def msp_name(group):
    msp = msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value)
    return msp_config_pb2.FabricMSPConfig.FromString(msp.config).name

consensus = orderer_pb2.ConsensusType.FromString(orderer.values["ConsensusType"].value)
raft = etcdraft_pb2.ConfigMetadata.FromString(consensus.metadata)
batch = orderer_pb2.BatchSize.FromString(orderer.values["BatchSize"].value)
anchors = peer_pb2.AnchorPeers.FromString(
    application.groups["HospitalAMSP"].values["AnchorPeers"].value
)
print(json.dumps({
    "number": block.header.number,
    "type": common_pb2.HeaderType.Name(header.type),
    "channel": header.channel_id,
    "application": {name: msp_name(g) for name, g in application.groups.items()},
    "orderer": {name: msp_name(g) for name, g in orderer.groups.items()},
    "consensus": consensus.type,
    "consenters": [f"{c.host}:{c.port}" for c in raft.consenters],
    "max_message_count": batch.max_message_count,
    "timeout": orderer_pb2.BatchTimeout.FromString(
        orderer.values["BatchTimeout"].value
    ).timeout,
    "anchor": [f"{p.host}:{p.port}" for p in anchors.anchor_peers],
    "policies": sorted(application.policies),
}))
"""


def test_genesis_block_decodes_with_fabrics_own_protos(
    block: common_pb2.Block, tmp_path: Path
) -> None:
    path = tmp_path / "genesis.block"
    write_block(path, block)

    result = subprocess.run(
        [sys.executable, "-c", FABRIC_DECODER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )

    if "No module named 'fabric_protos'" in result.stderr:
        skip_or_fail("the official fabric_protos package is not installed")
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout)
    assert decoded == {
        "number": 0,
        "type": "CONFIG",
        "channel": CHANNEL,
        "application": {mspid: mspid for mspid in HOSPITALS},
        "orderer": {COMMISSION: COMMISSION},
        "consensus": "etcdraft",
        "consenters": ["127.0.0.1:7050", "127.0.0.1:8050", "127.0.0.1:9050"],
        "max_message_count": 500,
        "timeout": "250ms",
        "anchor": ["127.0.0.1:7051"],
        "policies": [
            "Admins",
            "Endorsement",
            "LifecycleEndorsement",
            "Readers",
            "Writers",
        ],
    }
