"""Crash test for common.blockstore: SIGKILL a writer subprocess at random moments.

Each round starts a writer that appends blocks and prints every acknowledged number,
kills it after a random number of acknowledgements (zero kills it while it opens and
recovers), then reopens the store here: no acknowledged block may be lost and the
whole chain must verify. The seed is printed; rerun with `--seed`.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from common.blockstore import BlockStore
from tests.unit.common.test_blockstore import kill_writer_after

ROUNDS = 200


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkilled_writer_never_loses_an_acknowledged_block(
    tmp_path: Path, seed: int
) -> None:
    """200 kills with varying block sizes and file limits; the chain always verifies."""
    rng = random.Random(seed)
    file_size_max = rng.choice([50_000, 400_000, 4_000_000])
    acknowledged, torn_tails = -1, 0
    for round_number in range(ROUNDS):
        last = kill_writer_after(
            tmp_path,
            rng.choice([0, 1, 2, 5, 20]) if round_number % 4 else 0,
            file_size_max=file_size_max,
            txs_per_block=rng.choice([1, 50, 500]),
        )
        acknowledged = max(acknowledged, last)
        with BlockStore.open(tmp_path) as store:
            torn_tails += store.recovery.torn_tail is not None
            assert store.height > acknowledged, f"round {round_number} lost a block"
            assert store.verify_all() == store.height
            acknowledged = store.height - 1
    print(f"seed={seed} height={acknowledged + 1} torn_tails={torn_tails}")
