"""The pure parts of `channel update-org`: the MSP value from a folder, put in a config.

Checked against the hospital example: the value built from an unchanged folder is the
genesis block's; after `crypto revoke` in a copy of hospital A's folder, only A's MSP
value changes (policies, mod_policy and version kept), and the update computed from it
touches that value alone, at version + 1. An ordering organisation's group under
Orderer is renewed the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, keys
from common.configtx.update import compute_update
from common.errors import ConfigError
from network.channel_msp_cli import msp_value, replace_organization_msp
from network.cli import main
from network.crypto_revoke import read_certificate, revoke_certificate, user_certificate
from network.cryptogen import CryptoLayout
from protos.common import configtx_pb2
from protos.msp import msp_config_pb2
from tests.unit import example_channel

spec = example_channel.spec
crypto = example_channel.crypto
view = example_channel.view

HOSPITAL_A = "HospitalAMSP"
COMMISSION = example_channel.COMMISSION


def revoked_copy(crypto: CryptoLayout, mspid: str, user: str, folder: Path) -> Path:
    """A copy of the organisation's folder whose CA revoked `user`; its MSP folder."""
    organization = crypto.organization(mspid)
    copy = folder / organization.domain
    shutil.copytree(organization.root, copy)
    cert = read_certificate(user_certificate(copy, user))
    revoke_certificate(copy, cert)
    return copy / "msp"


def org_group(
    config: configtx_pb2.Config, section: str, mspid: str
) -> configtx_pb2.ConfigGroup:
    group: configtx_pb2.ConfigGroup = config.channel_group.groups[section].groups[mspid]
    return group


def crls(value: configtx_pb2.ConfigValue) -> list[bytes]:
    msp = msp_config_pb2.MSPConfig.FromString(value.value)
    return list(msp_config_pb2.FabricMSPConfig.FromString(msp.config).revocation_list)


def test_the_value_of_an_unchanged_folder_is_the_genesis_one(
    crypto: CryptoLayout, view: ChannelConfig
) -> None:
    value = msp_value(crypto.organization(HOSPITAL_A).msp_dir, HOSPITAL_A)

    genesis = org_group(view.config, keys.APPLICATION, HOSPITAL_A).values[keys.MSP]
    assert value == genesis
    with pytest.raises(ConfigError, match="already matches the folder"):
        replace_organization_msp(view.config, HOSPITAL_A, value)


def test_a_new_crl_changes_only_the_org_msp_value(
    crypto: CryptoLayout, view: ChannelConfig, tmp_path: Path
) -> None:
    msp_dir = revoked_copy(crypto, HOSPITAL_A, "dr-lee", tmp_path)
    original = view.config

    updated, changed = replace_organization_msp(
        original, HOSPITAL_A, msp_value(msp_dir, HOSPITAL_A)
    )

    assert changed == (f"Application/{HOSPITAL_A}",)
    before = org_group(original, keys.APPLICATION, HOSPITAL_A)
    after = org_group(updated, keys.APPLICATION, HOSPITAL_A)
    assert after.policies == before.policies
    assert set(after.values) == set(before.values)
    assert after.values[keys.MSP].mod_policy == before.values[keys.MSP].mod_policy
    assert after.values[keys.MSP].version == before.values[keys.MSP].version
    assert len(crls(after.values[keys.MSP])) == len(crls(before.values[keys.MSP]))
    assert crls(after.values[keys.MSP]) != crls(before.values[keys.MSP])
    update = compute_update("medical-records", original, updated)
    written = update.write_set.groups[keys.APPLICATION].groups[HOSPITAL_A]
    assert set(written.values) == {keys.MSP}
    assert written.values[keys.MSP].version == before.values[keys.MSP].version + 1
    assert set(update.write_set.groups[keys.APPLICATION].groups) == {HOSPITAL_A}


def test_an_ordering_org_is_renewed_under_orderer(
    crypto: CryptoLayout, view: ChannelConfig, tmp_path: Path
) -> None:
    msp_dir = revoked_copy(crypto, COMMISSION, "inspector-ng", tmp_path)

    updated, changed = replace_organization_msp(
        view.config, COMMISSION, msp_value(msp_dir, COMMISSION)
    )

    assert changed == (f"Orderer/{COMMISSION}",)
    assert len(crls(org_group(updated, keys.ORDERER, COMMISSION).values[keys.MSP])) == 1


def test_an_org_not_in_the_channel_is_refused(
    crypto: CryptoLayout, view: ChannelConfig
) -> None:
    value = msp_value(crypto.organization(HOSPITAL_A).msp_dir, HOSPITAL_A)
    with pytest.raises(ConfigError, match="no organisation HospitalZMSP"):
        replace_organization_msp(view.config, "HospitalZMSP", value)


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        msp_value(tmp_path / "nowhere", HOSPITAL_A)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "channel update-org needs --sign admins (the first submits) and no "),
        (["--update-output", "u.pb"], "--update-output needs --identity and --mspid"),
        (["--sign", "ADMIN", "--identity", "ADMIN_DIR"], "and no --identity"),
    ],
)
def test_update_org_signer_and_reader_mistakes_are_one_line_errors(
    crypto: CryptoLayout,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    """Submitting needs --sign admins; writing a file needs a reader (--identity, a
    member of --mspid, or a --sign). Refused before the orderer (nothing listens on
    port 9) is dialled."""
    organization = crypto.organization(HOSPITAL_A)
    admin = organization.user("Admin").msp_dir
    replaced = {"ADMIN": f"{admin}:{HOSPITAL_A}", "ADMIN_DIR": str(admin)}
    status = main(
        [
            *("channel", "update-org", "-c", "ch", "--orderer", "127.0.0.1:9"),
            *("--mspid", HOSPITAL_A, "--msp", str(organization.msp_dir)),
            *(replaced.get(word, word) for word in argv),
        ]
    )

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.startswith("medledger: error: ")
    assert err.count("\n") == 1
    assert message in err
