"""Unit tests for `common.configtx.compute_update`, checked against common.configtx.

The read and write sets `compute_update` makes are pinned for the usual changes (a
value, a deleted member, a new group, a mod_policy). A property test then draws random
small edits of the medical-records genesis config, computes the update, has every admin
sign it and checks that `validate_config_update` turns the old config into exactly the
new one, with each element's version bumped only where it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.channelconfig import ChannelConfig, keys
from common.configtx import (
    compute_update,
    validate_config_envelope,
    validate_config_update,
)
from common.errors import ConfigUpdateError
from common.msp import SigningIdentity, load_signing_identity
from common.policies import from_string
from network.config_update import (
    config_update_envelope,
    create_config_update_tx,
)
from network.cryptogen import CryptoLayout
from protos.common import configtx_pb2, policies_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.peer import configuration_pb2 as peer_pb2
from tests.unit import example_channel
from tests.unit.example_channel import CHANNEL, COMMISSION, HOSPITALS

# Derandomised so that every run explores the same cases; failures print a reproducer.
PROPERTY = settings(derandomize=True, deadline=None, max_examples=60, database=None)

Edit = Callable[[configtx_pb2.ConfigGroup], None]


spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view


@pytest.fixture(scope="session")
def admins(crypto: CryptoLayout) -> list[SigningIdentity]:
    """Every organisation's admin: enough for any policy of the genesis config."""
    return [
        load_signing_identity(
            crypto.organization(mspid).user("Admin").msp_dir, mspid=mspid
        )
        for mspid in (*HOSPITALS, COMMISSION)
    ]


def changed(view: ChannelConfig, edit: Edit) -> configtx_pb2.Config:
    config = view.config
    edit(config.channel_group)
    return config


def stub(version: int = 0, **members: Any) -> configtx_pb2.ConfigGroup:
    """A ConfigGroup message with `version` and the given member maps."""
    return configtx_pb2.ConfigGroup(version=version, **members)


# --- the shape of an update ---------------------------------------------------------


def test_a_changed_value_is_written_at_its_next_version(view: ChannelConfig) -> None:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        root.groups[keys.ORDERER].values[
            keys.BATCH_TIMEOUT
        ].value = orderer_pb2.BatchTimeout(timeout="1s").SerializeToString()

    update = compute_update(CHANNEL, view.config, changed(view, edit))

    assert update.channel_id == CHANNEL
    assert update.read_set == stub(groups={keys.ORDERER: stub()})
    written = configtx_pb2.ConfigValue(
        version=1,
        value=orderer_pb2.BatchTimeout(timeout="1s").SerializeToString(),
        mod_policy="Admins",
    )
    assert update.write_set == stub(
        groups={keys.ORDERER: stub(values={keys.BATCH_TIMEOUT: written})}
    )


def test_a_group_losing_a_member_is_rewritten_with_what_it_keeps(
    view: ChannelConfig,
) -> None:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        del (
            root.groups[keys.APPLICATION]
            .groups["HospitalAMSP"]
            .values[keys.ANCHOR_PEERS]
        )

    update = compute_update(CHANNEL, view.config, changed(view, edit))

    kept: dict[str, Any] = {
        "values": {keys.MSP: configtx_pb2.ConfigValue(version=0)},
        "policies": {
            name: configtx_pb2.ConfigPolicy(version=0)
            for name in ("Admins", "Endorsement", "Readers", "Writers")
        },
    }
    read_org = stub(**kept)
    write_org = stub(version=1, **kept)
    write_org.mod_policy = "Admins"
    application = keys.APPLICATION
    assert update.read_set == stub(
        groups={application: stub(groups={"HospitalAMSP": read_org})}
    )
    assert update.write_set == stub(
        groups={application: stub(groups={"HospitalAMSP": write_org})}
    )


def test_a_new_group_is_written_whole_at_version_zero(view: ChannelConfig) -> None:
    """Even copied from a group at higher versions, everything in it starts at 0."""

    def edit(root: configtx_pb2.ConfigGroup) -> None:
        application = root.groups[keys.APPLICATION]
        copy = application.groups["HospitalCMSP"]
        copy.version = 4
        copy.values[keys.MSP].version = 3
        application.groups["HospitalCCopy"].CopyFrom(copy)
        copy.version = 0
        copy.values[keys.MSP].version = 0

    update = compute_update(CHANNEL, view.config, changed(view, edit))

    application = update.write_set.groups[keys.APPLICATION]
    assert application.version == 1
    new = application.groups["HospitalCCopy"]
    assert new.version == 0
    assert new.mod_policy == "Admins"
    assert {value.version for value in new.values.values()} == {0}
    assert new.values[keys.MSP].value == (
        view.config.channel_group.groups[keys.APPLICATION]
        .groups["HospitalCMSP"]
        .values[keys.MSP]
        .value
    )
    assert application.groups["HospitalAMSP"] == stub()
    assert update.read_set.groups[keys.APPLICATION].groups["HospitalAMSP"] == stub()
    assert "HospitalCCopy" not in update.read_set.groups[keys.APPLICATION].groups


def test_a_new_mod_policy_rewrites_the_group(view: ChannelConfig) -> None:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        root.groups[keys.ORDERER].mod_policy = "/Channel/Admins"

    update = compute_update(CHANNEL, view.config, changed(view, edit))

    orderer = update.write_set.groups[keys.ORDERER]
    assert orderer.version == 1
    assert orderer.mod_policy == "/Channel/Admins"
    assert set(orderer.values) == set(
        view.config.channel_group.groups[keys.ORDERER].values
    )
    assert all(value == configtx_pb2.ConfigValue() for value in orderer.values.values())


def test_identical_configs_have_no_update(view: ChannelConfig) -> None:
    with pytest.raises(ConfigUpdateError, match="do not differ"):
        compute_update(CHANNEL, view.config, view.config)


def test_a_config_without_channel_group_has_no_update(view: ChannelConfig) -> None:
    with pytest.raises(ConfigUpdateError, match="updated config has no channel group"):
        compute_update(CHANNEL, view.config, configtx_pb2.Config())
    with pytest.raises(ConfigUpdateError, match="original config has no channel group"):
        compute_update(CHANNEL, configtx_pb2.Config(), view.config)


# --- property: the computed update, applied, yields the new config -----------------


def set_batch_size(count: int) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        value = root.groups[keys.ORDERER].values[keys.BATCH_SIZE]
        batch = orderer_pb2.BatchSize.FromString(value.value)
        batch.max_message_count = count
        value.value = batch.SerializeToString()

    return edit


def set_batch_timeout(seconds: int) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        timeout = orderer_pb2.BatchTimeout(timeout=f"{seconds}s")
        root.groups[keys.ORDERER].values[
            keys.BATCH_TIMEOUT
        ].value = timeout.SerializeToString()

    return edit


def org_edit(change: Callable[[configtx_pb2.ConfigGroup], None], mspid: str) -> Edit:
    """Apply `change` to an application organisation's group, if it is still there."""

    def edit(root: configtx_pb2.ConfigGroup) -> None:
        application = root.groups[keys.APPLICATION]
        if mspid in application.groups:
            change(application.groups[mspid])

    return edit


def set_anchor_peers(peers: list[tuple[str, int]]) -> Callable[..., None]:
    def change(org: configtx_pb2.ConfigGroup) -> None:
        anchors = peer_pb2.AnchorPeers(
            anchor_peers=[peer_pb2.AnchorPeer(host=h, port=p) for h, p in peers]
        )
        org.values[keys.ANCHOR_PEERS].value = anchors.SerializeToString()
        org.values[keys.ANCHOR_PEERS].mod_policy = "Admins"

    return change


def drop_member(kind: str, name: str) -> Callable[..., None]:
    def change(org: configtx_pb2.ConfigGroup) -> None:
        members = org.values if kind == "value" else org.policies
        if name in members:
            del members[name]

    return change


def add_policy(name: str, rule: str) -> Callable[..., None]:
    def change(org: configtx_pb2.ConfigGroup) -> None:
        policy = policies_pb2.Policy(
            type=policies_pb2.Policy.SIGNATURE,
            value=from_string(rule).SerializeToString(),
        )
        org.policies[name].CopyFrom(
            configtx_pb2.ConfigPolicy(policy=policy, mod_policy="Admins")
        )

    return change


def set_mod_policy(target: str, mod_policy: str) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        orderer = root.groups[keys.ORDERER]
        if target == "group":
            orderer.mod_policy = mod_policy
        elif target == "value":
            orderer.values[keys.BATCH_SIZE].mod_policy = mod_policy
        else:
            orderer.policies["Readers"].mod_policy = mod_policy

    return edit


def drop_org(mspid: str) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        application = root.groups[keys.APPLICATION]
        if mspid in application.groups:
            del application.groups[mspid]

    return edit


hospitals = st.sampled_from(HOSPITALS)
anchor_lists = st.lists(
    st.tuples(
        st.sampled_from(["10.0.0.1", "peer1.hospital.example.com"]),
        st.integers(min_value=1, max_value=65535),
    ),
    min_size=1,
    max_size=3,
)
edits = st.one_of(
    st.builds(set_batch_size, st.integers(min_value=1, max_value=2000)),
    st.builds(set_batch_timeout, st.integers(min_value=1, max_value=59)),
    st.builds(org_edit, st.builds(set_anchor_peers, anchor_lists), hospitals),
    st.builds(
        org_edit,
        st.builds(
            drop_member,
            st.sampled_from(["value", "policy"]),
            st.sampled_from([keys.ANCHOR_PEERS, "Endorsement"]),
        ),
        hospitals,
    ),
    st.builds(
        org_edit,
        st.builds(
            add_policy,
            st.sampled_from(["Auditors", "Endorsement"]),
            st.sampled_from(["OR('HealthCommissionMSP.member')", "OR('X.admin')"]),
        ),
        hospitals,
    ),
    st.builds(
        set_mod_policy,
        st.sampled_from(["group", "value", "policy"]),
        st.sampled_from(["Admins", "/Channel/Admins", "Writers"]),
    ),
    st.builds(drop_org, hospitals),
)


@PROPERTY
@given(chosen=st.lists(edits, min_size=1, max_size=4))
def test_the_computed_update_turns_the_old_config_into_the_new(
    view: ChannelConfig, admins: list[SigningIdentity], chosen: list[Edit]
) -> None:
    new_config = view.config
    for edit in chosen:
        edit(new_config.channel_group)
    if new_config == view.config:
        with pytest.raises(ConfigUpdateError, match="do not differ"):
            compute_update(CHANNEL, view.config, new_config)
        return

    update = compute_update(CHANNEL, view.config, new_config)
    envelope = create_config_update_tx(
        CHANNEL, config_update_envelope(update, signers=admins), admins[0]
    )
    config_envelope = validate_config_update(view, envelope.SerializeToString())

    result = config_envelope.config
    assert result.sequence == view.sequence + 1
    assert without_versions(result.channel_group) == without_versions(
        new_config.channel_group
    )
    assert_minimal_versions(result.channel_group, view.config.channel_group, "")
    assert validate_config_envelope(view, config_envelope).config == result


def without_versions(group: configtx_pb2.ConfigGroup) -> configtx_pb2.ConfigGroup:
    copy = configtx_pb2.ConfigGroup()
    copy.CopyFrom(group)
    for element in walk(copy):
        element.version = 0
    return copy


def walk(
    group: configtx_pb2.ConfigGroup,
) -> Iterator[
    configtx_pb2.ConfigGroup | configtx_pb2.ConfigValue | configtx_pb2.ConfigPolicy
]:
    yield group
    yield from group.values.values()
    yield from group.policies.values()
    for child in group.groups.values():
        yield from walk(child)


def assert_minimal_versions(
    result: configtx_pb2.ConfigGroup, old: configtx_pb2.ConfigGroup, path: str
) -> None:
    """Unchanged elements keep their version, changed ones go up by one, new ones are 0."""
    same_members = (
        set(result.values) == set(old.values)
        and set(result.policies) == set(old.policies)
        and set(result.groups) == set(old.groups)
        and result.mod_policy == old.mod_policy
    )
    assert result.version == old.version + (0 if same_members else 1), path
    for name, value in result.values.items():
        before = old.values.get(name)
        expected = 0
        if before is not None:
            same = (before.value, before.mod_policy) == (value.value, value.mod_policy)
            expected = before.version + (0 if same else 1)
        assert value.version == expected, f"{path}/{name}"
    for name, policy in result.policies.items():
        earlier = old.policies.get(name)
        expected = 0
        if earlier is not None:
            same = (earlier.policy, earlier.mod_policy) == (
                policy.policy,
                policy.mod_policy,
            )
            expected = earlier.version + (0 if same else 1)
        assert policy.version == expected, f"{path}/{name}"
    for name, child in result.groups.items():
        if name in old.groups:
            assert_minimal_versions(child, old.groups[name], f"{path}/{name}")
        else:
            assert all(element.version == 0 for element in walk(child))
