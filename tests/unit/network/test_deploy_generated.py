"""Unit tests for network.deploy_generated's reading of a generated folder.

Method: `write_spec_copy` on the plans of the bundled example specs (no crypto
material is needed for it), then the copy is loaded as `network deploy` loads it. The
copy must define every chaincode exactly as the original does (what the lifecycle
approves and commits) and the same channels, and it must load from anywhere the
folder is moved to. `load_generated` narrows the plan to --channel / --chaincode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from network.deploy import lifecycle_definition
from network.deploy_generated import (
    SPEC_COPY,
    DeployOptions,
    load_generated,
    write_spec_copy,
)
from network.launcher import LaunchError
from network.plan import Plan, make_plan
from network.spec import load_spec

EXAMPLES = Path(__file__).parents[3] / "network" / "examples"


def plan_of(spec_path: Path, workdir: Path) -> Plan:
    spec = load_spec(spec_path)
    types = {channel.name: str(channel.orderer.type) for channel in spec.channels}
    return make_plan(spec, workdir=workdir, orderer_types=types)


@pytest.mark.parametrize(
    "example", ["hospital-consortium.yaml", "bench-2org.yaml", "bench-2org-etcd.yaml"]
)
def test_the_spec_copy_defines_the_same_chaincodes_and_channels(
    tmp_path: Path, example: str
) -> None:
    original = plan_of(EXAMPLES / example, tmp_path)
    write_spec_copy(original, tmp_path)
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns("moved"))

    copy = plan_of(moved / SPEC_COPY, moved)

    assert [lifecycle_definition(c) for c in copy.chaincodes] == [
        lifecycle_definition(c) for c in original.chaincodes
    ]
    assert [(c.name, c.label, c.channels) for c in copy.chaincodes] == [
        (c.name, c.label, c.channels) for c in original.chaincodes
    ]
    assert copy.channels == original.channels
    assert copy.spec.organizations == original.spec.organizations


def test_a_folder_without_the_copy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=f"no {SPEC_COPY} in {tmp_path}"):
        load_generated(DeployOptions(generated=tmp_path))


def test_a_missing_genesis_block_is_named(tmp_path: Path) -> None:
    write_spec_copy(plan_of(EXAMPLES / "bench-2org.yaml", tmp_path), tmp_path)

    with pytest.raises(LaunchError, match=r"channels/medical-records\.block"):
        load_generated(DeployOptions(generated=tmp_path))


@pytest.mark.parametrize(
    ("channel", "chaincode", "message"),
    [
        ("nope", None, r"no channel nope in the spec \(medical-records\)"),
        (None, "nope", r"no chaincode nope on the chosen channels \(asset, ehr\)"),
    ],
)
def test_an_unknown_channel_or_chaincode_is_refused(
    tmp_path: Path, channel: str | None, chaincode: str | None, message: str
) -> None:
    write_spec_copy(plan_of(EXAMPLES / "bench-2org.yaml", tmp_path), tmp_path)

    with pytest.raises(LaunchError, match=message):
        load_generated(
            DeployOptions(generated=tmp_path, channel=channel, chaincode=chaincode)
        )
