"""A purge leaves no plaintext on disk: not in the database file, not in its WAL.

Method: a channel ledger in a temporary folder commits two versions of a private key
(handed in as the block's private data), then a block purging it; every file of the
ledger folder is read byte for byte for either version. A key written after the purge
stays readable.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from network.bench_ledger import endorser_envelope, validated_block
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtdata import list_purges
from tests.sim.ledger_writer import PrivateWrite, collection_sets, config_envelope

CC, COLL = "records", "AB"
CHANNEL = "bench"
VALID = 0


def _commit(
    ledger: ChannelLedger, tx_id: str, private: dict[str, list[PrivateWrite]]
) -> None:
    hashed, pvt = collection_sets(private, namespace=CC)
    envelope = endorser_envelope(
        tx_id=tx_id, writes=[], namespace=CC, collections=hashed
    )
    block = validated_block(
        ledger.height,
        previous_hash=ledger.blockchain_info().currentBlockHash,
        envelopes=[envelope],
        codes=[VALID],
    )
    ledger.commit_block(block, {0: pvt})


def _holding(folder: Path, marker: bytes) -> list[Path]:
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and marker in path.read_bytes()
    ]


def test_purged_versions_leave_no_bytes_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both versions are on disk before the purge and nowhere after it (the large one
    on overflow pages, which would go to the free list unerased); one log line."""
    first = b"MARKER-first-7d41"
    last = b"MARKER-last-90ce" + bytes(6000)  # spills to overflow pages
    folder = tmp_path / "ledger"
    with ChannelLedger.open(folder, channel_id=CHANNEL) as ledger:
        genesis = validated_block(
            0,
            previous_hash=b"",
            envelopes=[config_envelope("genesis")],
            codes=[VALID],
        )
        ledger.commit_block(genesis)
        _commit(ledger, "v1", {COLL: [PrivateWrite("k", first)]})
        _commit(ledger, "v2", {COLL: [PrivateWrite("k", last)]})
        assert _holding(folder, first)
        assert _holding(folder, last[:16])
        with caplog.at_level(logging.INFO, logger="peer.ledger.ledger"):
            _commit(ledger, "purge", {COLL: [PrivateWrite("k", None, purge=True)]})
        _commit(ledger, "after", {COLL: [PrivateWrite("k2", b"kept")]})

        assert _holding(folder, first) == []
        assert _holding(folder, last[:16]) == []
        assert ledger.get_private_data(CC, COLL, "k") is None
        kept = ledger.get_private_data(CC, COLL, "k2")
        assert kept is not None
        assert kept.value == b"kept"
        key_hash = hashlib.sha256(b"k").digest()
        [record] = list_purges(ledger.reader(), CC, COLL, key_hash=key_hash)
        assert record.store_entries_purged == 2
    [line] = [r.getMessage() for r in caplog.records if "purge completed" in r.message]
    assert line == (
        f"privdata purge completed channel={CHANNEL} ns={CC} collection={COLL} "
        f"key_hash={key_hash.hex()} block=3 tx=0 wal_truncated=yes"
    )
