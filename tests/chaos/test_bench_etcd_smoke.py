"""`medledger bench orderer --backend etcd` runs end to end on a small load.

Method: `run_orderer_bench` with a few hundred envelopes: three etcd members and three
orderer processes start, the cutter and a follower each take one stream; the JSON names
them and carries CPU per envelope for every process.
"""

from __future__ import annotations

from network.bench_orderer import BenchOptions, run_orderer_bench
from tests.support.etcd import require_etcd


def test_the_etcd_bench_measures_the_cutter_and_a_follower() -> None:
    """300 envelopes through the cutter, 300 through a follower, no subscribers."""
    require_etcd()
    result = run_orderer_bench(
        BenchOptions(envelopes=300, envelope_bytes=100, subscribers=0, backend="etcd")
    )

    cutter, follower = result["etcd"], result["broadcast_follower"]
    assert cutter["cutter"] != follower["orderer"]
    assert cutter["envelopes_per_s"] > 0
    assert follower["envelopes_per_s"] > 0
    processes = set(cutter["cpu_us_per_envelope_by_process"])
    assert processes == {"orderer0", "orderer1", "orderer2", "etcd0", "etcd1", "etcd2"}
