"""Range-query reads for phantom detection: raw reads, or a Merkle summary past 50 results.

Fabric records the results a chaincode pulled from a range iterator in the
rwset's `RangeQueryInfo`, so the validator can run the range again at commit
and notice keys that appeared or vanished (PHANTOM_READ_CONFLICT). Up to
`MAX_DEGREE` results are kept as raw `KVRead`s. Beyond that the results are
summarised as a tree of SHA-256 hashes, built incrementally:

- every `MAX_DEGREE + 1` results become one leaf hash: SHA-256 of the marshaled
  `QueryReads{kv_reads}` holding them (level 1);
- whenever a level holds more than `MAX_DEGREE` hashes they are concatenated
  and hashed into one hash of the next level;
- at the end, the leftover results become a last leaf, each lower level's
  leftovers are folded upwards (one hash is carried as is, several are
  combined), and if the top level then holds more than `MAX_DEGREE` hashes
  they are combined once more.

The summary is `QueryReadsMerkleSummary{max_degree, max_level, max_level_hashes}`.
The validator re-runs the range through `RangeQueryResults` and compares the
outcome (`raw_reads` or summary) with the recorded one; this module is pure.
"""

from __future__ import annotations

import hashlib

from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = ["LEAF_LEVEL", "MAX_DEGREE", "RangeQueryResults", "apply_reads_info"]

MAX_DEGREE = 50
"""Fabric's fixed tree degree (`maxDegreeQueryReadsHashing`); hashing is always on."""

LEAF_LEVEL = 1


class RangeQueryResults:
    """Collects the reads of one range iterator and yields raw reads or a summary."""

    def __init__(self, max_degree: int = MAX_DEGREE) -> None:
        if max_degree < 2:
            raise ValueError(f"max_degree must be at least 2, got {max_degree}")
        self._max_degree = max_degree
        self._pending: list[kv_rwset_pb2.KVRead] = []
        self._levels: dict[int, list[bytes]] = {}
        self._max_level = LEAF_LEVEL
        self._finished = False

    def add(self, read: kv_rwset_pb2.KVRead) -> None:
        """Record the next result, in the order the iterator returned it."""
        assert not self._finished, "add() after done()"
        self._pending.append(read)
        if len(self._pending) > self._max_degree:
            self._hash_pending()

    def done(
        self,
    ) -> tuple[list[kv_rwset_pb2.KVRead], kv_rwset_pb2.QueryReadsMerkleSummary | None]:
        """The raw reads (no summary), or no raw reads and the summary; call once."""
        assert not self._finished, "done() called twice"
        self._finished = True
        if self._tree_is_empty():
            return self._pending, None
        if self._pending:
            self._hash_pending()
        self._fold_levels()
        summary = kv_rwset_pb2.QueryReadsMerkleSummary(
            max_degree=self._max_degree,
            max_level=self._max_level,
            max_level_hashes=self._levels.get(self._max_level, []),
        )
        return [], summary

    def _tree_is_empty(self) -> bool:
        return self._max_level == LEAF_LEVEL and not self._levels.get(LEAF_LEVEL)

    def _hash_pending(self) -> None:
        marshaled = kv_rwset_pb2.QueryReads(kv_reads=self._pending).SerializeToString()
        self._pending = []
        self._add_leaf(hashlib.sha256(marshaled).digest())

    def _add_leaf(self, leaf: bytes) -> None:
        self._levels.setdefault(LEAF_LEVEL, []).append(leaf)
        level = LEAF_LEVEL
        while len(self._levels[level]) > self._max_degree:
            combined = _combine(self._levels.pop(level))
            level += 1
            self._levels.setdefault(level, []).append(combined)
            self._max_level = max(self._max_level, level)

    def _fold_levels(self) -> None:
        level = LEAF_LEVEL
        while level < self._max_level:
            hashes = self._levels.pop(level, [])
            level += 1
            if not hashes:
                continue
            carried = hashes[0] if len(hashes) == 1 else _combine(hashes)
            self._levels.setdefault(level, []).append(carried)
        top = self._levels.get(self._max_level, [])
        if len(top) > self._max_degree:
            del self._levels[self._max_level]
            self._max_level += 1
            self._levels[self._max_level] = [_combine(top)]


def _combine(hashes: list[bytes]) -> bytes:
    return hashlib.sha256(b"".join(hashes)).digest()


def apply_reads_info(
    info: kv_rwset_pb2.RangeQueryInfo,
    raw_reads: list[kv_rwset_pb2.KVRead],
    summary: kv_rwset_pb2.QueryReadsMerkleSummary | None,
) -> None:
    """Set the `reads_info` oneof as Fabric does: nothing at all when no result was read."""
    if summary is not None:
        info.reads_merkle_hashes.CopyFrom(summary)
    elif raw_reads:
        info.raw_reads.CopyFrom(kv_rwset_pb2.QueryReads(kv_reads=raw_reads))
