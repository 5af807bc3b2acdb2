"""A micro-benchmark of the state database alone (not a test; `medledger bench ledger`).

For each database size it measures:
- committed writes/s: blocks of `txs_per_block` transactions × `writes_per_tx`
  writes of `value_bytes`-byte JSON values to random existing keys, one SQLite
  transaction per block (`apply_updates`, savepoint included) — the worst case
  for a B-tree, since every write dirties a different page once the state is large;
- committed inserts/s: the same blocks writing new keys in ascending order;
- point reads/s: `get_state` of random keys;
- range keys/s: `get_state_range` over consecutive keys.
With `synchronous="FULL"` every block commit fsyncs the WAL once, which is the
"one fsync per block" budget; the design default is "NORMAL" (the block file is
the durability point), which fsyncs only at checkpoints.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peer.ledger.schema import CHECKPOINT_MIB, PAGE_SIZE, open_channel_db, transaction
from peer.ledger.statedb import (
    UpdateBatch,
    Version,
    apply_updates,
    get_state,
    get_state_range,
)
from peer.ledger.values import stored_value

__all__ = ["run_ledger_bench"]

_NS = "bench"


def run_ledger_bench(
    *,
    key_counts: Sequence[int] = (10_000, 1_000_000),
    blocks: int = 100,
    txs_per_block: int = 500,
    writes_per_tx: int = 2,
    value_bytes: int = 200,
    point_reads: int = 50_000,
    range_keys: int = 200_000,
    synchronous: str = "NORMAL",
    page_size: int = PAGE_SIZE,
    checkpoint_mib: int = CHECKPOINT_MIB,
    directory: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the benchmark for each size in `key_counts`; returns a JSON-able report."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
    sizes: dict[str, dict[str, float]] = {}
    for key_count in key_counts:
        with tempfile.TemporaryDirectory(dir=directory) as folder:
            sizes[str(key_count)] = _bench_size(
                Path(folder) / "channel.db",
                key_count=key_count,
                blocks=blocks,
                txs_per_block=txs_per_block,
                writes_per_tx=writes_per_tx,
                value_bytes=value_bytes,
                point_reads=point_reads,
                range_keys=range_keys,
                synchronous=synchronous,
                page_size=page_size,
                checkpoint_mib=checkpoint_mib,
                rng=random.Random(seed),
            )
    report: dict[str, Any] = {
        "params": {
            "blocks": blocks,
            "txs_per_block": txs_per_block,
            "writes_per_tx": writes_per_tx,
            "value_bytes": value_bytes,
            "synchronous": synchronous,
            "page_size": page_size,
            "checkpoint_mib": checkpoint_mib,
        },
        "sizes": sizes,
    }
    if len(key_counts) > 1:
        first, last = sizes[str(key_counts[0])], sizes[str(key_counts[-1])]
        report["drop_pct"] = {
            name: round(100.0 * (1.0 - last[name] / first[name]), 1) for name in first
        }
    return report


def _bench_size(
    path: Path,
    *,
    key_count: int,
    blocks: int,
    txs_per_block: int,
    writes_per_tx: int,
    value_bytes: int,
    point_reads: int,
    range_keys: int,
    synchronous: str,
    page_size: int,
    checkpoint_mib: int,
    rng: random.Random,
) -> dict[str, float]:
    conn = open_channel_db(path, page_size=page_size, checkpoint_mib=checkpoint_mib)
    try:
        conn.execute(f"PRAGMA synchronous={synchronous}")
        _prefill(conn, key_count, value_bytes)
        shape = (blocks, txs_per_block, writes_per_tx, value_bytes)
        writes = _bench_commits(conn, key_count, *shape, rng)
        inserts = _bench_commits(
            conn, key_count, *shape, rng, first_block=blocks + 1, insert=True
        )
        reads = _bench_point_reads(conn, key_count, point_reads, rng)
        scanned = _bench_range(conn, key_count, range_keys, rng)
    finally:
        conn.close()
    return {
        "commit_writes_per_s": round(writes),
        "commit_inserts_per_s": round(inserts),
        "point_reads_per_s": round(reads),
        "range_keys_per_s": round(scanned),
    }


def _key(index: int) -> str:
    return f"asset{index:09d}"


def _value(index: int, counter: int, value_bytes: int) -> bytes:
    document = {"id": _key(index), "owner": f"org{index % 7}", "n": counter, "pad": ""}
    pad = max(0, value_bytes - len(json.dumps(document)))
    document["pad"] = "x" * pad
    return json.dumps(document).encode()


def _prefill(conn: Any, key_count: int, value_bytes: int) -> None:
    chunk = 50_000
    for start in range(0, key_count, chunk):
        rows = [
            (_NS, _key(i), 0, 0, stored_value(_value(i, 0, value_bytes)))
            for i in range(start, min(key_count, start + chunk))
        ]
        with transaction(conn):
            conn.executemany(
                "INSERT INTO state (ns, key, block_num, tx_num, val) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _bench_commits(
    conn: Any,
    key_count: int,
    blocks: int,
    txs_per_block: int,
    writes_per_tx: int,
    value_bytes: int,
    rng: random.Random,
    *,
    first_block: int = 1,
    insert: bool = False,
) -> float:
    """Writes/s committing blocks of random updates, or of new ascending keys (`insert`)."""
    values = [_value(i, 1, value_bytes) for i in range(64)]
    next_new_key = key_count
    started = time.perf_counter()
    for block_num in range(first_block, first_block + blocks):
        batch = UpdateBatch()
        for tx_num in range(txs_per_block):
            version = Version(block_num, tx_num)
            for write in range(writes_per_tx):
                if insert:
                    index, next_new_key = next_new_key, next_new_key + 1
                else:
                    index = rng.randrange(key_count)
                batch.put(_NS, _key(index), values[(tx_num + write) % 64], version)
        apply_updates(conn, batch, savepoint=Version(block_num, txs_per_block))
    elapsed = time.perf_counter() - started
    return blocks * txs_per_block * writes_per_tx / elapsed


def _bench_point_reads(
    conn: Any, key_count: int, reads: int, rng: random.Random
) -> float:
    keys = [_key(rng.randrange(key_count)) for _ in range(reads)]
    started = time.perf_counter()
    for key in keys:
        if get_state(conn, _NS, key) is None:
            raise AssertionError(f"benchmark key {key} missing")
    return reads / (time.perf_counter() - started)


def _bench_range(
    conn: Any, key_count: int, range_keys: int, rng: random.Random
) -> float:
    wanted = min(range_keys, key_count)
    first = rng.randrange(key_count - wanted + 1)
    started = time.perf_counter()
    seen = sum(1 for _ in get_state_range(conn, _NS, _key(first), _key(first + wanted)))
    elapsed = time.perf_counter() - started
    if seen != wanted:
        raise AssertionError(f"range returned {seen} keys, expected {wanted}")
    return seen / elapsed
