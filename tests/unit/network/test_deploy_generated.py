"""Unit tests for network.deploy_generated's reading of a generated folder.

Method: `write_spec_copy` on the plans of the bundled example specs (no crypto
material is needed for it), then the copy is loaded as `network deploy` loads it. The
copy must define every chaincode exactly as the original does (what the lifecycle
approves and commits) and the same channels, and it must load from anywhere the
folder is moved to. `load_generated` narrows the plan to --channel / --chaincode.

The final gateway check: `gateway_targets` lists each gateway of a member of a chosen
channel with its admin's MSP; `check_gateways` runs with probes that answer, refuse or
hang (the retry pause patched to nothing, so no test waits), and once with the real
probe against a loopback port where nothing listens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import grpc
import pytest

from gateway.client import GatewayError
from network import deploy_generated
from network.cryptogen import crypto_layout, generate_crypto
from network.deploy import lifecycle_definition
from network.deploy_generated import (
    SPEC_COPY,
    DeployOptions,
    GatewayTarget,
    check_gateways,
    gateway_targets,
    load_generated,
    write_spec_copy,
)
from network.launcher import LaunchError
from network.nodeprocs import Material
from network.plan import Plan, make_plan
from network.spec import load_spec
from tests.support.etcd import free_ports

EXAMPLES = Path(__file__).parents[3] / "network" / "examples"
CHANNEL = "medical-records"


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


# --- the gateway check -------------------------------------------------------------


def material_of(plan: Plan) -> Material:
    crypto = crypto_layout(plan.spec, plan.workdir)
    return Material(
        crypto=crypto, blocks={}, etcd_pairs={}, ccaas_pairs={}, packages={}
    )


def target(name: str, port: int = 7060) -> GatewayTarget:
    return GatewayTarget(
        name=name,
        address=f"127.0.0.1:{port}",
        mspid="HospitalAMSP",
        channels=(CHANNEL,),
        msp_dir=Path("msp"),
        tls_ca=None,
    )


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy_generated, "RETRY_S", 0.001)


def test_each_gateway_of_a_channel_member_is_checked_as_its_admin(
    tmp_path: Path,
) -> None:
    plan = plan_of(EXAMPLES / "bench-2org.yaml", tmp_path)

    targets = gateway_targets(plan, material_of(plan))

    layout = crypto_layout(plan.spec, tmp_path)
    assert [(t.name, t.address, t.mspid, t.channels) for t in targets] == [
        (
            "gateway0.hospital-a.example.com",
            "127.0.0.1:17060",
            "HospitalAMSP",
            (CHANNEL,),
        ),
        (
            "gateway0.hospital-b.example.com",
            "127.0.0.1:18060",
            "HospitalBMSP",
            (CHANNEL,),
        ),
    ]
    assert (
        targets[0].msp_dir == layout.organization("HospitalAMSP").user("Admin").msp_dir
    )
    assert targets[1].tls_ca == layout.organization("HospitalBMSP").tlsca_cert


def test_no_gateway_is_checked_when_no_chosen_channel_has_members(
    tmp_path: Path,
) -> None:
    plan = plan_of(EXAMPLES / "bench-2org.yaml", tmp_path)

    targets = gateway_targets(dataclasses.replace(plan, channels=()), material_of(plan))

    assert targets == []


async def test_ready_gateways_are_each_reported(no_pause: None) -> None:
    lines: list[str] = []
    asked: list[tuple[str, float]] = []

    async def answers(gateway: GatewayTarget, within_s: float) -> None:
        asked.append((gateway.name, within_s))

    await check_gateways(
        [target("g1"), target("g2")], timeout_s=5, progress=lines.append, probe=answers
    )

    assert [name for name, _ in asked] == ["g1", "g2"]
    assert all(0 < within <= 5 for _, within in asked)
    assert lines == [
        "checking gateways: g1, g2",
        f"gateway g1 at 127.0.0.1:7060 ready ({CHANNEL})",
        f"gateway g2 at 127.0.0.1:7060 ready ({CHANNEL})",
    ]


async def test_a_gateway_is_asked_again_until_it_sees_the_peers(
    no_pause: None,
) -> None:
    lines: list[str] = []
    refusals = [f"no peers available to evaluate chaincode qscc in channel {CHANNEL}"]

    async def sees_peers_second_time(gateway: GatewayTarget, within_s: float) -> None:
        if refusals:
            code = grpc.StatusCode.FAILED_PRECONDITION
            raise GatewayError(refusals.pop(), code=code)

    await check_gateways(
        [target("g1")], timeout_s=5, progress=lines.append, probe=sees_peers_second_time
    )

    assert lines == [
        "checking gateways: g1",
        "waiting for gateway g1 at 127.0.0.1:7060",
        f"gateway g1 at 127.0.0.1:7060 ready ({CHANNEL})",
    ]


async def test_every_gateway_not_ready_is_named_with_its_address_and_error(
    no_pause: None,
) -> None:
    async def probe(gateway: GatewayTarget, within_s: float) -> None:
        if gateway.name == "refuses":
            message = (
                f"no peers available to evaluate chaincode qscc in channel {CHANNEL}"
            )
            raise GatewayError(message, code=grpc.StatusCode.FAILED_PRECONDITION)
        if gateway.name == "hangs":
            await asyncio.Event().wait()

    targets = [target("ready", 1), target("refuses", 2), target("hangs", 3)]
    with pytest.raises(LaunchError) as raised:
        await check_gateways(targets, timeout_s=0.02, progress=print, probe=probe)

    message = str(raised.value)
    assert message.startswith("2 of 3 gateways not ready within 0.02s"), message
    assert "--no-gateways" in message
    assert (
        "refuses at 127.0.0.1:2: FAILED_PRECONDITION: no peers available" in message
    ), message
    assert "hangs at 127.0.0.1:3: no answer" in message, message
    assert "ready at" not in message


async def test_a_gateway_that_is_not_started_is_named(tmp_path: Path) -> None:
    """The real probe (signed qscc evaluate) to a loopback port nothing listens on."""
    plan = plan_of(EXAMPLES / "bench-2org.yaml", tmp_path)
    generate_crypto(plan.spec, tmp_path)
    [closed] = free_ports(1)
    first = gateway_targets(plan, material_of(plan))[0]
    absent = dataclasses.replace(first, address=f"127.0.0.1:{closed}")

    with pytest.raises(LaunchError) as raised:
        await check_gateways([absent], timeout_s=0.05, progress=print)

    message = str(raised.value)
    assert f"gateway0.hospital-a.example.com at 127.0.0.1:{closed}: UNAVAILABLE" in (
        message
    ), message
