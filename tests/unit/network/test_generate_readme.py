"""Unit tests for network.generate_readme: the READMEs `network generate` writes.

Method: `generate` runs once on a small TLS consortium (two hospitals, one orderer, an
init_required chaincode with a collection) into a folder that is then moved; every
path a README command names must be relative and must exist when read from where the
command runs (the output folder for the top README, the node's folder for a node's).
"""

from __future__ import annotations

import itertools
import shlex
import shutil
from pathlib import Path

import pytest

from network.generate import generate

ASSET = Path(__file__).parents[3] / "chaincode" / "contracts" / "asset"
PEER_A = "peer0.hospital-a.example.com"
ORDERER = "orderer0.commission.example.com"

SPEC = f"""
consortium: readme
organizations:
  - name: Hospital A
    mspid: HospitalAMSP
    domain: hospital-a.example.com
    peers: [{{name: peer0, host: 10.0.0.11, port: 7051}}]
    users: [{{name: Admin, admin: true}}]
  - name: Hospital B
    mspid: HospitalBMSP
    domain: hospital-b.example.com
    peers: [{{name: peer0, host: 10.0.0.12, port: 7051}}]
    users: [{{name: Admin, admin: true}}]
  - name: Health Commission
    mspid: HealthCommissionMSP
    domain: commission.example.com
    orderers: [{{name: orderer0, host: 10.0.0.10, port: 7050}}]
    users: [{{name: Admin, admin: true}}]
channels:
  - name: records
    members: [HospitalAMSP, HospitalBMSP]
    orderer: {{organizations: [HealthCommissionMSP]}}
chaincodes:
  - name: asset
    path: {ASSET}
    init_required: true
    collections:
      - {{name: ab, policy: "OR('HospitalAMSP.member', 'HospitalBMSP.member')"}}
"""

PATH_FLAGS = {
    "--identity",
    "--tls-ca",
    "--orderer-tls-ca",
    "--collections-config",
    "--cacert",
    "--cert",
    "--key",
    "-b",
}


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the folder generated into, where it was moved to)."""
    folder = tmp_path_factory.mktemp("readme")
    spec = folder / "consortium.yaml"
    spec.write_text(SPEC)
    generate(spec, folder / "out", progress=lambda _line: None)
    target = folder / "moved"
    shutil.move(folder / "out", target)
    return folder / "out", target


def commands(readme: Path) -> list[list[str]]:
    """The indented `medledger …` and `curl …` lines of a README, split as a shell would."""
    found = []
    for line in readme.read_text().splitlines():
        text = line.strip()
        if text.startswith(("medledger channel", "medledger chaincode", "curl ")):
            found.append(shlex.split(text))
    return found


def paths_in(words: list[str]) -> list[str]:
    """The words following a path flag, plus the package of `chaincode install`."""
    paths = [after for flag, after in itertools.pairwise(words) if flag in PATH_FLAGS]
    if words[:3] == ["medledger", "chaincode", "install"]:
        paths.append(words[3])
    return paths


def test_no_readme_names_the_folder_it_was_generated_in(
    moved: tuple[Path, Path],
) -> None:
    original, target = moved

    for readme in target.rglob("README.txt"):
        assert str(original) not in readme.read_text(), readme


def test_top_readme_paths_exist_from_the_output_folder(
    moved: tuple[Path, Path],
) -> None:
    _, target = moved
    found = [
        path for words in commands(target / "README.txt") for path in paths_in(words)
    ]

    assert "chaincode/asset.tar.gz" in found
    assert "chaincode/asset-collections.json" in found
    for path in found:
        assert not Path(path).is_absolute(), path
        assert (target / path).exists(), path


@pytest.mark.parametrize("node", [PEER_A, ORDERER])
def test_node_readme_paths_exist_from_the_node_folder(
    moved: tuple[Path, Path], node: str
) -> None:
    _, target = moved
    lines = commands(target / node / "README.txt")
    found = [path for words in lines for path in paths_in(words)]
    found += [
        word.split("@", 1)[1] for words in lines for word in words if "=@" in word
    ]

    assert lines, "the README says how to join the channel"
    assert any(path.startswith("../organizations/") for path in found)
    for path in found:
        assert not Path(path).is_absolute(), path
        assert (target / node / path).exists(), path


def test_init_required_chaincode_gets_an_init_note(moved: tuple[Path, Path]) -> None:
    _, target = moved
    readme = (target / "README.txt").read_text()

    assert "--init-required" in readme
    assert "proposal flagged is_init calling InitLedger" in readme
