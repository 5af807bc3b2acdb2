"""Unit tests for common.channelconfig: the typed view of a channel config.

The hospital example's medical-records genesis block is built once per session from
freshly generated crypto material. The view parsed from its bytes must give the right
organisations and settings, and its policies must judge real signatures made with the
generated keys. Malformed configs, each one change away from the valid one, must raise
ChannelConfigError naming the path of the element at fault.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from common.channelconfig import (
    BatchSize,
    Capabilities,
    ChannelConfig,
    HostPort,
)
from common.errors import ChannelConfigError, PolicyNotSatisfied, UnknownPolicy
from common.msp import SigningIdentity, load_msp_config, load_signing_identity
from common.policies import SignedData, from_string
from common.protoutil import Timestamp, block_signature_messages, sign_block
from network.cryptogen import CryptoLayout
from network.genesis import build_genesis_block
from protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from protos.msp import msp_config_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from protos.peer import configuration_pb2 as peer_pb2
from tests.unit import example_channel
from tests.unit.example_channel import CHANNEL, COMMISSION, HOSPITALS

MESSAGE = b"diagnosis record 0017"


spec = example_channel.spec
crypto = example_channel.crypto
config = example_channel.config


@pytest.fixture(scope="session")
def block(config: configtx_pb2.Config) -> common_pb2.Block:
    return build_genesis_block(
        config, CHANNEL, timestamp=Timestamp(1_700_000_000), nonce=b"\x01" * 24
    )


@pytest.fixture(scope="session")
def view(block: common_pb2.Block) -> ChannelConfig:
    return ChannelConfig.from_block(block.SerializeToString())


@pytest.fixture(scope="session")
def signer(crypto: CryptoLayout) -> Callable[[str, str], SigningIdentity]:
    """A signing identity by MSP id and user or node name, from the generated folders."""

    def load(mspid: str, name: str) -> SigningIdentity:
        organization = crypto.organization(mspid)
        identities = {
            **{node.name.split(".")[0]: node for node in organization.nodes},
            **{user.name.split("@")[0]: user for user in organization.users},
        }
        return load_signing_identity(identities[name].msp_dir, mspid=mspid)

    return load


def signed(*identities: SigningIdentity) -> list[SignedData]:
    return [
        SignedData(
            data=MESSAGE, identity=identity.serialized, signature=identity.sign(MESSAGE)
        )
        for identity in identities
    ]


# --- the view ---------------------------------------------------------------------


def test_view_of_the_genesis_block(view: ChannelConfig, crypto: CryptoLayout) -> None:
    commission = crypto.organization(COMMISSION)

    assert view.channel_id == CHANNEL
    assert view.sequence == 0
    assert view.hashing_algorithm == "SHA256"
    assert view.capabilities == Capabilities(
        channel=frozenset({"V2_0"}),
        orderer=frozenset({"V2_0"}),
        application=frozenset({"V2_5"}),
    )
    assert list(view.application_orgs) == list(HOSPITALS)
    assert list(view.orderer_orgs) == [COMMISSION]
    assert view.application_orgs["HospitalBMSP"].anchor_peers == (
        HostPort("127.0.0.1", 8051),
    )
    assert view.orderer_orgs[COMMISSION].endpoints == (
        "127.0.0.1:7050",
        "127.0.0.1:8050",
        "127.0.0.1:9050",
    )
    assert view.orderer_endpoints == view.orderer_orgs[COMMISSION].endpoints
    assert view.orderer_addresses == ()
    assert view.consensus_type == "etcdraft"
    assert view.consensus_state == orderer_pb2.ConsensusType.STATE_NORMAL
    assert [(c.host, c.port) for c in view.consenters] == [
        ("127.0.0.1", 7050),
        ("127.0.0.1", 8050),
        ("127.0.0.1", 9050),
    ]
    assert view.consenters[1].server_tls_cert == (
        commission.orderer("orderer1").tls_cert.read_bytes()
    )
    assert view.batch_size == BatchSize(500, 10 * 1024 * 1024, 2 * 1024 * 1024)
    assert view.batch_timeout == 0.25
    assert view.batch_timeout_text == "250ms"
    assert view.max_channels == 0
    assert dict(view.acls) == {}


def test_org_msps_are_the_generated_msp_folders(
    view: ChannelConfig, crypto: CryptoLayout
) -> None:
    for mspid in HOSPITALS:
        org = view.application_orgs[mspid]
        folder = load_msp_config(crypto.organization(mspid).msp_dir, mspid=mspid)
        assert org.name == org.mspid == mspid
        assert org.msp.to_config() == folder
        assert msp_config_pb2.FabricMSPConfig.FromString(org.msp_config) == folder
        assert org.msp.node_ous_enabled
    assert sorted(view.msp_manager) == sorted([*HOSPITALS, COMMISSION])


def test_msp_manager_validates_generated_identities(
    view: ChannelConfig,
    signer: Callable[[str, str], SigningIdentity],
) -> None:
    clinician = signer("HospitalAMSP", "dr-lee")

    identity = view.msp_manager.deserialize_identity(clinician.serialized)
    view.msp_manager.validate(identity)

    assert identity.mspid == "HospitalAMSP"


def test_view_is_frozen_and_equal_from_block_or_config(
    view: ChannelConfig, block: common_pb2.Block, config: configtx_pb2.Config
) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.sequence = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.application_orgs["X"] = view.application_orgs["HospitalAMSP"]  # type: ignore[index]

    assert ChannelConfig.from_config(config, channel_id=CHANNEL) == view
    assert ChannelConfig.from_block(block) == view
    assert view.config == config


# --- policies, judged with real signatures ----------------------------------------


def test_a_clinician_may_write_to_the_channel(
    view: ChannelConfig, signer: Callable[[str, str], SigningIdentity]
) -> None:
    clinician = signed(signer("HospitalAMSP", "dr-lee"))

    view.policy_manager.get("/Channel/Application/Writers").evaluate(
        clinician, view.msp_manager
    )
    view.policy_manager.get("/Channel/Writers").evaluate(clinician, view.msp_manager)
    view.policy_manager.get("Application/HospitalAMSP/Readers").evaluate(
        clinician, view.msp_manager
    )


def test_a_peer_is_no_writer(
    view: ChannelConfig, signer: Callable[[str, str], SigningIdentity]
) -> None:
    peer = signed(signer("HospitalAMSP", "peer0"))

    with pytest.raises(PolicyNotSatisfied):
        view.policy_manager.get("/Channel/Application/Writers").evaluate(
            peer, view.msp_manager
        )


def test_an_orderer_signature_satisfies_block_validation(
    view: ChannelConfig,
    block: common_pb2.Block,
    signer: Callable[[str, str], SigningIdentity],
) -> None:
    orderer = signer(COMMISSION, "orderer0")
    signed_block = sign_block(
        block, signer=orderer.sign, creator=orderer.serialized, last_config_index=0
    )
    messages = [
        SignedData(data=m.message, identity=m.identity, signature=m.signature)
        for m in block_signature_messages(signed_block)
    ]

    view.policy_manager.get("/Channel/Orderer/BlockValidation").evaluate(
        messages, view.msp_manager
    )


def test_a_clinician_cannot_sign_blocks(
    view: ChannelConfig, signer: Callable[[str, str], SigningIdentity]
) -> None:
    with pytest.raises(PolicyNotSatisfied):
        view.policy_manager.get("/Channel/Orderer/BlockValidation").evaluate(
            signed(signer("HospitalAMSP", "dr-lee")), view.msp_manager
        )


def test_lifecycle_endorsement_needs_a_majority_of_hospitals(
    view: ChannelConfig, signer: Callable[[str, str], SigningIdentity]
) -> None:
    policy = view.policy_manager.get("/Channel/Application/LifecycleEndorsement")
    peer_a = signer("HospitalAMSP", "peer0")
    peer_b = signer("HospitalBMSP", "peer0")

    policy.evaluate(signed(peer_a, peer_b), view.msp_manager)
    with pytest.raises(PolicyNotSatisfied):
        policy.evaluate(signed(peer_a), view.msp_manager)


def test_channel_admins_need_the_hospitals_and_the_commission(
    view: ChannelConfig, signer: Callable[[str, str], SigningIdentity]
) -> None:
    policy = view.policy_manager.get("/Channel/Admins")
    hospital_admins = [signer(mspid, "Admin") for mspid in HOSPITALS]

    policy.evaluate(
        signed(*hospital_admins[:2], signer(COMMISSION, "Admin")), view.msp_manager
    )
    with pytest.raises(PolicyNotSatisfied):
        policy.evaluate(signed(*hospital_admins), view.msp_manager)


def test_unknown_policy_paths(view: ChannelConfig) -> None:
    with pytest.raises(UnknownPolicy):
        view.policy_manager.get("/Channel/Application/Auditors")


def test_acl_policy_paths(config: configtx_pb2.Config) -> None:
    acls = peer_pb2.ACLs()
    acls.acls["qscc/GetChainInfo"].policy_ref = "Readers"
    acls.acls["peer/Propose"].policy_ref = "/Channel/Application/Writers"
    changed = _copy(config)
    application = changed.channel_group.groups["Application"]
    application.values["ACLs"].value = acls.SerializeToString()

    view = ChannelConfig.from_config(changed, channel_id=CHANNEL)

    assert view.acl_policy("qscc/GetChainInfo") == "/Channel/Application/Readers"
    assert view.acl_policy("peer/Propose") == "/Channel/Application/Writers"
    assert view.acl_policy("event/Block") is None


def test_an_org_in_both_groups_shares_one_msp(config: configtx_pb2.Config) -> None:
    changed = _copy(config)
    hospital_a = changed.channel_group.groups["Application"].groups["HospitalAMSP"]
    orderer_org = changed.channel_group.groups["Orderer"].groups["HospitalAMSP"]
    orderer_org.CopyFrom(hospital_a)
    del orderer_org.values["AnchorPeers"]

    view = ChannelConfig.from_config(changed, channel_id=CHANNEL)

    assert view.orderer_orgs["HospitalAMSP"].endpoints == ()
    assert len(view.msp_manager) == 4


# --- malformed configs ------------------------------------------------------------


def _copy(config: configtx_pb2.Config) -> configtx_pb2.Config:
    copy = configtx_pb2.Config()
    copy.CopyFrom(config)
    return copy


def _group(config: configtx_pb2.Config, path: str) -> configtx_pb2.ConfigGroup:
    group = config.channel_group
    for name in path.split("/")[2:]:
        group = group.groups[name]
    return group


def _set_value(
    path: str, key: str, data: bytes
) -> Callable[[configtx_pb2.Config], None]:
    def change(config: configtx_pb2.Config) -> None:
        _group(config, path).values[key].value = data

    return change


def _delete(path: str, kind: str, key: str) -> Callable[[configtx_pb2.Config], None]:
    def change(config: configtx_pb2.Config) -> None:
        del getattr(_group(config, path), kind)[key]

    return change


def _batch_size(count: int, absolute: int, preferred: int) -> bytes:
    return orderer_pb2.BatchSize(
        max_message_count=count,
        absolute_max_bytes=absolute,
        preferred_max_bytes=preferred,
    ).SerializeToString()


def _timeout(text: str) -> bytes:
    return orderer_pb2.BatchTimeout(timeout=text).SerializeToString()


def _consensus(kind: str, metadata: bytes = b"") -> bytes:
    return orderer_pb2.ConsensusType(type=kind, metadata=metadata).SerializeToString()


def _capabilities(*names: str) -> bytes:
    capabilities = configuration_pb2.Capabilities()
    for name in names:
        capabilities.capabilities[name].SetInParent()
    return capabilities.SerializeToString()


def _msp(config: bytes, msp_type: int = 0) -> bytes:
    return msp_config_pb2.MSPConfig(type=msp_type, config=config).SerializeToString()


def _bad_root_cert(config: configtx_pb2.Config) -> None:
    group = _group(config, "/Channel/Application/HospitalAMSP")
    msp = msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    fabric.root_certs[0] = b"-----BEGIN CERTIFICATE-----\nnot a certificate\n"
    group.values["MSP"].value = _msp(fabric.SerializeToString())


def _policy(
    config: configtx_pb2.Config, path: str, policy: policies_pb2.Policy
) -> None:
    group_path, name = path.rsplit("/", 1)
    _group(config, group_path).policies[name].policy.CopyFrom(policy)


def _duplicate_mspid(config: configtx_pb2.Config) -> None:
    application = _group(config, "/Channel/Application")
    application.groups["Copy"].CopyFrom(application.groups["HospitalAMSP"])


def _different_msp_in_orderer(config: configtx_pb2.Config) -> None:
    hospital = _group(config, "/Channel/Application/HospitalAMSP")
    commission = _group(config, "/Channel/Orderer/HealthCommissionMSP")
    msp = msp_config_pb2.MSPConfig.FromString(commission.values["MSP"].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    fabric.name = "HospitalAMSP"
    copy = _group(config, "/Channel/Orderer").groups["HospitalAMSP"]
    copy.CopyFrom(hospital)
    del copy.values["AnchorPeers"]
    copy.values["MSP"].value = _msp(fabric.SerializeToString())


ORDERER = "/Channel/Orderer"
APPLICATION = "/Channel/Application"
HOSPITAL_A = "/Channel/Application/HospitalAMSP"
MALFORMED: list[tuple[str, Callable[[configtx_pb2.Config], None], str, str]] = [
    (
        "no batch size",
        _delete(ORDERER, "values", "BatchSize"),
        "/Channel/Orderer/BatchSize",
        "missing value",
    ),
    (
        "zero message count",
        _set_value(ORDERER, "BatchSize", _batch_size(0, 100, 10)),
        "/Channel/Orderer/BatchSize",
        "max_message_count must be greater than 0",
    ),
    (
        "preferred above absolute",
        _set_value(ORDERER, "BatchSize", _batch_size(10, 100, 101)),
        "/Channel/Orderer/BatchSize",
        "preferred_max_bytes 101 exceeds absolute_max_bytes 100",
    ),
    (
        "undecodable batch size",
        _set_value(ORDERER, "BatchSize", b"\xff\xff"),
        "/Channel/Orderer/BatchSize",
        "does not decode as orderer.BatchSize",
    ),
    (
        "timeout without unit",
        _set_value(ORDERER, "BatchTimeout", _timeout("2")),
        "/Channel/Orderer/BatchTimeout",
        "invalid duration '2'",
    ),
    (
        "zero timeout",
        _set_value(ORDERER, "BatchTimeout", _timeout("0s")),
        "/Channel/Orderer/BatchTimeout",
        "must be greater than zero",
    ),
    (
        "other hashing",
        _set_value(
            "/Channel",
            "HashingAlgorithm",
            configuration_pb2.HashingAlgorithm(name="SHA3_256").SerializeToString(),
        ),
        "/Channel/HashingAlgorithm",
        "'SHA3_256' is not supported",
    ),
    (
        "merkle width",
        _set_value(
            "/Channel",
            "BlockDataHashingStructure",
            configuration_pb2.BlockDataHashingStructure(width=2).SerializeToString(),
        ),
        "/Channel/BlockDataHashingStructure",
        "width 2 is not supported",
    ),
    (
        "BFT consensus",
        _set_value(ORDERER, "ConsensusType", _consensus("BFT")),
        "/Channel/Orderer/ConsensusType",
        "consensus type 'BFT' is not supported",
    ),
    (
        "etcdraft without consenters",
        _set_value(
            ORDERER,
            "ConsensusType",
            _consensus("etcdraft", etcdraft_pb2.ConfigMetadata().SerializeToString()),
        ),
        "/Channel/Orderer/ConsensusType",
        "lists no consenters",
    ),
    (
        "unsupported capability",
        _set_value("/Channel", "Capabilities", _capabilities("V3_0")),
        "/Channel/Capabilities",
        "capabilities V3_0 are required but not supported",
    ),
    (
        "unknown org value",
        _set_value(HOSPITAL_A, "Endpoints", b""),
        "/Channel/Application/HospitalAMSP/Endpoints",
        "unknown value",
    ),
    (
        "system channel group",
        lambda c: c.channel_group.groups["Consortiums"].SetInParent(),
        "/Channel/Consortiums",
        "unknown group",
    ),
    (
        "no orderer group",
        _delete("/Channel", "groups", "Orderer"),
        "/Channel/Orderer",
        "missing group",
    ),
    (
        "no MSP",
        _delete(HOSPITAL_A, "values", "MSP"),
        "/Channel/Application/HospitalAMSP/MSP",
        "missing value",
    ),
    (
        "idemix MSP",
        _set_value(HOSPITAL_A, "MSP", _msp(b"", msp_type=1)),
        "/Channel/Application/HospitalAMSP/MSP",
        "msp type 1 is not supported",
    ),
    (
        "bad root certificate",
        _bad_root_cert,
        "/Channel/Application/HospitalAMSP/MSP",
        "root_certs[0]",
    ),
    (
        "anchor peer without port",
        _set_value(
            HOSPITAL_A,
            "AnchorPeers",
            peer_pb2.AnchorPeers(
                anchor_peers=[peer_pb2.AnchorPeer(host="peer0")]
            ).SerializeToString(),
        ),
        "/Channel/Application/HospitalAMSP/AnchorPeers",
        "anchor peer peer0:0 needs a host and a port",
    ),
    (
        "two groups with one MSP id",
        _duplicate_mspid,
        "/Channel/Application/HospitalAMSP/MSP",
        "msp id 'HospitalAMSP' is already used by organisation 'Copy'",
    ),
    (
        "an MSP id with two configs",
        _different_msp_in_orderer,
        "/Channel/Orderer/HospitalAMSP/MSP",
        "defined again with a different config",
    ),
    (
        "ACL without a policy",
        _set_value(
            APPLICATION,
            "ACLs",
            peer_pb2.ACLs(
                acls={"peer/Propose": peer_pb2.APIResource()}
            ).SerializeToString(),
        ),
        "/Channel/Application/ACLs",
        "resource 'peer/Propose' has no policy_ref",
    ),
    (
        "empty policy",
        lambda c: _group(c, APPLICATION).policies["Writers"].ClearField("policy"),
        "/Channel/Application/Writers",
        "empty policy",
    ),
    (
        "MSP-type policy",
        lambda c: _policy(c, f"{APPLICATION}/Readers", policies_pb2.Policy(type=2)),
        "/Channel/Application/Readers",
        "policy type 2 is not supported",
    ),
    (
        "garbled signature policy",
        lambda c: _policy(
            c,
            f"{HOSPITAL_A}/Admins",
            policies_pb2.Policy(type=policies_pb2.Policy.SIGNATURE, value=b"\xff"),
        ),
        "/Channel/Application/HospitalAMSP/Admins",
        "does not decode as common.SignaturePolicyEnvelope",
    ),
    (
        "signature policy naming no principal",
        lambda c: _policy(
            c,
            f"{HOSPITAL_A}/Admins",
            policies_pb2.Policy(
                type=policies_pb2.Policy.SIGNATURE,
                value=_envelope_with_bad_index(),
            ),
        ),
        "/Channel",
        "/Channel/Application/HospitalAMSP/Admins",
    ),
    (
        "no block validation",
        _delete(ORDERER, "policies", "BlockValidation"),
        "/Channel/Orderer/BlockValidation",
        "missing policy",
    ),
    (
        "no channel readers",
        _delete("/Channel", "policies", "Readers"),
        "/Channel/Readers",
        "missing policy",
    ),
]


def _envelope_with_bad_index() -> bytes:
    envelope = from_string("OR('HospitalAMSP.admin')")
    envelope.rule.n_out_of.rules[0].signed_by = 7
    return envelope.SerializeToString()


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [pytest.param(c, p, m, id=name) for name, c, p, m in MALFORMED],
)
def test_malformed_configs_name_the_path(
    config: configtx_pb2.Config,
    change: Callable[[configtx_pb2.Config], None],
    path: str,
    message: str,
) -> None:
    changed = _copy(config)
    change(changed)

    with pytest.raises(ChannelConfigError) as caught:
        ChannelConfig.from_config(changed, channel_id=CHANNEL)

    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


# --- blocks that are not config blocks --------------------------------------------


def _with_envelope(block: common_pb2.Block, envelope: common_pb2.Envelope) -> bytes:
    changed = common_pb2.Block()
    changed.CopyFrom(block)
    changed.data.data[0] = envelope.SerializeToString()
    return changed.SerializeToString()


def _payload_of(block: common_pb2.Block) -> common_pb2.Payload:
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    return common_pb2.Payload.FromString(envelope.payload)


def test_garbage_is_not_a_block() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        ChannelConfig.from_block(b"\xff\xff\xff")

    assert caught.value.path == "block"


def test_a_block_with_two_envelopes_is_not_a_config_block(
    block: common_pb2.Block,
) -> None:
    changed = common_pb2.Block()
    changed.CopyFrom(block)
    changed.header.number = 5
    changed.data.data.append(block.data.data[0])

    with pytest.raises(ChannelConfigError, match=r"^block 5: .*holds 2"):
        ChannelConfig.from_block(changed)


def test_an_endorser_transaction_is_not_a_config_block(
    block: common_pb2.Block,
) -> None:
    payload = _payload_of(block)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    header.type = common_pb2.ENDORSER_TRANSACTION
    payload.header.channel_header = header.SerializeToString()
    changed = _with_envelope(
        block, common_pb2.Envelope(payload=payload.SerializeToString())
    )

    with pytest.raises(ChannelConfigError, match="not a config block"):
        ChannelConfig.from_block(changed)


def test_a_config_envelope_without_config(block: common_pb2.Block) -> None:
    payload = _payload_of(block)
    payload.data = configtx_pb2.ConfigEnvelope().SerializeToString()
    changed = _with_envelope(
        block, common_pb2.Envelope(payload=payload.SerializeToString())
    )

    with pytest.raises(ChannelConfigError, match="ConfigEnvelope has no config"):
        ChannelConfig.from_block(changed)
