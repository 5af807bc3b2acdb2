"""`medledger bench ledger` on a tiny workload: the JSON it reports, and bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from network.bench_ledger import BenchParams, run_commit_bench
from network.cli import main


def test_the_report_has_both_sizes_their_rates_and_the_drop(tmp_path: Path) -> None:
    params = BenchParams(
        blocks=2,
        txs=10,
        keys=400,
        baseline_keys=200,
        point_reads=50,
        range_keys=100,
    )

    report = run_commit_bench(params, directory=str(tmp_path))

    assert set(report["sizes"]) == {"200", "400"}
    at_large = report["sizes"]["400"]
    assert at_large["height"] == 10 + 2 + 10 + 2  # inserts and updates at each size
    assert at_large["commit_writes_per_s"] > 0
    assert at_large["database_bytes"] > 0
    assert at_large["block_store_bytes"] > 0
    assert set(report["drop_pct"]) == {
        "commit_writes_per_s",
        "commit_inserts_per_s",
        "point_reads_per_s",
        "range_keys_per_s",
    }
    assert list(tmp_path.iterdir()) == []  # the ledger folder is removed
    kept = (
        at_large["commit_writes_per_s"] / report["sizes"]["200"]["commit_writes_per_s"]
    )
    assert report["targets"]["commit_writes_drop<=30%"] is (kept >= 0.70)
    assert "at_large:commit_writes_per_s>=30000" in report["targets"]


def test_the_command_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "ledger", "--blocks", "1", "--txs", "4", "--keys", "64"]
    argv += ["--baseline-keys", "32", "--point-reads", "10", "--dir", str(tmp_path)]

    assert main(argv) == 0

    assert json.loads(capsys.readouterr().out)["params"]["txs_per_block"] == 4


@pytest.mark.parametrize(
    ("option", "message"),
    [("--txs=0", "--txs must be positive"), ("--keys=5", "--baseline-keys <= --keys")],
)
def test_bad_options_are_one_line_errors(
    option: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "ledger", option]) == 2
    assert message in capsys.readouterr().err
