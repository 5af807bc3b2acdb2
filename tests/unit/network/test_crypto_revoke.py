"""Unit tests for network.crypto_revoke and common.crypto.issue.revoke_in_crl.

The example consortium is generated once per module; each test revokes in its own
copy of hospital A's folder and reads the CRLs back, with our parser and with the
MSP that a channel config would build from the organisation's folder.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.crypto import RevocationList
from common.crypto.issue import crl_number
from common.errors import ConfigError, RevokedCertificate
from common.msp import Msp, load_signing_identity
from network.cli import main
from network.crypto_revoke import (
    read_certificate,
    revoke_certificate,
    user_certificate,
)
from network.cryptogen import generate_crypto
from network.spec import load_spec
from tests.unit.example_channel import EXAMPLE

MSPID = "HospitalAMSP"
DOMAIN = "hospital-a.example.com"
CRL_NAME = f"ca.{DOMAIN}-crl.pem"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crypto")
    generate_crypto(load_spec(EXAMPLE), out)
    return out / "organizations"


@pytest.fixture
def org_dir(generated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / DOMAIN
    shutil.copytree(generated / DOMAIN, copy)
    return copy


def crl_of(folder: Path) -> RevocationList:
    return RevocationList.from_pem((folder / "msp" / "crls" / CRL_NAME).read_bytes())


def serial_of(org_dir: Path, user: str) -> int:
    return read_certificate(user_certificate(org_dir, user)).serial_number


def test_revoking_a_user_adds_its_serial_and_bumps_the_crl_number(
    org_dir: Path,
) -> None:
    first = revoke_certificate(
        org_dir,
        read_certificate(user_certificate(org_dir, "dr-lee")),
        reason="keycompromise",
        now=NOW,
    )
    second = revoke_certificate(
        org_dir, read_certificate(user_certificate(org_dir, "dr-okafor")), now=NOW
    )

    crl = crl_of(org_dir)
    assert (first.crl_number, second.crl_number, crl_number(crl)) == (2, 3, 3)
    assert crl.revoked_serials == {
        serial_of(org_dir, "dr-lee"),
        serial_of(org_dir, "dr-okafor"),
    }
    # The earlier entry keeps its reason extension; the new one has none.
    reasons = {entry.serial_number: entry.extensions for entry in crl.native}
    assert len(reasons[first.serial]) == 1
    assert len(reasons[second.serial]) == 0
    ca = read_certificate(org_dir / "ca" / f"ca.{DOMAIN}-cert.pem")
    assert crl.is_signed_by(ca)


def test_the_crl_goes_to_the_org_msp_and_the_nodes_local_msps(org_dir: Path) -> None:
    outcome = revoke_certificate(
        org_dir, read_certificate(user_certificate(org_dir, "dr-lee")), now=NOW
    )

    peer_crl = org_dir / "peers" / f"peer0.{DOMAIN}" / "msp" / "crls" / CRL_NAME
    assert outcome.written == (org_dir / "msp" / "crls" / CRL_NAME, peer_crl)
    assert peer_crl.read_bytes() == (org_dir / "msp" / "crls" / CRL_NAME).read_bytes()
    assert not (org_dir / "users" / f"dr-lee@{DOMAIN}" / "msp" / "crls").exists()


def test_the_org_msp_refuses_the_revoked_identity_only(org_dir: Path) -> None:
    revoke_certificate(
        org_dir, read_certificate(user_certificate(org_dir, "dr-lee")), now=NOW
    )
    msp = Msp.from_folder(org_dir / "msp", mspid=MSPID)
    users = org_dir / "users"
    leaver = load_signing_identity(users / f"dr-lee@{DOMAIN}" / "msp", mspid=MSPID)
    stayer = load_signing_identity(users / f"dr-okafor@{DOMAIN}" / "msp", mspid=MSPID)

    with pytest.raises(RevokedCertificate, match="revoked"):
        msp.validate(msp.deserialize_identity(leaver.serialized))
    msp.validate(msp.deserialize_identity(stayer.serialized))


def test_revoking_again_changes_nothing(org_dir: Path) -> None:
    cert = read_certificate(user_certificate(org_dir, "dr-lee"))
    revoke_certificate(org_dir, cert, now=NOW)
    before = (org_dir / "msp" / "crls" / CRL_NAME).read_bytes()

    again = revoke_certificate(org_dir, cert, now=NOW)

    assert again.already_revoked
    assert again.written == ()
    assert again.crl_number == 2
    assert (org_dir / "msp" / "crls" / CRL_NAME).read_bytes() == before


def test_a_certificate_of_another_ca_is_refused(org_dir: Path, generated: Path) -> None:
    foreign = generated / "hospital-b.example.com" / "users"
    cert = read_certificate(
        next((foreign / "Admin@hospital-b.example.com/msp/signcerts").glob("*.pem"))
    )
    with pytest.raises(ConfigError, match="was not issued by"):
        revoke_certificate(org_dir, cert, now=NOW)


def test_an_unknown_user_is_refused_naming_the_known_ones(org_dir: Path) -> None:
    with pytest.raises(ConfigError, match=f"no user 'dr-who@{DOMAIN}'.*dr-lee@"):
        user_certificate(org_dir, "dr-who")


def test_a_folder_without_a_ca_is_refused(tmp_path: Path, org_dir: Path) -> None:
    cert = read_certificate(user_certificate(org_dir, "dr-lee"))
    with pytest.raises(ConfigError, match="ca/priv_sk"):
        revoke_certificate(tmp_path, cert, now=NOW)


def test_the_command_reports_and_exits_zero_when_already_revoked(
    org_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["crypto", "revoke", "--org-dir", str(org_dir), "--user", "dr-lee"]
    first = main([*argv, "--reason", "superseded"])
    first_out = capsys.readouterr().out
    second = main(argv)
    second_out = capsys.readouterr().out
    unknown = main(["crypto", "revoke", "--org-dir", str(org_dir), "--user", "x"])
    unknown_err = capsys.readouterr().err

    assert first == second == 0
    assert first_out.startswith(f"revoked CN=dr-lee@{DOMAIN},")
    assert "CRL number 2" in first_out
    assert "already revoked (CRL number 2); unchanged" in second_out
    assert unknown == 1
    assert unknown_err.startswith("medledger: error: "), unknown_err
