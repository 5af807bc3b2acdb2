"""The endorsement benchmark runs end to end and reports every figure (a small run)."""

from __future__ import annotations

import pytest

from network.bench_endorse import EndorseBenchOptions, run_endorse_bench


@pytest.mark.slow
def test_a_small_endorsement_benchmark_reports_all_paths() -> None:
    report = run_endorse_bench(EndorseBenchOptions(proposals=60, concurrency=8))
    for path in ("in_process", "in_process_without_chaincode_stream", "grpc"):
        figures = report[path]
        assert isinstance(figures, dict)
        assert figures["endorsed"] == 60, figures
        assert figures["endorsements_per_s"] > 0
