"""`medledger channel config` and `channel update` as processes, against a real orderer.

Method: the solo orderer of `test_config_update` (three hospitals, the health
commission ordering, MaxMessageCount 4) runs in the test's event loop on
127.0.0.1:0; the commands run as `python -m network.cli` subprocesses, as an operator
runs them. `channel config` writes the current config as JSON, the test edits the
decoded BatchSize (or drops an organisation) and `channel update` sends the edit,
signed by the `--sign` admins. Outcomes are read from the command's output and exit
status and from the orderer's current config and height.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from common.channelconfig import ChannelConfig, keys
from network.orderer_material import ORDERING, OrdererMaterial
from orderer.node import OrdererNode
from tests.integration.orderer.test_config_update import (
    CHANNEL,
    GENESIS_COUNT,
    HOSPITALS,
    build_consortium,
    channel_config,
    stored_height,
)
from tests.support.orderer import running_orderer

CLI_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_consortium(tmp_path_factory)


async def medledger(*args: str | Path) -> tuple[int, str, str]:
    """Run `medledger ARGS` as a process; its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "network.cli",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Operator:
    """The commands an operator runs against one orderer, with the test's material."""

    def __init__(self, material: OrdererMaterial, address: str, folder: Path) -> None:
        self.material = material
        self.address = address
        self.folder = folder

    def admin(self, mspid: str) -> str:
        return f"{self.material.user(mspid, 'Admin').msp_dir}:{mspid}"

    async def fetch(self, name: str) -> dict[str, Any]:
        """`channel config -o NAME` as hospital A's clinician; the JSON it wrote."""
        path = self.folder / name
        status, out, err = await medledger(
            "channel", "config", "-c", CHANNEL, "--orderer", self.address,
            "--identity", self.material.user(HOSPITALS[0], "dr-lee").msp_dir,
            "--mspid", HOSPITALS[0], "-o", path,
        )  # fmt: skip
        assert status == 0, err
        assert out.startswith(f"wrote the config of channel {CHANNEL} (sequence ")
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    async def update(
        self, document: dict[str, Any], name: str, *signers: str
    ) -> tuple[int, str, str]:
        """Write `document` to NAME and run `channel update`, signed by `signers`."""
        path = self.folder / name
        path.write_text(json.dumps(document))
        signs = [part for mspid in signers for part in ("--sign", self.admin(mspid))]
        return await medledger(
            "channel", "update", "-c", CHANNEL, "--orderer", self.address,
            "--config", path, *signs,
        )  # fmt: skip


def batch_size(document: dict[str, Any]) -> dict[str, Any]:
    """The decoded BatchSize of a config JSON, as configtxlator users reach it."""
    orderer = document["channel_group"]["groups"][keys.ORDERER]
    value: dict[str, Any] = orderer["values"][keys.BATCH_SIZE]["value"]
    return value


def with_batch_size(document: dict[str, Any], count: int) -> dict[str, Any]:
    edited: dict[str, Any] = json.loads(json.dumps(document))
    batch_size(edited)["max_message_count"] = count
    return edited


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("medledger: error: "), err
    return lines[0]


def current(node: OrdererNode) -> ChannelConfig:
    return channel_config(node)


async def test_batch_size_changes_through_the_cli(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        operator = Operator(consortium, addresses["grpc"], tmp_path)
        before = await operator.fetch("current.json")
        status, out, err = await operator.update(
            with_batch_size(before, 2), "updated.json", ORDERING
        )
        after = await operator.fetch("after.json")
        config = current(node)

    assert batch_size(before)["max_message_count"] == GENESIS_COUNT
    assert (status, out, err) == (0, "config block 1\n", "")
    assert config.sequence == 1
    assert config.batch_size.max_message_count == 2
    assert batch_size(after)["max_message_count"] == 2
    assert after["sequence"] == "1"


async def test_too_few_admins_are_refused_with_the_policy_message(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    """BatchSize needs the commission's admin; dropping a hospital, two of three."""
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        operator = Operator(consortium, addresses["grpc"], tmp_path)
        document = await operator.fetch("current.json")
        hospital_only = await operator.update(
            with_batch_size(document, 2), "batch.json", HOSPITALS[0]
        )
        del document["channel_group"]["groups"][keys.APPLICATION]["groups"][
            HOSPITALS[2]
        ]
        one_hospital = await operator.update(document, "drop.json", HOSPITALS[0])
        height_after_refusals = stored_height(node)
        two_hospitals = await operator.update(
            document, "drop.json", HOSPITALS[0], HOSPITALS[1]
        )
        config = current(node)

    for status, out, err in (hospital_only, one_hospital):
        assert (status, out) == (1, "")
        line = one_error_line(err)
        assert "refused the update: FORBIDDEN" in line
        assert "mod_policy" in line
    assert "/Channel/Orderer/BatchSize" in hospital_only[2]
    assert "/Channel/Application" in one_hospital[2]
    assert height_after_refusals == 1
    assert two_hospitals == (0, "config block 1\n", "")
    assert set(config.application_orgs) == set(HOSPITALS[:2])


async def test_an_edit_of_an_old_config_is_refused_after_another_update(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        operator = Operator(consortium, addresses["grpc"], tmp_path)
        old = await operator.fetch("current.json")
        first = await operator.update(with_batch_size(old, 2), "first.json", ORDERING)
        stale = await operator.update(with_batch_size(old, 3), "stale.json", ORDERING)
        unchanged = await operator.update(old, "unchanged.json", ORDERING)
        config = current(node)

    assert first == (0, "config block 1\n", "")
    assert stale[0] == 1
    line = one_error_line(stale[2])
    assert "refused the update: BAD_REQUEST" in line
    assert "/Channel/Orderer/BatchSize" in line
    assert "version" in line
    assert unchanged[0] == 1
    assert "do not differ" in one_error_line(unchanged[2])
    assert config.sequence == 1
    assert config.batch_size.max_message_count == 2


async def test_unreadable_json_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "updated.json"
    path.write_text("{not json")

    status, out, err = await medledger(
        "channel", "update", "-c", CHANNEL, "--orderer", "127.0.0.1:1",
        "--config", path, "--sign", "nowhere:NoMSP",
    )  # fmt: skip

    assert (status, out) == (1, "")
    assert "not JSON" in one_error_line(err)


async def test_the_config_is_fetched_over_tls(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    async with running_orderer(consortium, tmp_path, tls=True) as (_, addresses):
        status, out, err = await medledger(
            "channel", "config", "-c", CHANNEL, "--orderer", addresses["grpc"],
            "--orderer-tls-ca", consortium.orderer.tls_ca,
            "--identity", consortium.user(HOSPITALS[0], "dr-lee").msp_dir,
            "--mspid", HOSPITALS[0],
        )  # fmt: skip

    assert (status, err) == (0, "")
    assert batch_size(json.loads(out))["max_message_count"] == GENESIS_COUNT
