"""`channel org-group` and the pure parts of `channel add-org`.

Checked against the hospital example: hospital C's group built from C's MSP folder is
the group the genesis block of the full example gives C; its JSON reads back to the
same group and, pasted under Application in `channel config`'s JSON of the channel
without C, gives the config `add_organization` makes. Bad options and MSP folders
without NodeOUs are one-line errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, keys
from common.errors import ConfigError
from network.channel_org_cli import (
    add_organization,
    group_from_json,
    group_mspid,
    group_to_json,
    new_organization_group,
    parse_anchor_peer,
    parse_policy_option,
)
from network.channel_update_cli import config_from_json, config_to_json
from network.cli import build_parser, main
from network.cryptogen import CryptoLayout
from protos.common import configtx_pb2
from protos.peer import configuration_pb2 as peer_pb2
from tests.unit import example_channel

spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view

JOINING = "HospitalCMSP"


def c_msp(crypto: CryptoLayout) -> Path:
    return crypto.organization(JOINING).msp_dir


def genesis_group(view: ChannelConfig) -> configtx_pb2.ConfigGroup:
    return view.config.channel_group.groups[keys.APPLICATION].groups[JOINING]


def genesis_anchors(view: ChannelConfig) -> tuple[tuple[str, int], ...]:
    """C's anchor peers in the example (peer0, by default)."""
    value = genesis_group(view).values[keys.ANCHOR_PEERS].value
    anchors = peer_pb2.AnchorPeers.FromString(value).anchor_peers
    return tuple((anchor.host, anchor.port) for anchor in anchors)


def without_c(view: ChannelConfig) -> configtx_pb2.Config:
    config = view.config
    del config.channel_group.groups[keys.APPLICATION].groups[JOINING]
    return config


def test_the_group_is_the_one_genesis_gives_the_organisation(
    crypto: CryptoLayout, view: ChannelConfig
) -> None:
    anchors = genesis_anchors(view)

    assert new_organization_group(JOINING, c_msp(crypto), anchors) == (
        genesis_group(view)
    )


def test_anchor_peers_are_an_admins_value(crypto: CryptoLayout) -> None:
    group = new_organization_group(
        JOINING, c_msp(crypto), (("peer0.c", 9051), ("peer1.c", 9151))
    )

    value = group.values[keys.ANCHOR_PEERS]
    anchors = peer_pb2.AnchorPeers.FromString(value.value).anchor_peers
    assert [(a.host, a.port) for a in anchors] == [("peer0.c", 9051), ("peer1.c", 9151)]
    assert value.mod_policy == keys.ADMINS


def test_the_json_reads_back_to_the_same_group(crypto: CryptoLayout) -> None:
    group = new_organization_group(JOINING, c_msp(crypto), (("peer0.c", 9051),))

    text = group_to_json(group)

    assert group_from_json(text, source="c.json") == group
    assert group_mspid(group, source="c.json") == JOINING
    document = json.loads(text)
    assert document["values"][keys.MSP]["value"]["config"]["name"] == JOINING


def test_pasted_into_the_channel_config_json_it_adds_the_organisation(
    crypto: CryptoLayout, view: ChannelConfig
) -> None:
    base = without_c(view)
    group = new_organization_group(JOINING, c_msp(crypto), genesis_anchors(view))
    document = json.loads(config_to_json(base))

    application = document["channel_group"]["groups"][keys.APPLICATION]
    application["groups"][JOINING] = json.loads(group_to_json(group))
    pasted = config_from_json(json.dumps(document), source="edited.json")

    assert pasted == add_organization(base, JOINING, group)
    assert add_organization(base, JOINING, group).channel_group == (
        view.config.channel_group
    )


def test_a_member_is_not_added_twice(crypto: CryptoLayout, view: ChannelConfig) -> None:
    group = new_organization_group(JOINING, c_msp(crypto))

    with pytest.raises(ConfigError, match="already a member"):
        add_organization(view.config, JOINING, group)


def test_a_policy_option_replaces_one_default(crypto: CryptoLayout) -> None:
    default = new_organization_group(JOINING, c_msp(crypto))
    changed = new_organization_group(
        JOINING, c_msp(crypto), policies={"Readers": f"OR('{JOINING}.member')"}
    )

    assert changed.policies["Readers"] != default.policies["Readers"]
    assert changed.policies["Writers"] == default.policies["Writers"]
    with pytest.raises(ConfigError, match="policy 'Readers'"):
        new_organization_group(JOINING, c_msp(crypto), policies={"Readers": "OR("})


def test_role_policies_need_node_ous(crypto: CryptoLayout, tmp_path: Path) -> None:
    folder = shutil.copytree(c_msp(crypto), tmp_path / "msp")
    (folder / "config.yaml").unlink()
    member = f"OR('{JOINING}.member')"

    with pytest.raises(ConfigError, match="Endorsement, Readers, Writers"):
        new_organization_group(JOINING, folder)
    group = new_organization_group(
        JOINING,
        folder,
        policies=dict.fromkeys(("Readers", "Writers", "Endorsement"), member),
    )
    assert group_mspid(group, source="c.json") == JOINING


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9051", ("127.0.0.1", 9051)), ("[::1]:7", ("[::1]", 7))],
)
def test_anchor_peer_options(text: str, expected: tuple[str, int]) -> None:
    assert parse_anchor_peer(text) == expected


@pytest.mark.parametrize(
    "text", ["peer0", ":7051", "peer0:", "peer0:x", "p:0", "p:70000"]
)
def test_bad_anchor_peer_options(text: str) -> None:
    with pytest.raises(ConfigError, match="--anchor-peer"):
        parse_anchor_peer(text)


def test_policy_options() -> None:
    assert parse_policy_option("Readers = OR('A.member')") == (
        "Readers",
        "OR('A.member')",
    )
    for bad in ("Readers", "=OR('A.member')", "Readers="):
        with pytest.raises(ConfigError, match="NAME=RULE"):
            parse_policy_option(bad)


def test_a_group_without_msp_has_no_mspid() -> None:
    with pytest.raises(ConfigError, match="no MSP value"):
        group_mspid(configtx_pb2.ConfigGroup(), source="c.json")


def test_org_group_prints_the_json(
    crypto: CryptoLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["channel", "org-group", "--mspid", JOINING, "--msp", str(c_msp(crypto))]
    )

    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out == group_to_json(new_organization_group(JOINING, c_msp(crypto)))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--anchor-peer", "peer0"], "--anchor-peer 'peer0': expected HOST:PORT"),
        (["--policy", "Readers"], "--policy 'Readers': expected NAME=RULE"),
    ],
)
def test_org_group_bad_options_are_one_line_errors(
    crypto: CryptoLayout,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    command = ["channel", "org-group", "--mspid", JOINING, "--msp", str(c_msp(crypto))]
    status = main([*command, *argv])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err == f"medledger: error: {message}\n"


def test_add_org_refuses_a_file_that_is_no_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is read before the orderer (nothing listens on port 9) is dialled."""
    path = tmp_path / "c.json"
    path.write_text("[]")

    status = main(
        [
            *("channel", "add-org", "--channel", "ch", "--orderer", "127.0.0.1:9"),
            *("--org-group", str(path), "--sign", f"{tmp_path}:HospitalAMSP"),
        ]
    )

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert (
        err == f"medledger: error: {path}: not a common.ConfigGroup (a JSON object)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "channel add-org needs --sign admins (the first submits) and no "),
        (["--update-output", "u.pb"], "--update-output needs --identity and --mspid"),
        (["--sign", "ADMIN", "--identity", "ADMIN_DIR", "--mspid", "A"], "and no "),
        (["--update-output", "u.pb", "--mspid", JOINING], "go together"),
    ],
)
def test_add_org_signer_and_reader_mistakes_are_one_line_errors(
    crypto: CryptoLayout,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    """Submitting needs --sign admins; writing a file needs a reader (--identity or
    a --sign). Refused before the orderer (nothing listens on port 9) is dialled."""
    monkeypatch.chdir(tmp_path)
    Path("c.json").write_text(group_to_json(genesis_group_of(crypto)))
    admin = crypto.organization("HospitalAMSP").user("Admin").msp_dir
    replaced = {
        "ADMIN": f"{admin}:HospitalAMSP",
        "ADMIN_DIR": str(admin),
        "A": "HospitalAMSP",
    }
    status = main(
        [
            *("channel", "add-org", "-c", "ch", "--orderer", "127.0.0.1:9"),
            *("--org-group", "c.json"),
            *(replaced.get(word, word) for word in argv),
        ]
    )

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.startswith("medledger: error: ")
    assert err.count("\n") == 1
    assert message in err


def test_the_update_file_options_read_alike() -> None:
    """add-org's and update-org's --update-output and update's --output share a help,
    and --sign is optional in all three (a file may be written unsigned)."""
    channel = _subcommands(build_parser())["channel"]
    commands = _subcommands(channel)
    options = {
        name: {
            flag: action
            for action in commands[name]._actions
            for flag in action.option_strings
        }
        for name in ("add-org", "update-org", "update")
    }

    add_org = options["add-org"]["--update-output"].help
    assert add_org == options["update-org"]["--update-output"].help
    assert options["update"]["--output"].help == f"with --config: {add_org}"
    assert add_org is not None
    assert "signed by the --sign admins if any" in add_org
    assert not any(options[name]["--sign"].required for name in options)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    choices: dict[str, argparse.ArgumentParser] = action.choices
    return choices


def genesis_group_of(crypto: CryptoLayout) -> configtx_pb2.ConfigGroup:
    return new_organization_group(JOINING, c_msp(crypto))
