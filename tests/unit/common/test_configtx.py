"""Unit tests for common.configtx: config updates judged as Fabric 2.5's orderer does.

The hospital example, plus a fourth hospital that is not yet a channel member, gets
crypto material once per session; the medical-records genesis config is the current
config. Each test derives a new config, computes the update with
`network.config_update`, signs it with real admin keys and checks that
`validate_config_update` accepts it (the new config parses, sequence + 1) or refuses it
with the right error and element path. Invalid cases change one thing in a valid update.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, HostPort, keys
from common.configtx import (
    compute_update,
    create_config_tx,
    parse_config_tx,
    parse_config_update_tx,
    validate_config_envelope,
    validate_config_update,
)
from common.errors import (
    ConfigUpdateError,
    ConfigVersionMismatch,
    ModPolicyNotSatisfied,
    ReadSetMismatch,
)
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    Timestamp,
    compute_tx_id,
    new_block,
    parse_envelope,
)
from network.config_update import (
    config_update_envelope,
    create_config_update_tx,
    sign_config_update,
)
from network.cryptogen import CryptoLayout
from network.genesis import build_channel_config
from network.spec import ConsortiumSpec, parse_spec
from protos.common import common_pb2, configtx_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.peer import configuration_pb2 as peer_pb2
from tests.unit import example_channel
from tests.unit.example_channel import CHANNEL, COMMISSION, EXAMPLE, HOSPITALS

NEWCOMER = "HospitalDMSP"
MEMBERS = "members: [HospitalAMSP, HospitalBMSP, HospitalCMSP]"
HOSPITAL_D = """
  - name: Hospital D
    mspid: HospitalDMSP
    domain: hospital-d.example.com
    peers:
      - {name: peer0, host: 127.0.0.1, port: 10051}
    users:
      - {name: Admin, admin: true}
      - {name: dr-novak}

channels:
"""

Signers = Callable[..., list[SigningIdentity]]


# --- the consortium, once per session ---------------------------------------------


def example_text(*, with_newcomer_as_member: bool) -> str:
    text = EXAMPLE.read_text().replace("\nchannels:\n", HOSPITAL_D, 1)
    assert "Hospital D" in text
    assert MEMBERS in text
    if with_newcomer_as_member:
        text = text.replace(MEMBERS, MEMBERS.replace("]", ", HospitalDMSP]"), 1)
    return text


@pytest.fixture(scope="session")
def spec() -> ConsortiumSpec:
    return parse_spec(example_text(with_newcomer_as_member=False), source="example")


crypto = example_channel.crypto
view = example_channel.view


@pytest.fixture(scope="session")
def config_with_newcomer(crypto: CryptoLayout) -> configtx_pb2.Config:
    spec = parse_spec(example_text(with_newcomer_as_member=True), source="example+D")
    return build_channel_config(spec, CHANNEL, crypto)


@pytest.fixture(scope="session")
def identity(crypto: CryptoLayout) -> Callable[[str, str], SigningIdentity]:
    """A signing identity by MSP id and user or node name (`Admin`, `peer0`)."""
    cache: dict[tuple[str, str], SigningIdentity] = {}

    def load(mspid: str, name: str) -> SigningIdentity:
        if (mspid, name) not in cache:
            organization = crypto.organization(mspid)
            folders = {
                **{node.name.split(".")[0]: node for node in organization.nodes},
                **{user.name.split("@")[0]: user for user in organization.users},
            }
            cache[mspid, name] = load_signing_identity(
                folders[name].msp_dir, mspid=mspid
            )
        return cache[mspid, name]

    return load


@pytest.fixture(scope="session")
def admin(
    identity: Callable[[str, str], SigningIdentity],
) -> Callable[[str], SigningIdentity]:
    return lambda mspid: identity(mspid, "Admin")


# --- helpers ------------------------------------------------------------------------


def update_tx(
    update: configtx_pb2.ConfigUpdate | bytes,
    *signers: SigningIdentity,
    channel_id: str = CHANNEL,
) -> bytes:
    """The CONFIG_UPDATE envelope bytes, signed by `signers` (the first submits it)."""
    envelope = config_update_envelope(update, signers=signers)
    return create_config_update_tx(channel_id, envelope, signers[0]).SerializeToString()


def propose(
    view: ChannelConfig, new_config: configtx_pb2.Config, *signers: SigningIdentity
) -> configtx_pb2.ConfigEnvelope:
    update = compute_update(CHANNEL, view.config, new_config)
    return validate_config_update(view, update_tx(update, *signers))


def adopt(
    view: ChannelConfig, new_config: configtx_pb2.Config, *signers: SigningIdentity
) -> ChannelConfig:
    """Apply an update and return the next view, as orderer and peers would."""
    config_envelope = propose(view, new_config, *signers)
    return ChannelConfig.from_config(config_envelope.config, channel_id=CHANNEL)


def edited(
    view: ChannelConfig, *names: str
) -> tuple[configtx_pb2.Config, configtx_pb2.ConfigGroup]:
    """A fresh copy of the current config and the group at /Channel/<names...>."""
    config = view.config
    group = config.channel_group
    for name in names:
        group = group.groups[name]
    return config, group


def with_anchor_peers(
    view: ChannelConfig, mspid: str, *peers: tuple[str, int]
) -> configtx_pb2.Config:
    config, org = edited(view, keys.APPLICATION, mspid)
    anchors = peer_pb2.AnchorPeers(
        anchor_peers=[peer_pb2.AnchorPeer(host=host, port=port) for host, port in peers]
    )
    org.values[keys.ANCHOR_PEERS].value = anchors.SerializeToString()
    return config


def with_batch_size(view: ChannelConfig, max_message_count: int) -> configtx_pb2.Config:
    config, orderer = edited(view, keys.ORDERER)
    batch = orderer_pb2.BatchSize.FromString(orderer.values[keys.BATCH_SIZE].value)
    batch.max_message_count = max_message_count
    orderer.values[keys.BATCH_SIZE].value = batch.SerializeToString()
    return config


def batch_size_update(view: ChannelConfig, count: int) -> configtx_pb2.ConfigUpdate:
    return compute_update(CHANNEL, view.config, with_batch_size(view, count))


# --- accepted updates ---------------------------------------------------------------


def test_an_org_admin_moves_its_anchor_peer(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """AnchorPeers' mod_policy `Admins` is HospitalAMSP's own Admins policy."""
    new_config = with_anchor_peers(view, "HospitalAMSP", ("10.0.0.7", 7051))

    config_envelope = propose(view, new_config, admin("HospitalAMSP"))

    config = config_envelope.config
    assert config.sequence == view.sequence + 1 == 1
    updated = ChannelConfig.from_config(config, channel_id=CHANNEL)
    assert updated.application_orgs["HospitalAMSP"].anchor_peers == (
        HostPort("10.0.0.7", 7051),
    )
    org = config.channel_group.groups[keys.APPLICATION].groups["HospitalAMSP"]
    assert org.values[keys.ANCHOR_PEERS].version == 1
    assert org.version == 0
    assert (
        org.values[keys.MSP]
        == view.config.channel_group.groups[keys.APPLICATION]
        .groups["HospitalAMSP"]
        .values[keys.MSP]
    )
    last_update = parse_envelope(config_envelope.last_update)
    assert last_update.header_type == common_pb2.CONFIG_UPDATE
    assert last_update.creator == admin("HospitalAMSP").serialized


def test_the_orderer_admin_changes_the_batch_size(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """BatchSize's mod_policy is /Channel/Orderer/Admins: the commission's admin."""
    updated = adopt(view, with_batch_size(view, 10), admin(COMMISSION))

    assert updated.batch_size.max_message_count == 10
    assert updated.sequence == 1
    assert updated.batch_size.absolute_max_bytes == view.batch_size.absolute_max_bytes


def test_adding_an_org_needs_a_majority_of_hospital_admins(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    """Application's mod_policy is MAJORITY Admins: 1 of 3 admins fails, 2 pass."""
    with pytest.raises(ModPolicyNotSatisfied) as raised:
        propose(view, config_with_newcomer, admin("HospitalAMSP"))
    assert raised.value.path == "/Channel/Application"
    assert "MAJORITY Admins" in str(raised.value)

    updated = adopt(
        view, config_with_newcomer, admin("HospitalAMSP"), admin("HospitalCMSP")
    )

    assert sorted(updated.application_orgs) == sorted([*HOSPITALS, NEWCOMER])
    assert NEWCOMER in updated.msp_manager
    assert updated.sequence == 1
    application = updated.config.channel_group.groups[keys.APPLICATION]
    assert application.version == 1
    assert application.groups[NEWCOMER].version == 0
    assert application.groups["HospitalAMSP"].version == 0


def test_removing_a_value_bumps_its_group(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """A group that loses a member is rewritten at version + 1 under its own mod_policy."""
    new_config, org = edited(view, keys.APPLICATION, "HospitalBMSP")
    del org.values[keys.ANCHOR_PEERS]

    updated = adopt(view, new_config, admin("HospitalBMSP"))

    assert updated.application_orgs["HospitalBMSP"].anchor_peers == ()
    group = updated.config.channel_group.groups[keys.APPLICATION].groups["HospitalBMSP"]
    assert group.version == 1
    assert keys.ANCHOR_PEERS not in group.values
    assert set(group.values) == {keys.MSP}
    assert set(group.policies) == {"Admins", "Endorsement", "Readers", "Writers"}


def test_updates_chain_from_one_sequence_to_the_next(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """The second change of a value goes to version 2 against the first's result."""
    first = adopt(view, with_batch_size(view, 10), admin(COMMISSION))
    second = adopt(first, with_batch_size(first, 20), admin(COMMISSION))

    assert second.sequence == 2
    assert second.batch_size.max_message_count == 20
    orderer = second.config.channel_group.groups[keys.ORDERER]
    assert orderer.values[keys.BATCH_SIZE].version == 2


def test_the_current_mod_policy_governs_not_the_proposed_one(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """HospitalA's admin hands its AnchorPeers to the commission: the next change needs
    the commission, and HospitalA's admin alone no longer suffices."""
    new_config, org = edited(view, keys.APPLICATION, "HospitalAMSP")
    org.values[keys.ANCHOR_PEERS].mod_policy = "/Channel/Orderer/Admins"
    handed_over = adopt(view, new_config, admin("HospitalAMSP"))
    moved = with_anchor_peers(handed_over, "HospitalAMSP", ("10.0.0.9", 7051))

    with pytest.raises(ModPolicyNotSatisfied) as raised:
        propose(handed_over, moved, admin("HospitalAMSP"))

    assert raised.value.path == "/Channel/Application/HospitalAMSP/AnchorPeers"
    assert adopt(handed_over, moved, admin(COMMISSION)).sequence == 2


# --- signatures ---------------------------------------------------------------------


def test_signatures_from_non_admins_fail(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    identity: Callable[[str, str], SigningIdentity],
) -> None:
    """Clients and peers of every hospital sign: no Admins policy is satisfied."""
    signers = [identity(mspid, "peer0") for mspid in HOSPITALS]
    signers += [
        identity("HospitalAMSP", "dr-lee"),
        identity("HospitalBMSP", "dr-garcia"),
    ]

    with pytest.raises(ModPolicyNotSatisfied) as raised:
        propose(view, config_with_newcomer, *signers)

    assert raised.value.path == "/Channel/Application"


def test_one_admin_signing_twice_counts_once(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    with pytest.raises(ModPolicyNotSatisfied):
        propose(
            view, config_with_newcomer, admin("HospitalAMSP"), admin("HospitalAMSP")
        )


def test_a_tampered_update_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """Signatures over batch size 10 do not carry over to the bytes for batch size 11."""
    signed = config_update_envelope(
        batch_size_update(view, 10), signers=[admin(COMMISSION)]
    )
    signed.config_update = batch_size_update(view, 11).SerializeToString()
    envelope = create_config_update_tx(CHANNEL, signed, admin(COMMISSION))

    with pytest.raises(ModPolicyNotSatisfied) as raised:
        validate_config_update(view, envelope)

    assert raised.value.path == "/Channel/Orderer/BatchSize"


def test_signatures_made_separately_over_the_same_bytes_combine(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    """Admins sign the marshaled update offline; the envelope collects their approvals."""
    update = compute_update(CHANNEL, view.config, config_with_newcomer)
    update_bytes = update.SerializeToString()
    approvals = [sign_config_update(update_bytes, admin(m)) for m in HOSPITALS[1:]]
    envelope = config_update_envelope(update_bytes, signatures=approvals)
    submitted = create_config_update_tx(CHANNEL, envelope, admin("HospitalBMSP"))

    config_envelope = validate_config_update(view, submitted)

    assert (
        NEWCOMER in config_envelope.config.channel_group.groups[keys.APPLICATION].groups
    )


def test_an_undecodable_signature_header_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    envelope = config_update_envelope(
        batch_size_update(view, 10), signers=[admin(COMMISSION)]
    )
    envelope.signatures[0].signature_header = b"\xff\xff"
    submitted = create_config_update_tx(CHANNEL, envelope, admin(COMMISSION))

    with pytest.raises(ConfigUpdateError, match="signature 0 header does not decode"):
        validate_config_update(view, submitted)


# --- versions and read sets ---------------------------------------------------------


def test_a_modified_value_at_the_wrong_version_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    update = batch_size_update(view, 10)
    update.write_set.groups[keys.ORDERER].values[keys.BATCH_SIZE].version = 2

    with pytest.raises(ConfigVersionMismatch) as raised:
        validate_config_update(view, update_tx(update, admin(COMMISSION)))

    assert raised.value.path == "/Channel/Orderer/BatchSize"
    assert "must set version 1, not 2" in str(raised.value)


def test_a_new_element_not_at_version_zero_fails(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    update = compute_update(CHANNEL, view.config, config_with_newcomer)
    update.write_set.groups[keys.APPLICATION].groups[NEWCOMER].version = 1
    signers = [admin(mspid) for mspid in HOSPITALS]

    with pytest.raises(ConfigVersionMismatch) as raised:
        validate_config_update(view, update_tx(update, *signers))

    assert raised.value.path == "/Channel/Application/HospitalDMSP"


def test_a_stale_read_set_fails(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    """Two proposals race from the genesis config; the one ordered second must fail."""
    without_c, application = edited(view, keys.APPLICATION)
    del application.groups["HospitalCMSP"]
    late = compute_update(CHANNEL, view.config, without_c)
    signers = [admin(mspid) for mspid in HOSPITALS]
    first = adopt(view, config_with_newcomer, *signers)

    with pytest.raises(ReadSetMismatch) as raised:
        validate_config_update(first, update_tx(late, *signers))

    assert raised.value.path == "/Channel/Application"
    assert "expects the group at version 0, it is at version 1" in str(raised.value)


def test_a_read_set_naming_a_missing_element_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    update = batch_size_update(view, 10)
    update.read_set.groups[keys.ORDERER].values["KafkaBrokers"].version = 0

    with pytest.raises(ReadSetMismatch) as raised:
        validate_config_update(view, update_tx(update, admin(COMMISSION)))

    assert raised.value.path == "/Channel/Orderer/KafkaBrokers"


def test_deleting_without_bumping_the_group_version_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """A group written at its current version only names what changes, so leaving a
    member out deletes nothing: alone, such an update changes nothing."""
    group = view.config.channel_group.groups[keys.APPLICATION].groups["HospitalAMSP"]
    partial = configtx_pb2.ConfigGroup(version=0, mod_policy="Admins")
    partial.values[keys.MSP].version = 0
    partial.policies["Admins"].version = 0
    update = configtx_pb2.ConfigUpdate(channel_id=CHANNEL)
    for target in (update.read_set, update.write_set):
        target.groups[keys.APPLICATION].groups["HospitalAMSP"].CopyFrom(partial)
    assert keys.ANCHOR_PEERS in group.values

    with pytest.raises(ConfigUpdateError, match="changes nothing"):
        validate_config_update(view, update_tx(update, admin("HospitalAMSP")))


def test_a_member_left_out_of_an_unbumped_group_stays(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """Alongside a real change, the omission is not a deletion (Fabric's semantics)."""
    update = batch_size_update(view, 10)
    update.write_set.groups[keys.APPLICATION].groups["HospitalAMSP"].version = 0
    update.read_set.groups[keys.APPLICATION].groups["HospitalAMSP"].version = 0

    config_envelope = validate_config_update(view, update_tx(update, admin(COMMISSION)))

    assert (
        config_envelope.config.channel_group.groups[keys.APPLICATION]
        == (view.config.channel_group.groups[keys.APPLICATION])
    )


def test_adding_without_bumping_the_group_version_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    """A new policy under an unbumped group would silently vanish; it is refused."""
    update = configtx_pb2.ConfigUpdate(channel_id=CHANNEL)
    update.read_set.groups[keys.APPLICATION].groups["HospitalAMSP"].version = 0
    org = update.write_set.groups[keys.APPLICATION].groups["HospitalAMSP"]
    auditors = (
        view.config.channel_group.groups[keys.APPLICATION]
        .groups["HospitalAMSP"]
        .policies["Admins"]
    )
    org.policies["Auditors"].CopyFrom(auditors)
    org.policies["Auditors"].version = 0

    with pytest.raises(ConfigUpdateError) as raised:
        validate_config_update(view, update_tx(update, admin("HospitalAMSP")))

    assert raised.value.path == "/Channel/Application/HospitalAMSP/Auditors"
    assert "without bumping the version of its group" in str(raised.value)


# --- the update's identity and shape ------------------------------------------------


def test_an_update_for_another_channel_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    update = batch_size_update(view, 10)
    update.channel_id = "billing"

    with pytest.raises(ConfigUpdateError, match="for channel 'billing', not"):
        validate_config_update(view, update_tx(update, admin(COMMISSION)))


def test_an_envelope_for_another_channel_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    envelope = update_tx(batch_size_update(view, 10), admin(COMMISSION), channel_id="x")

    with pytest.raises(ConfigUpdateError, match="envelope is for channel 'x'"):
        validate_config_update(view, envelope)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\x00", "does not decode"),
        (common_pb2.Envelope().SerializeToString(), "payload is missing"),
    ],
)
def test_bytes_that_are_no_envelope_fail(
    view: ChannelConfig, data: bytes, message: str
) -> None:
    with pytest.raises(ConfigUpdateError, match=message):
        validate_config_update(view, data)


def test_an_envelope_of_another_type_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    config_envelope = propose(view, with_batch_size(view, 10), admin(COMMISSION))
    config_tx = create_config_tx(config_envelope, admin(COMMISSION), channel_id=CHANNEL)

    with pytest.raises(ConfigUpdateError, match="expected CONFIG_UPDATE"):
        validate_config_update(view, config_tx)


def test_an_update_with_bad_element_names_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    update = batch_size_update(view, 10)
    update.write_set.groups[keys.APPLICATION].groups[
        "Hospital E!"
    ].mod_policy = "Admins"

    with pytest.raises(ConfigUpdateError, match="characters other than") as raised:
        validate_config_update(view, update_tx(update, admin(COMMISSION)))

    assert raised.value.path == "/Channel/Application/Hospital E!"
    assert str(raised.value).startswith(f"{raised.value.path}: write set: element name")


def test_an_empty_mod_policy_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    update = batch_size_update(view, 10)
    update.write_set.groups[keys.ORDERER].values[keys.BATCH_SIZE].mod_policy = ""

    with pytest.raises(ConfigUpdateError, match="mod_policy is not set") as raised:
        validate_config_update(view, update_tx(update, admin(COMMISSION)))

    assert raised.value.path == "/Channel/Orderer/BatchSize"


def test_a_mod_policy_naming_no_policy_locks_the_element(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    new_config, orderer = edited(view, keys.ORDERER)
    orderer.values[keys.BATCH_SIZE].mod_policy = "Nobody"
    locked = adopt(view, new_config, admin(COMMISSION))

    with pytest.raises(ConfigUpdateError, match="'Nobody' names no policy"):
        propose(locked, with_batch_size(locked, 5), admin(COMMISSION))


# --- the result must still be a valid channel config --------------------------------


def test_an_update_leaving_an_invalid_config_fails(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    with pytest.raises(ConfigUpdateError, match="max_message_count must be") as raised:
        propose(view, with_batch_size(view, 0), admin(COMMISSION))

    assert raised.value.path == "/Channel/Orderer/BatchSize"
    assert "the updated config is not valid" in str(raised.value)


def test_an_org_cannot_change_its_msp_id(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    """HospitalAMSP's group takes Hospital D's MSP: an identity swap, refused."""
    new_config, org = edited(view, keys.APPLICATION, "HospitalAMSP")
    newcomer = config_with_newcomer.channel_group.groups[keys.APPLICATION].groups[
        NEWCOMER
    ]
    org.values[keys.MSP].value = newcomer.values[keys.MSP].value

    with pytest.raises(ConfigUpdateError, match="MSP id cannot change") as raised:
        propose(view, new_config, admin("HospitalAMSP"))

    assert raised.value.path == "/Channel/Application/HospitalAMSP/MSP"


def test_the_consensus_type_cannot_change(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    new_config, orderer = edited(view, keys.ORDERER)
    orderer.values[keys.CONSENSUS_TYPE].value = orderer_pb2.ConsensusType(
        type="solo"
    ).SerializeToString()

    with pytest.raises(ConfigUpdateError, match="from 'etcdraft' to 'solo'"):
        propose(view, new_config, admin(COMMISSION))


def test_the_application_group_cannot_be_removed(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    new_config = view.config
    del new_config.channel_group.groups[keys.APPLICATION]
    signers = [admin(COMMISSION), *(admin(mspid) for mspid in HOSPITALS)]

    with pytest.raises(ConfigUpdateError, match="cannot be removed"):
        propose(view, new_config, *signers)


# --- the CONFIG envelope and the peer's re-validation -------------------------------


def test_the_orderer_wraps_the_result_in_a_signed_config_envelope(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    orderer = admin(COMMISSION)
    config_envelope = propose(view, with_batch_size(view, 10), orderer)

    envelope = create_config_tx(
        config_envelope,
        orderer,
        channel_id=CHANNEL,
        timestamp=Timestamp(1_700_000_001),
        nonce=b"\x02" * 24,
    )

    parsed = parse_envelope(envelope)
    assert parsed.header_type == common_pb2.CONFIG
    assert parsed.channel_id == CHANNEL
    assert parsed.channel_header.version == 0
    assert parsed.channel_header.timestamp == Timestamp(1_700_000_001)
    assert parsed.tx_id == compute_tx_id(nonce=b"\x02" * 24, creator=orderer.serialized)
    orderer.identity.verify(parsed.payload_bytes, parsed.signature)
    assert parse_config_tx(envelope) == config_envelope
    block = new_block(
        1, previous_hash=b"\x00" * 32, envelopes=[envelope.SerializeToString()]
    )
    from_block = ChannelConfig.from_block(block)
    assert from_block.sequence == 1
    assert from_block.batch_size.max_message_count == 10


def test_a_peer_accepts_the_config_envelope_the_orderer_made(
    view: ChannelConfig,
    config_with_newcomer: configtx_pb2.Config,
    admin: Callable[[str], SigningIdentity],
) -> None:
    signers = [admin(mspid) for mspid in HOSPITALS[:2]]
    config_envelope = propose(view, config_with_newcomer, *signers)

    updated = validate_config_envelope(view, config_envelope.SerializeToString())

    assert NEWCOMER in updated.application_orgs
    assert updated.config == config_envelope.config


def test_a_peer_refuses_a_config_that_its_update_does_not_produce(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    config_envelope = propose(view, with_batch_size(view, 10), admin(COMMISSION))
    forged = configtx_pb2.ConfigEnvelope()
    forged.CopyFrom(config_envelope)
    forged.config.CopyFrom(with_batch_size(view, 10_000))
    forged.config.sequence = 1

    with pytest.raises(ConfigUpdateError, match="differs from the one its last_update"):
        validate_config_envelope(view, forged)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: setattr(e.config, "sequence", 2), "must be at 1"),
        (lambda e: e.ClearField("last_update"), "has no last_update"),
        (lambda e: e.ClearField("config"), "has no config"),
    ],
)
def test_a_peer_refuses_a_malformed_config_envelope(
    view: ChannelConfig,
    admin: Callable[[str], SigningIdentity],
    change: Callable[[configtx_pb2.ConfigEnvelope], None],
    message: str,
) -> None:
    config_envelope = propose(view, with_batch_size(view, 10), admin(COMMISSION))
    change(config_envelope)

    with pytest.raises(ConfigUpdateError, match=message):
        validate_config_envelope(view, config_envelope)


def test_parse_config_update_tx_returns_the_signed_envelope(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity]
) -> None:
    data = update_tx(batch_size_update(view, 10), admin(COMMISSION))

    envelope, update_envelope = parse_config_update_tx(data, channel_id=CHANNEL)

    assert envelope.SerializeToString() == data
    assert len(update_envelope.signatures) == 1


FABRIC_DECODER = """
import sys
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.orderer import configuration_pb2

for path, kind in ((sys.argv[1], "CONFIG_UPDATE"), (sys.argv[2], "CONFIG")):
    envelope = common_pb2.Envelope.FromString(open(path, "rb").read())
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert common_pb2.HeaderType.Name(header.type) == kind, header.type
    if kind == "CONFIG_UPDATE":
        update_envelope = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
        update = configtx_pb2.ConfigUpdate.FromString(update_envelope.config_update)
        value = update.write_set.groups["Orderer"].values["BatchSize"]
        print(header.channel_id, update.channel_id, value.version,
              len(update_envelope.signatures))
    else:
        config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
        value = config.channel_group.groups["Orderer"].values["BatchSize"]
        batch = configuration_pb2.BatchSize.FromString(value.value)
        print(header.channel_id, config.sequence, batch.max_message_count)
"""


def test_official_fabric_protos_decode_both_envelopes(
    view: ChannelConfig, admin: Callable[[str], SigningIdentity], tmp_path: Path
) -> None:
    """Decoded in a child process: Fabric's protos share our package names."""
    update_bytes = update_tx(batch_size_update(view, 10), admin(COMMISSION))
    config_envelope = validate_config_update(view, update_bytes)
    config_tx = create_config_tx(config_envelope, admin(COMMISSION), channel_id=CHANNEL)
    (tmp_path / "update.tx").write_bytes(update_bytes)
    (tmp_path / "config.tx").write_bytes(config_tx.SerializeToString())

    result = subprocess.run(
        [sys.executable, "-c", FABRIC_DECODER, "update.tx", "config.tx"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    if "No module named 'fabric_protos'" in result.stderr:
        pytest.skip("the official fabric_protos package is not installed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        f"{CHANNEL} {CHANNEL} 1 1",
        f"{CHANNEL} 1 10",
        "",
    ]
