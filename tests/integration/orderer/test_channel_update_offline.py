"""Config updates signed on separate machines: the update file passed from admin to
admin, as Fabric's ``peer channel signconfigtx -f`` and ``peer channel update -f``.

Method: the solo orderer of `test_config_update` (three hospitals, the commission
ordering) runs in the test's event loop; the channel's current config is written as
JSON in process and edited to drop hospital C, which takes a majority of the
hospitals' admins. Every step an operator takes runs as a `python -m network.cli`
process: `channel update --output` computes the file, `channel signconfigtx` adds one
admin's signature per call, `channel update -f` submits it; `channel add-org
--update-output` and `channel update-org --update-output` write files the same way,
unsigned when read as a plain member's --identity. Outcomes are read from the
commands' output and exit status and from the orderer's current config.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common.channelconfig import keys
from network.channel_org_cli import group_to_json, new_organization_group
from network.channel_update_cli import config_to_json
from network.crypto_revoke import read_certificate, revoke_certificate, user_certificate
from network.orderer_material import OrdererMaterial
from orderer.node import OrdererNode
from protos.msp import msp_config_pb2
from tests.integration.orderer.test_channel_update_cli import (
    consortium,
    medledger,
    one_error_line,
)
from tests.integration.orderer.test_config_update import (
    CHANNEL,
    HOSPITALS,
    channel_config,
    stored_height,
)
from tests.support.orderer import running_orderer

__all__ = ["consortium"]

HOSPITAL_A, HOSPITAL_B, HOSPITAL_C = HOSPITALS


class Admins:
    """The commands of the offline flow, with the test's material and orderer."""

    def __init__(self, material: OrdererMaterial, address: str, folder: Path) -> None:
        self.material = material
        self.address = address
        self.folder = folder

    def identity(self, mspid: str, user: str = "Admin") -> list[str | Path]:
        msp_dir = self.material.user(mspid, user).msp_dir
        return ["--identity", msp_dir, "--mspid", mspid]

    def drop_c(self, node: OrdererNode) -> Path:
        """The current config without hospital C, as an edited JSON file."""
        config = channel_config(node).config
        del config.channel_group.groups[keys.APPLICATION].groups[HOSPITAL_C]
        path = self.folder / "drop-c.json"
        path.write_text(config_to_json(config))
        return path

    async def compute(self, edited: Path, name: str, *extra: str | Path) -> Path:
        """`channel update --output NAME`; the file it wrote."""
        path = self.folder / name
        status, out, err = await medledger(
            "channel", "update", "-c", CHANNEL, "--orderer", self.address,
            "--config", edited, "--output", path, *extra,
        )  # fmt: skip
        assert (status, err) == (0, ""), err
        assert out.startswith(f"wrote the update file {path}\n")
        assert (
            "  rewrites group /Channel/Application (version 1)\n"
            f"  removes group /Channel/Application/{HOSPITAL_C}\n"
        ) in out
        return path

    async def sign(self, path: Path, mspid: str) -> tuple[int, str, str]:
        return await medledger(
            "channel", "signconfigtx", "-f", path, *self.identity(mspid)
        )

    async def submit(
        self, path: Path, mspid: str, user: str = "Admin", channel: str = CHANNEL
    ) -> tuple[int, str, str]:
        return await medledger(
            "channel", "update", "-c", channel, "--orderer", self.address,
            "-f", path, *self.identity(mspid, user),
        )  # fmt: skip


async def test_two_admins_sign_the_file_in_turn_and_it_is_submitted(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    """Then C is added back the same way: `add-org --update-output`, unsigned (the
    config read as A's dr-lee), signed by A, then by B who submits."""
    c_group = tmp_path / "c-group.json"
    c_msp = consortium.crypto.organization(HOSPITAL_C).msp_dir
    c_group.write_text(group_to_json(new_organization_group(HOSPITAL_C, c_msp)))
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        admins = Admins(consortium, addresses["grpc"], tmp_path)
        update = await admins.compute(
            admins.drop_c(node), "update.pb", *admins.identity(HOSPITAL_A, "dr-lee")
        )
        by_b = await admins.sign(update, HOSPITAL_B)
        by_a = await admins.sign(update, HOSPITAL_A)
        submitted = await admins.submit(update, HOSPITAL_A)
        config = channel_config(node)
        add_c = tmp_path / "add-c.pb"
        written = await medledger(
            "channel", "add-org", "-c", CHANNEL, "--orderer", admins.address,
            "--org-group", c_group, "--update-output", add_c,
            *admins.identity(HOSPITAL_A, "dr-lee"),
        )  # fmt: skip
        height_after_writing = stored_height(node)
        by_a_again = await admins.sign(add_c, HOSPITAL_A)
        added = await admins.submit(add_c, HOSPITAL_B)
        readded = channel_config(node)

    assert by_b[0] == 0, by_b[2]
    assert by_b[1].startswith(f"channel {CHANNEL}: signed by no one yet\n")
    assert f"signed as {HOSPITAL_B} (Admin@" in by_b[1]
    assert by_a[0] == 0, by_a[2]
    assert by_a[1].startswith(f"channel {CHANNEL}: signed by {HOSPITAL_B} (Admin@")
    assert submitted == (0, "config block 1\n", "")
    assert config.sequence == 1
    assert set(config.application_orgs) == {HOSPITAL_A, HOSPITAL_B}
    assert written[0] == 0, written[2]
    assert written[1].splitlines()[1:] == [
        f"channel {CHANNEL}: signed by no one yet",
        "  rewrites group /Channel/Application (version 2)",
        f"  adds group /Channel/Application/{HOSPITAL_C}",
    ]
    assert height_after_writing == 2
    assert by_a_again[0] == 0, by_a_again[2]
    assert added == (0, "config block 2\n", "")
    assert set(readded.application_orgs) == set(HOSPITALS)


async def test_too_few_signatures_garbage_and_mistakes_are_one_line_errors(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\x0a\x05hello\x12\x80")
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        admins = Admins(consortium, addresses["grpc"], tmp_path)
        sign_b = f"{consortium.user(HOSPITAL_B, 'Admin').msp_dir}:{HOSPITAL_B}"
        update = await admins.compute(admins.drop_c(node), "b.pb", "--sign", sign_b)
        twice = await admins.sign(update, HOSPITAL_B)
        too_few = await admins.submit(update, HOSPITAL_A, "dr-lee")
        wrong_channel = await admins.submit(update, HOSPITAL_B, channel="other")
        garbage_signed = await admins.sign(garbage, HOSPITAL_A)
        garbage_submitted = await admins.submit(garbage, HOSPITAL_A)
        height = stored_height(node)
        config = channel_config(node)

    for status, out, _ in (
        twice,
        too_few,
        wrong_channel,
        garbage_signed,
        garbage_submitted,
    ):
        assert (status, out) == (1, "")
    assert "has signed this update already" in one_error_line(twice[2])
    refusal = one_error_line(too_few[2])
    assert "refused the update: FORBIDDEN" in refusal
    assert "mod_policy" in refusal
    assert "/Channel/Application" in refusal
    assert "for channel 'records', not 'other'" in one_error_line(wrong_channel[2])
    assert "not a config update file" in one_error_line(garbage_signed[2])
    assert "not a config update file" in one_error_line(garbage_submitted[2])
    assert (height, config.sequence) == (1, 0)


async def test_update_org_writes_an_unsigned_file_an_admin_signs(
    consortium: OrdererMaterial, tmp_path: Path
) -> None:
    """B's CA revokes dr-lee (in a copy of B's folder); `update-org --update-output`
    read as dr-lee before the update writes the file unsigned; B's admin signs it and
    submits it; the channel's MSP of B then holds the CRL."""
    b_copy = tmp_path / "hospital-b"
    shutil.copytree(consortium.crypto.organization(HOSPITAL_B).root, b_copy)
    revoke_certificate(b_copy, read_certificate(user_certificate(b_copy, "dr-lee")))
    path = tmp_path / "renew-b.pb"
    async with running_orderer(consortium, tmp_path) as (node, addresses):
        admins = Admins(consortium, addresses["grpc"], tmp_path)
        written = await medledger(
            "channel", "update-org", "-c", CHANNEL, "--orderer", admins.address,
            "--mspid", HOSPITAL_B, "--msp", b_copy / "msp", "--update-output", path,
            "--identity", consortium.user(HOSPITAL_B, "dr-lee").msp_dir,
        )  # fmt: skip
        height_after_writing = stored_height(node)
        signed = await admins.sign(path, HOSPITAL_B)
        submitted = await admins.submit(path, HOSPITAL_B)
        config = channel_config(node)

    assert written == (
        0,
        f"wrote the update file {path}\n"
        f"channel {CHANNEL}: signed by no one yet\n"
        f"  sets value /Channel/Application/{HOSPITAL_B}/MSP (version 1)\n",
        "",
    ), written
    assert height_after_writing == 1
    assert signed[0] == 0, signed[2]
    assert submitted == (0, "config block 1\n", "")
    b_msp = config.config.channel_group.groups[keys.APPLICATION].groups[HOSPITAL_B]
    assert b_msp.values[keys.MSP].version == 1
    msp = msp_config_pb2.MSPConfig.FromString(b_msp.values[keys.MSP].value)
    assert msp_config_pb2.FabricMSPConfig.FromString(msp.config).revocation_list
