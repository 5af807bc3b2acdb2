"""Config update files, as admins pass them around: written unsigned or signed,
checked, described, signed once per identity, and `channel signconfigtx` on them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, keys
from common.configtx import compute_update
from common.errors import ConfigUpdateError
from common.msp import SigningIdentity, load_signing_identity
from network.channel_update_cli import config_to_json
from network.cli import main
from network.config_update import (
    add_signature,
    config_update_envelope,
    read_update_file,
    signer_names,
    update_file_envelope,
    write_set_changes,
)
from network.cryptogen import CryptoLayout
from protos.common import common_pb2, configtx_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from tests.unit import example_channel
from tests.unit.example_channel import CHANNEL, HOSPITALS

spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view


def admin(crypto: CryptoLayout, mspid: str) -> SigningIdentity:
    msp_dir = crypto.organization(mspid).user("Admin").msp_dir
    return load_signing_identity(msp_dir, mspid=mspid)


def admin_options(crypto: CryptoLayout, mspid: str) -> list[str]:
    msp_dir = crypto.organization(mspid).user("Admin").msp_dir
    return ["--identity", str(msp_dir), "--mspid", mspid]


def with_batch_size(config: configtx_pb2.Config, count: int) -> configtx_pb2.Config:
    edited = configtx_pb2.Config()
    edited.CopyFrom(config)
    value = edited.channel_group.groups[keys.ORDERER].values[keys.BATCH_SIZE]
    batch = orderer_pb2.BatchSize.FromString(value.value)
    batch.max_message_count = count
    value.value = batch.SerializeToString()
    return edited


def without_hospital(config: configtx_pb2.Config, mspid: str) -> configtx_pb2.Config:
    edited = configtx_pb2.Config()
    edited.CopyFrom(config)
    del edited.channel_group.groups[keys.APPLICATION].groups[mspid]
    return edited


@pytest.fixture
def update(view: ChannelConfig) -> configtx_pb2.ConfigUpdate:
    edited = with_batch_size(view.config, 7)
    return compute_update(CHANNEL, view.config, edited)


@pytest.fixture
def unsigned_file(update: configtx_pb2.ConfigUpdate, tmp_path: Path) -> Path:
    envelope = update_file_envelope(CHANNEL, config_update_envelope(update))
    path = tmp_path / "update.pb"
    path.write_bytes(envelope.SerializeToString())
    return path


def test_an_unsigned_file_is_fabrics_wrapped_config_update(
    update: configtx_pb2.ConfigUpdate, unsigned_file: Path
) -> None:
    """The Envelope configtxlator users wrap: a channel header, no signatures."""
    envelope = common_pb2.Envelope.FromString(unsigned_file.read_bytes())
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    inner = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)

    assert (header.type, header.channel_id) == (common_pb2.CONFIG_UPDATE, CHANNEL)
    assert envelope.signature == b""
    assert payload.header.signature_header == b""
    assert list(inner.signatures) == []
    assert inner.config_update == update.SerializeToString(deterministic=True)


def test_a_file_reads_back(
    update: configtx_pb2.ConfigUpdate, unsigned_file: Path
) -> None:
    read = read_update_file(unsigned_file.read_bytes(), source="update.pb")

    assert read.channel_id == CHANNEL
    assert read.update == update
    assert list(read.envelope.signatures) == []


def test_signatures_accumulate_once_per_identity(
    crypto: CryptoLayout, update: configtx_pb2.ConfigUpdate
) -> None:
    envelope = config_update_envelope(update)
    hospital_b, hospital_a = admin(crypto, HOSPITALS[1]), admin(crypto, HOSPITALS[0])

    signed = add_signature(add_signature(envelope, hospital_b), hospital_a)

    assert [name.split()[0] for name in signer_names(signed)] == [
        HOSPITALS[1],
        HOSPITALS[0],
    ]
    assert signer_names(signed)[0] == f"{HOSPITALS[1]} (Admin@hospital-b.example.com)"
    with pytest.raises(ConfigUpdateError, match="has signed this update already"):
        add_signature(signed, hospital_b)


def test_a_signed_file_is_signed_by_the_last_signer(
    crypto: CryptoLayout, update: configtx_pb2.ConfigUpdate
) -> None:
    signer = admin(crypto, HOSPITALS[1])
    envelope = update_file_envelope(
        CHANNEL, config_update_envelope(update, signers=[signer]), signer
    )

    payload = common_pb2.Payload.FromString(envelope.payload)
    creator = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    assert creator.creator == signer.serialized
    assert envelope.signature


def test_the_changes_are_the_write_set_elements_that_differ(
    view: ChannelConfig,
) -> None:
    batch = compute_update(CHANNEL, view.config, with_batch_size(view.config, 7))
    dropped = compute_update(
        CHANNEL, view.config, without_hospital(view.config, HOSPITALS[2])
    )
    readded = compute_update(
        CHANNEL, without_hospital(view.config, HOSPITALS[2]), view.config
    )

    assert write_set_changes(batch) == [
        "sets value /Channel/Orderer/BatchSize (version 1)"
    ]
    assert write_set_changes(dropped) == [
        "rewrites group /Channel/Application (version 1)"
    ]
    assert write_set_changes(readded) == [
        "rewrites group /Channel/Application (version 1)",
        f"adds group /Channel/Application/{HOSPITALS[2]}",
    ]


def test_a_removed_member_is_named_given_the_current_config(
    view: ChannelConfig,
) -> None:
    """The computed sets leave a removed group out, as configtxlator's do: the file
    alone says only that its parent is rewritten; the current config names it."""
    gone = HOSPITALS[2]
    dropped = compute_update(CHANNEL, view.config, without_hospital(view.config, gone))
    edited = without_hospital(view.config, gone)
    application = edited.channel_group.groups[keys.APPLICATION]
    del application.groups[HOSPITALS[1]].policies[keys.ADMINS]
    del application.groups[HOSPITALS[1]].values[keys.MSP]
    trimmed = compute_update(CHANNEL, view.config, edited)

    assert write_set_changes(dropped, current=view.config) == [
        "rewrites group /Channel/Application (version 1)",
        f"removes group /Channel/Application/{gone}",
    ]
    assert write_set_changes(trimmed, current=view.config) == [
        "rewrites group /Channel/Application (version 1)",
        f"removes group /Channel/Application/{gone}",
        f"rewrites group /Channel/Application/{HOSPITALS[1]} (version 1)",
        f"removes policy /Channel/Application/{HOSPITALS[1]}/Admins",
        f"removes value /Channel/Application/{HOSPITALS[1]}/MSP",
    ]


def test_a_removed_member_the_read_set_holds_is_named_from_the_file(
    view: ChannelConfig,
) -> None:
    """An update written by hand may pin the member it removes in its read set."""
    gone = HOSPITALS[2]
    update = compute_update(CHANNEL, view.config, without_hospital(view.config, gone))
    pinned = configtx_pb2.ConfigGroup(version=0)
    update.read_set.groups[keys.APPLICATION].groups[gone].CopyFrom(pinned)

    assert write_set_changes(update) == [
        "rewrites group /Channel/Application (version 1)",
        f"removes group /Channel/Application/{gone}",
    ]


def _envelope(header_type: int, channel: str, data: bytes) -> bytes:
    header = common_pb2.ChannelHeader(type=header_type, channel_id=channel)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()), data=data
    )
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe garbage", "not a config update file"),
        (b"", "no envelope with a channel header"),
        (_envelope(common_pb2.CONFIG, CHANNEL, b""), "not CONFIG_UPDATE"),
        (_envelope(common_pb2.CONFIG_UPDATE, "", b""), "names no channel"),
        (_envelope(common_pb2.CONFIG_UPDATE, CHANNEL, b""), "carries no config"),
    ],
)
def test_what_is_no_update_file_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ConfigUpdateError, match=message):
        read_update_file(data, source="update.pb")


def test_the_envelope_and_the_update_name_one_channel(
    update: configtx_pb2.ConfigUpdate,
) -> None:
    inner = config_update_envelope(update).SerializeToString()
    data = _envelope(common_pb2.CONFIG_UPDATE, "other", inner)

    with pytest.raises(ConfigUpdateError, match="for channel 'other' but"):
        read_update_file(data, source="update.pb")


# The command


def signconfigtx(
    path: Path, crypto: CryptoLayout, mspid: str, *extra: str
) -> list[str]:
    return [
        "channel",
        "signconfigtx",
        "-f",
        str(path),
        *admin_options(crypto, mspid),
        *extra,
    ]


def test_signconfigtx_shows_the_update_and_signs_it_in_place(
    crypto: CryptoLayout, unsigned_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = main(signconfigtx(unsigned_file, crypto, HOSPITALS[1]))
    first_out = capsys.readouterr().out
    second = main(signconfigtx(unsigned_file, crypto, HOSPITALS[0], "-c", CHANNEL))
    second_out = capsys.readouterr().out

    read = read_update_file(unsigned_file.read_bytes(), source="update.pb")
    assert (first, second) == (0, 0)
    assert first_out.splitlines() == [
        f"channel {CHANNEL}: signed by no one yet",
        "  sets value /Channel/Orderer/BatchSize (version 1)",
        f"signed as {HOSPITALS[1]} (Admin@hospital-b.example.com); "
        f"wrote {unsigned_file}",
    ]
    assert second_out.splitlines()[0] == (
        f"channel {CHANNEL}: signed by {HOSPITALS[1]} (Admin@hospital-b.example.com)"
    )
    assert [name.split()[0] for name in signer_names(read.envelope)] == [
        HOSPITALS[1],
        HOSPITALS[0],
    ]


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("medledger: error: ")
    return lines[0]


def test_signconfigtx_refuses_a_second_signature_and_garbage(
    crypto: CryptoLayout,
    unsigned_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\x0a\x03abc\x12\xff")
    assert main(signconfigtx(unsigned_file, crypto, HOSPITALS[1])) == 0
    signed_once = unsigned_file.read_bytes()
    capsys.readouterr()

    assert main(signconfigtx(unsigned_file, crypto, HOSPITALS[1])) == 1
    assert "has signed this update already" in _one_error(capsys)
    assert unsigned_file.read_bytes() == signed_once
    assert main(signconfigtx(garbage, crypto, HOSPITALS[1])) == 1
    assert "not a config update file" in _one_error(capsys)
    assert main(signconfigtx(tmp_path / "none.pb", crypto, HOSPITALS[1])) == 1
    assert "No such file" in _one_error(capsys)
    assert main(signconfigtx(unsigned_file, crypto, HOSPITALS[0], "-c", "x")) == 1
    assert f"updates channel {CHANNEL!r}, not 'x'" in _one_error(capsys)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-f", "u.pb"], "needs --identity and --mspid"),
        (["-f", "u.pb", "--sign", "x:HospitalAMSP"], "--sign and --output go with"),
        (["-f", "u.pb", "--mspid", "HospitalAMSP"], "go together"),
        (["--config", "c.json", "--output", "u.pb"], "needs --identity and --mspid"),
    ],
)
def test_update_option_mistakes_are_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    view: ChannelConfig,
    options: list[str],
    message: str,
) -> None:
    """Refused before the orderer (nothing listens on port 9) is dialled."""
    monkeypatch.chdir(tmp_path)
    Path("c.json").write_text(config_to_json(with_batch_size(view.config, 7)))
    command = ["channel", "update", "-c", CHANNEL, "--orderer", "127.0.0.1:9"]

    assert main([*command, *options]) == 1
    assert message in _one_error(capsys)
