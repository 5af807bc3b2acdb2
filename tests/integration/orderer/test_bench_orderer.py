"""`medledger bench orderer` runs end to end on a small load and reports its figures.

Method: `run_orderer_bench` with a few hundred envelopes (solo: one orderer process);
the JSON carries a rate and CPU per envelope for the orderer, the client and, with
subscribers, the Deliver phase. The etcd backend's run is in tests/chaos.
"""

from __future__ import annotations

from network.bench_orderer import BenchOptions, run_orderer_bench


def test_the_solo_bench_reports_rate_and_cpu_per_envelope() -> None:
    """200 envelopes on one stream, then again with one Deliver subscriber, twice."""
    result = run_orderer_bench(
        BenchOptions(envelopes=200, envelope_bytes=100, subscribers=1, rounds=2)
    )

    solo = result["solo"]
    assert solo["envelopes"] == 200
    assert solo["envelopes_per_s"] > 0
    assert solo["orderer_cpu_us_per_envelope"] > 0
    assert set(solo["cpu_us_per_envelope_by_process"]) == {"orderer0"}
    assert result["deliver"]["subscribers"] == 1
    assert result["deliver"]["blocks_per_subscriber"] >= 1
    assert "broadcast_follower" not in result
    assert len(solo["rounds"]) == len(result["deliver"]["rounds"]) == 2
    assert len(result["deliver"]["slowdown_percent_by_round"]) == 2
    assert result["deliver"]["client_cpu_us_per_envelope"] > 0
