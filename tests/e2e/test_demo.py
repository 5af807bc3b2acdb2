"""`medledger demo` as a user runs it, on the hospital example started by `network up`.

Method: a copy of network/examples/hospital-consortium.yaml on free loopback ports
(chaincode paths made absolute; solo ordering, so no etcd is needed) in a temporary
folder; `medledger network up`, then `medledger demo` as processes. The demo must exit
0 and print all eight steps, with tx ids and block numbers for the transactions and
C's refusal as the expected outcome; `network down` must then leave no process of the
network (nodes or the chaincode processes peers launched) behind, and a demo with no
network running must bring the work directory's network up first.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from network.testing import NetworkRequest, prepare_spec
from tests.e2e.test_network_up import descendants, is_running

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "network" / "examples" / "hospital-consortium.yaml"
COMMAND_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Example:
    """The example's copy, its work directory and the output of `up`."""

    spec: Path
    workdir: Path
    up: str

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """`medledger ARGUMENTS`, output captured, from the copy's folder."""
        return subprocess.run(
            [sys.executable, "-m", "network.cli", *arguments],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            cwd=self.spec.parent,
            check=False,
        )

    def pids(self) -> list[int]:
        """Every node process recorded in state.json, and their descendants."""
        state = yaml.safe_load((self.workdir / "state.json").read_text())
        nodes = [int(node["pid"]) for node in state["nodes"].values()]
        return nodes + [child for pid in nodes for child in descendants(pid)]


def example_on_free_ports(folder: Path) -> Path:
    """The example with free ports and absolute chaincode paths, written to `folder`."""
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    chaincodes = document["chaincodes"]
    for chaincode in chaincodes:
        chaincode["path"] = str((EXAMPLE.parent / chaincode["path"]).resolve())
    copy = prepare_spec(
        document, NetworkRequest(chaincode=Path(chaincodes[0]["path"]), name="unused")
    )
    copy["chaincodes"] = chaincodes
    path = folder / "hospital-consortium.yaml"
    path.write_text(yaml.safe_dump(copy, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    folder = tmp_path_factory.mktemp("demo")
    spec = example_on_free_ports(folder)
    network = Example(spec, folder / "wd", "")
    started = network.run("network", "up", "-c", str(spec), "--workdir", "wd", "--solo")
    network = Example(spec, folder / "wd", started.stdout)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield network
    finally:
        network.run("network", "down", "--workdir", "wd")


def test_up_deploys_ehr_and_initializes_asset(example: Example) -> None:
    """Goal: the example deploys the demo's chaincode next to asset, whose init
    transaction `up` sends (init_required)."""
    assert "committed chaincode ehr 1.0 (sequence 1) on medical-records" in example.up
    assert "initialized asset on medical-records (InitLedger)" in example.up


def test_demo_tells_the_story_with_tx_ids_and_blocks(example: Example) -> None:
    """Goal: `medledger demo` succeeds on the running example and shows each step.
    Method: exit status, the eight step headers, a block number for each of the five
    transactions, and C's refusal shown as the expected outcome."""
    result = example.run("demo", "--workdir", "wd")
    output = result.stdout

    assert result.returncode == 0, output + result.stderr
    assert "bringing up" not in output
    headers = re.findall(r"^\[(\d)/8\] (.+)$", output, flags=re.MULTILINE)
    assert [number for number, _ in headers] == [str(n) for n in range(1, 9)]
    assert "HospitalCMSP tries to read it and is refused" in output
    blocks = [int(b) for b in re.findall(r"^ {4}block {3}(\d+) ", output, re.MULTILINE)]
    assert len(blocks) == 5
    assert blocks == sorted(blocks)
    assert len(re.findall(r"^ {4}tx {6}[0-9a-f]{64}", output, re.MULTILINE)) == 6
    assert "refused, as expected: access to record" in output
    assert "demo as expected: 8 of 8 steps passed" in output


def test_down_leaves_no_process_behind(example: Example) -> None:
    """Goal: after the demo, `network down` stops every node and every chaincode
    process the peers launched."""
    family = example.pids()
    assert all(is_running(pid) for pid in family)

    result = example.run("network", "down", "--workdir", "wd")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [pid for pid in family if is_running(pid)] == []


def test_demo_brings_a_stopped_network_up_first(example: Example) -> None:
    """Goal: with no network running, `medledger demo` starts the work directory's
    network as `network up` does (resuming its ledgers), then tells the story again."""
    result = example.run("demo", "--workdir", "wd")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"bringing up the network of {example.spec}" in result.stdout
    assert "committed chaincode" not in result.stdout
    assert "demo as expected: 8 of 8 steps passed" in result.stdout
