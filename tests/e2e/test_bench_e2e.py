"""`medledger bench e2e` against the bench network, as a user runs it.

Method: network/examples/bench-2org.yaml with its ports moved to free ones and its
chaincode paths made absolute is started once with `medledger network up`; each test
runs a short workload as a process and reads the JSON on stdout. The smoke runs check
the report's shape and that transactions commit valid; the longer workloads (transfer
with its pool, private, the Node client) are marked slow. The percentile helper and
the CPU reader are checked without a network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network.bench_e2e import percentiles, process_cpu_s
from network.ports import free_ports

REPOSITORY = Path(__file__).resolve().parents[2]
BENCH_SPEC = REPOSITORY / "network" / "examples" / "bench-2org.yaml"
NODE_CLIENT = (
    REPOSITORY / "tests" / "interop" / "node" / "node_modules" / "@hyperledger"
)
COMMAND_TIMEOUT_S = 240.0
REPORT_KEYS = {
    "workload",
    "client",
    "duration_s",
    "concurrency",
    "offered_rate",
    "issued",
    "offered_tx_per_s",
    "committed",
    "committed_tx_per_s",
    "evaluated",
    "evaluate_per_s",
    "latency_ms",
    "invalid",
    "failed",
    "failure_samples",
    "cpu_s",
    "cpu_ms_per_op",
}
NODES = {
    "orderer0.commission.example.com",
    "peer0.hospital-a.example.com",
    "peer0.hospital-b.example.com",
    "gateway0.hospital-a.example.com",
    "gateway0.hospital-b.example.com",
}


def medledger(*arguments: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "network.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def relocated_spec(path: Path) -> Path:
    """The bench spec on free ports, its chaincode paths absolute."""
    text = BENCH_SPEC.read_text()
    ports = sorted(set(re.findall(r"port: (\d+)", text)))
    for old, new in zip(ports, free_ports(len(ports)), strict=True):
        text = re.sub(rf"port: {old}\b", f"port: {new}", text)
    text = text.replace("../../chaincode/", f"{REPOSITORY}/chaincode/")
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("bench-e2e")
    spec = relocated_spec(folder / "bench.yaml")
    network = folder / "wd"
    medledger("network", "up", "-c", str(spec), "--workdir", str(network))
    try:
        yield network
    finally:
        medledger("network", "down", "--workdir", str(network))


def bench(workdir: Path, workload: str, *extra: str) -> dict[str, Any]:
    result = medledger(
        "bench", "e2e", "--workload", workload, "--workdir", str(workdir), *extra
    )
    document: dict[str, Any] = json.loads(result.stdout)
    assert workload in result.stderr  # the progress line
    return document


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_create_commits_valid_transactions(workdir: Path) -> None:
    """Goal: the create workload commits through both gateways. Method: 3 s at 32 in
    flight; the report has every key, latency for the three phases, no invalid or
    failed transaction, and CPU seconds for every node and the client."""
    report = bench(workdir, "create", "--duration", "3", "--concurrency", "32")

    assert set(report) == REPORT_KEYS
    assert report["committed"] > 0
    assert report["committed"] == report["issued"]
    assert report["invalid"] == {}
    assert report["failed"] == {}
    assert set(report["latency_ms"]) == {"endorse", "submit", "commit"}
    assert set(report["latency_ms"]["commit"]) == {"p50", "p95", "p99", "max"}
    assert NODES | {"client"} <= set(report["cpu_s"])
    assert report["cpu_s"]["peer0.hospital-a.example.com"] > 0


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_read_counts_evaluations(workdir: Path) -> None:
    report = bench(
        workdir, "read", "--count", "200", "--concurrency", "32", "--pool", "50"
    )

    assert report["evaluated"] == 200
    assert report["committed"] == 0
    assert set(report["latency_ms"]) == {"evaluate"}
    assert report["failed"] == {}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("workload", ["transfer", "private"])
def test_transfer_and_private_commit_valid(workdir: Path, workload: str) -> None:
    report = bench(
        workdir, workload, "--count", "300", "--concurrency", "32", "--pool", "100"
    )

    assert report["committed"] == 300
    assert report["invalid"] == {}
    assert report["failed"] == {}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.interop
@pytest.mark.timeout(600)
@pytest.mark.skipif(not NODE_CLIENT.is_dir(), reason="npm ci in tests/interop/node")
@pytest.mark.parametrize("workload", ["create", "read"])
def test_the_node_client_drives_the_same_workload(workdir: Path, workload: str) -> None:
    report = bench(
        workdir, workload, "--count", "100", "--concurrency", "16", "--client", "node"
    )

    assert report["client"] == "node"
    assert report["committed"] + report["evaluated"] == 100
    assert report["invalid"] == {}
    assert report["failed"] == {}


def test_percentiles_use_the_nearest_rank_in_milliseconds() -> None:
    values = [number / 1000 for number in range(1, 101)]

    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) == {}


def test_cpu_seconds_of_this_process_and_of_no_process() -> None:
    used = process_cpu_s(os.getpid())

    assert used is not None
    assert used > 0
    assert process_cpu_s(2**22 + 1) is None
