"""Property tests for `common.configtx.compute_update`, judged by the real validator.

The base is the medical-records channel of the hospital example without hospital C,
so that adding an organisation (C's group, with its real MSP) is one of the edits
next to the value, policy, mod_policy and removal edits of `test_configtx_update`.
For random edits, the computed update signed by every admin is accepted by
`validate_config_update` and yields exactly the edited config; the same edits
computed again from the base after that update committed (a stale config) are
refused, and computed from the new config they are accepted.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.channelconfig import ChannelConfig, keys
from common.configtx import compute_update, validate_config_update
from common.errors import ConfigVersionMismatch, ReadSetMismatch
from common.msp import SigningIdentity
from network.config_update import config_update_envelope, create_config_update_tx
from protos.common import configtx_pb2
from tests.unit import example_channel
from tests.unit.common import test_configtx_update
from tests.unit.common.test_configtx_update import (
    Edit,
    edits,
    set_batch_timeout,
    without_versions,
)
from tests.unit.example_channel import CHANNEL

# Derandomised so that every run explores the same cases; failures print a reproducer.
PROPERTY = settings(derandomize=True, deadline=None, max_examples=40, database=None)
JOINING = "HospitalCMSP"

spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view
admins = test_configtx_update.admins


@pytest.fixture(scope="module")
def joining_org(view: ChannelConfig) -> configtx_pb2.ConfigGroup:
    """Hospital C's application group, as the full example channel has it."""
    return view.config.channel_group.groups[keys.APPLICATION].groups[JOINING]


@pytest.fixture(scope="module")
def base(view: ChannelConfig) -> ChannelConfig:
    """The channel before hospital C joined: only A and B are members."""
    config = view.config
    del config.channel_group.groups[keys.APPLICATION].groups[JOINING]
    return ChannelConfig.from_config(config, channel_id=CHANNEL)


def add_org(group: configtx_pb2.ConfigGroup) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        root.groups[keys.APPLICATION].groups[JOINING].CopyFrom(group)

    return edit


def edited(config: ChannelConfig, chosen: list[Edit]) -> configtx_pb2.Config:
    updated = config.config
    for edit in chosen:
        edit(updated.channel_group)
    return updated


def submit(
    current: ChannelConfig,
    update: configtx_pb2.ConfigUpdate,
    admins: list[SigningIdentity],
) -> ChannelConfig:
    """Validate the update signed by every admin; the channel's next config."""
    envelope = create_config_update_tx(
        CHANNEL, config_update_envelope(update, signers=admins), admins[0]
    )
    result = validate_config_update(current, envelope.SerializeToString())
    return ChannelConfig.from_config(result.config, channel_id=CHANNEL)


# One in three drawn lists starts by adding hospital C; edits after it may change C.
edit_lists = st.tuples(
    st.booleans(), st.lists(edits, min_size=1, max_size=3), st.booleans()
)


def chosen_edits(drawn: tuple[bool, list[Edit], bool], joining: Edit) -> list[Edit]:
    join_first, others, join_last = drawn
    return [
        *([joining] if join_first else []),
        *others,
        *([joining] if join_last and not join_first else []),
    ]


@PROPERTY
@given(drawn=edit_lists)
def test_the_update_yields_the_edit_and_a_stale_one_is_refused(
    base: ChannelConfig,
    joining_org: configtx_pb2.ConfigGroup,
    admins: list[SigningIdentity],
    drawn: tuple[bool, list[Edit], bool],
) -> None:
    chosen = chosen_edits(drawn, add_org(joining_org))
    target = edited(base, chosen)
    if without_versions(target.channel_group) == without_versions(
        base.config.channel_group
    ):
        return  # the edits cancelled out; test_configtx_update pins that error

    first = submit(base, compute_update(CHANNEL, base.config, target), admins)

    assert first.sequence == base.sequence + 1
    assert without_versions(first.config.channel_group) == without_versions(
        target.channel_group
    )
    # A further change computed from the base misses the first update's versions.
    later = [*chosen, set_batch_timeout(61)]
    stale = compute_update(CHANNEL, base.config, edited(base, later))
    with pytest.raises((ReadSetMismatch, ConfigVersionMismatch)):
        submit(first, stale, admins)
    # Computed from the channel's current config, the same change goes through.
    fresh = compute_update(CHANNEL, first.config, edited(first, later))
    second = submit(first, fresh, admins)
    assert without_versions(second.config.channel_group) == without_versions(
        edited(base, later).channel_group
    )


def test_adding_an_organisation_writes_it_whole_under_a_rewritten_application(
    base: ChannelConfig, joining_org: configtx_pb2.ConfigGroup
) -> None:
    update = compute_update(CHANNEL, base.config, edited(base, [add_org(joining_org)]))

    application = update.write_set.groups[keys.APPLICATION]
    assert application.version == 1
    assert set(application.groups) == {"HospitalAMSP", "HospitalBMSP", JOINING}
    assert application.groups[JOINING].version == 0
    read = update.read_set.groups[keys.APPLICATION]
    assert read.version == 0
    assert set(read.groups) == {"HospitalAMSP", "HospitalBMSP"}


def test_removing_an_organisation_leaves_it_out_of_the_write_set(
    view: ChannelConfig,
) -> None:
    def drop(root: configtx_pb2.ConfigGroup) -> None:
        del root.groups[keys.APPLICATION].groups[JOINING]

    update = compute_update(CHANNEL, view.config, edited(view, [drop]))

    application = update.write_set.groups[keys.APPLICATION]
    assert application.version == 1
    assert JOINING not in application.groups
    # Fabric reads the kept members only: the group's own version guards the removal.
    assert update.read_set.groups[keys.APPLICATION].version == 0
    assert JOINING not in update.read_set.groups[keys.APPLICATION].groups
