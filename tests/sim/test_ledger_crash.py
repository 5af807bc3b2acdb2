"""Crash test for the channel ledger: SIGKILL a committing writer at random moments.

Each round starts `tests/sim/ledger_writer.py`, which commits seeded blocks (public
writes, deletes, metadata, private data, purges, invalid transactions) and prints
each block number once `commit_block` returns. The writer dies in one of two ways:
the test kills it after reading a random number of printed numbers (zero kills it
while it opens and replays), or the writer kills itself at a failpoint inside a
commit (private data kept but block not appended, after the append, inside the
SQLite transaction, after the commit, during the replay). Then the test reopens
the ledger and checks that no printed block is missing, the hash chain verifies,
the savepoint is the last block, and the whole database equals a fresh replay of
the block store into a new ledger (kept up to date round by round). Some rounds
restart the writer without checking first, so that kills also land in a replay.
The seed is printed; rerun with `--seed`.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from peer.ledger.committed_txs import iter_committed_txs
from peer.ledger.ledger import DATABASE_FILE, ChannelLedger, CommitStep
from tests.sim import ledger_writer
from tests.sim.ledger_writer import CHANNEL_ID, FAILPOINT_ENV, Collections, workload

ROOT = Path(__file__).resolve().parents[2]
QUICK_ROUNDS = 10
SLOW_ROUNDS = 200
FAILPOINT_LINES = 40
"""A writer waiting for its failpoint is killed after this many blocks anyway."""
# Written by the transient store only: leftovers of a block that was never appended.
_NOT_COMPARED = {"transient"}


def test_killed_writer_recovers_to_a_replay_of_its_blocks(
    tmp_path: Path, seed: int
) -> None:
    """A few kills of both kinds; the ledger always equals a replay of its blocks."""
    run_rounds(tmp_path, seed, QUICK_ROUNDS)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_200_kills_never_lose_a_block_or_diverge_from_a_replay(
    tmp_path: Path, seed: int
) -> None:
    """200 SIGKILLs at random moments and failpoints, checked against a fresh replay."""
    run_rounds(tmp_path, seed, SLOW_ROUNDS)


@dataclass(frozen=True, slots=True)
class Round:
    """How one writer dies: at a failpoint (`offset` blocks past the first block the
    database lacks; None draws 0-3), or after `lines` printed numbers."""

    failpoint: CommitStep | None
    lines: int
    check: bool
    offset: int | None = None


# The first rounds visit every failpoint. A kill after the append is left
# unchecked, so the next writer must replay that block and is killed inside the
# replay's transaction, and the one after that just after the replay.
SCRIPTED = (
    Round(CommitStep.TRANSIENT_STORED, FAILPOINT_LINES, check=True),
    Round(CommitStep.APPENDED, FAILPOINT_LINES, check=False),
    Round(CommitStep.STATE_WRITTEN, FAILPOINT_LINES, check=False, offset=0),
    Round(CommitStep.REPLAYED, FAILPOINT_LINES, check=True, offset=0),
    Round(CommitStep.HISTORY_WRITTEN, FAILPOINT_LINES, check=True),
    Round(None, 3, check=False),
    Round(CommitStep.COMMITTED, FAILPOINT_LINES, check=True),
    Round(None, 0, check=True),
)


def run_rounds(tmp_path: Path, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    folder, reference_folder = tmp_path / "ledger", tmp_path / "reference"
    acknowledged, checks = -1, 0
    with ChannelLedger.open(
        reference_folder, channel_id=CHANNEL_ID, collections=Collections()
    ) as reference:
        for round_number in range(rounds):
            plan = (
                SCRIPTED[round_number] if round_number < len(SCRIPTED) else _draw(rng)
            )
            failpoint = None
            if plan.failpoint is not None:
                first = _first_unapplied_block(folder)
                offset = rng.randrange(4) if plan.offset is None else plan.offset
                failpoint = f"{plan.failpoint.value}:{first + offset}"
            printed = run_writer(folder, seed, failpoint=failpoint, lines=plan.lines)
            acknowledged = max([acknowledged, *printed])
            if plan.check or round_number == rounds - 1:
                check_recovered(folder, reference, seed, acknowledged)
                checks += 1
    print(f"seed={seed} rounds={rounds} checks={checks} height={acknowledged + 1}")


def _draw(rng: random.Random) -> Round:
    check = rng.random() < 0.75
    if rng.random() < 0.5:
        return Round(rng.choice(list(CommitStep)), FAILPOINT_LINES, check)
    return Round(None, rng.choice([0, 1, 2, 3, 5, 8, 13, 21]), check)


def _first_unapplied_block(folder: Path) -> int:
    """The savepoint + 1: the next block to commit, or the first one to replay."""
    path = folder / DATABASE_FILE
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as conn:
        try:
            row = conn.execute("SELECT block_num FROM savepoint").fetchone()
        except sqlite3.OperationalError:  # killed before its tables were created
            return 0
    return 0 if row is None else int(row[0]) + 1


def run_writer(
    folder: Path, seed: int, *, failpoint: str | None, lines: int
) -> list[int]:
    """Start the writer; read up to `lines` printed numbers, then SIGKILL it.

    Returns the numbers it printed. A writer that hits its failpoint dies first.
    """
    env = dict(os.environ)
    env.pop(FAILPOINT_ENV, None)
    if failpoint is not None:
        env[FAILPOINT_ENV] = failpoint
    with subprocess.Popen(
        [sys.executable, "-m", ledger_writer.__name__, str(folder), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as writer:
        assert writer.stdout is not None
        assert writer.stderr is not None
        printed = [int(line) for line in _read_lines(writer.stdout, lines)]
        writer.kill()
        stderr = writer.stderr.read()
        returncode = writer.wait()
    if returncode != -signal.SIGKILL:
        pytest.fail(f"writer exited with {returncode}, failpoint {failpoint}: {stderr}")
    return printed


def _read_lines(stream: IO[str], limit: int) -> Iterator[str]:
    for _ in range(limit):
        line = stream.readline()
        if not line:
            return
        yield line


def check_recovered(
    folder: Path, reference: ChannelLedger, seed: int, acknowledged: int
) -> None:
    """Reopen (replaying); compare with the reference after it catches up."""
    with ChannelLedger.open(
        folder, channel_id=CHANNEL_ID, collections=Collections()
    ) as ledger:
        height = ledger.height
        assert height > acknowledged, f"block {acknowledged} was acknowledged, lost"
        assert ledger.block_store.verify_all() == height
        assert ledger.savepoint() == (height - 1 if height else None)
        catch_up(reference, ledger, seed)
        assert reference.blockchain_info() == ledger.blockchain_info()
        assert dump(ledger.reader()) == dump(reference.reader())
        assert tx_index(ledger) == tx_index(reference)


def tx_index(ledger: ChannelLedger) -> dict[str, tuple[int, int, int]]:
    """Where the block store finds each tx id of its blocks (its tx index, as served)."""
    store = ledger.block_store
    tx_ids: list[str] = []
    for block in store.iter_blocks(0):
        for _ in iter_committed_txs(block, on_tx_id=tx_ids.append):
            pass
    found = {}
    for tx_id in filter(None, tx_ids):
        stored = store.tx_by_id(tx_id)
        found[tx_id] = (stored.block_number, stored.position, stored.validation_code)
    assert store.stored_tx_ids(tx_ids) == set(found)
    return found


def catch_up(reference: ChannelLedger, ledger: ChannelLedger, seed: int) -> None:
    """Commit the store's new blocks to the reference, with the workload's private data."""
    for block in ledger.block_store.iter_blocks(reference.height):
        content = workload(seed, block.header.number)
        reference.commit_block(block, content.pvt_data)


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every ledger table, sorted."""
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        if name not in _NOT_COMPARED
    ]
    return {
        table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in tables
    }
