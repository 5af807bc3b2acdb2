"""The etcd backend's block log against a real etcd: fenced writes, reads, watches, pruning.

One single-member etcd serves the module; every test works under its own channel id,
so no test sees another's keys. Waits are watches with deadlines.
"""

from __future__ import annotations

import asyncio

import pytest

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import Term
from orderer.consensus.etcd_log import (
    BlockLog,
    BlocksPruned,
    ChannelKeys,
    LogBlock,
    WriteOutcome,
)
from orderer.consensus.etcd_types import (
    EtcdRevisionCompacted,
)
from tests.support import etcd_fixtures
from tests.support.etcd_fixtures import election, win

etcd = etcd_fixtures.etcd
client = etcd_fixtures.client
keys = etcd_fixtures.keys


@pytest.fixture
def log(client: EtcdClient, keys: ChannelKeys) -> BlockLog:
    return BlockLog(client, keys)


async def collect(log: BlockLog, start: int, end: int) -> list[LogBlock]:
    return [block async for block in log.read_blocks(start, end)]


# --- writing blocks ---------------------------------------------------------------


async def test_block_is_written_once_at_the_height(
    client: EtcdClient, log: BlockLog
) -> None:
    """Slot n takes one block, only when the height is n; the height moves on."""
    await log.initialise(1)
    term = await win(client, log.keys)

    first = await log.write_block(1, b"block-1", cutter_revision=term.revision)
    other = await log.write_block(1, b"another-1", cutter_revision=term.revision)
    ahead = await log.write_block(3, b"block-3", cutter_revision=term.revision)

    assert first.outcome is WriteOutcome.WRITTEN
    assert first.height == 2
    assert other.outcome is WriteOutcome.CHAIN_MOVED
    assert ahead.outcome is WriteOutcome.CHAIN_MOVED
    assert (await log.state()).height == 2
    assert [b.value for b in await collect(log, 1, 2)] == [b"block-1"]


async def test_a_retried_write_of_the_same_bytes_counts_as_written(
    client: EtcdClient, log: BlockLog
) -> None:
    """An answer lost in transit: writing the same block again reports success."""
    await log.initialise(1)
    term = await win(client, log.keys)
    written = await log.write_block(1, b"block-1", cutter_revision=term.revision)

    again = await log.write_block(1, b"block-1", cutter_revision=term.revision)

    assert again.outcome is WriteOutcome.WRITTEN
    assert again.revision == written.revision


async def test_a_deposed_cutter_cannot_write(client: EtcdClient, log: BlockLog) -> None:
    """Fencing: a write with an older term's revision fails even at the right height."""
    await log.initialise(1)
    old = election(client, log.keys, "orderer0")
    old_term = await old.campaign()
    assert isinstance(old_term, Term)
    await old.resign(old_term, timeout_s=2)
    new_term = await win(client, log.keys, "orderer1")

    stale = await log.write_block(1, b"stale", cutter_revision=old_term.revision)
    fresh = await log.write_block(1, b"fresh", cutter_revision=new_term.revision)

    assert stale.outcome is WriteOutcome.NOT_CUTTER
    assert fresh.outcome is WriteOutcome.WRITTEN
    assert [b.value for b in await collect(log, 1, 2)] == [b"fresh"]


async def test_initialise_keeps_an_existing_log(log: BlockLog) -> None:
    started = await log.initialise(1)
    again = await log.initialise(5)

    assert (started.height, started.base) == (1, 1)
    assert (again.height, again.base) == (1, 1)
    assert (await log.state()).started


async def test_an_unstarted_log_says_so(log: BlockLog) -> None:
    state = await log.state()

    assert not state.started
    assert state.revision > 0


# --- reading, watching, pruning ---------------------------------------------------


async def write_chain(client: EtcdClient, log: BlockLog, count: int) -> Term:
    """Blocks 1..count with values b"block-<n>", written by one term."""
    await log.initialise(1)
    term = await win(client, log.keys)
    for number in range(1, count + 1):
        result = await log.write_block(
            number, f"block-{number}".encode(), cutter_revision=term.revision
        )
        assert result.outcome is WriteOutcome.WRITTEN
    return term


async def test_blocks_are_read_in_order_across_pages(
    client: EtcdClient, log: BlockLog
) -> None:
    await write_chain(client, log, 40)

    blocks = await collect(log, 1, 41)

    assert [b.number for b in blocks] == list(range(1, 41))
    assert blocks[-1].value == b"block-40"


async def test_reading_below_the_base_raises_blocks_pruned(log: BlockLog) -> None:
    await log.initialise(5)

    with pytest.raises(BlocksPruned) as raised:
        await collect(log, 2, 6)

    assert (raised.value.needed, raised.value.base) == (2, 5)


async def test_a_watch_resumes_after_the_last_revision_it_saw(
    client: EtcdClient, log: BlockLog
) -> None:
    """Resuming from the reported revision + 1 yields later blocks and nothing twice."""
    start = (await log.initialise(1)).revision
    term = await write_chain_after(client, log, start_number=1, count=3)
    seen: list[int] = []
    resume = start
    async with asyncio.timeout(5):
        async for revision, blocks in log.watch_blocks(start + 1):
            seen.extend(block.number for block in blocks)
            resume = revision
            if len(seen) == 3:
                break
    await log.write_block(4, b"block-4", cutter_revision=term.revision)
    async with asyncio.timeout(5):
        async for _, blocks in log.watch_blocks(resume + 1):
            if blocks:
                seen.extend(block.number for block in blocks)
                break

    assert seen == [1, 2, 3, 4]


async def write_chain_after(
    client: EtcdClient, log: BlockLog, *, start_number: int, count: int
) -> Term:
    term = await win(client, log.keys)
    for number in range(start_number, start_number + count):
        await log.write_block(
            number, f"block-{number}".encode(), cutter_revision=term.revision
        )
    return term


async def test_pruning_deletes_old_blocks_raises_the_base_and_compacts(
    client: EtcdClient, log: BlockLog
) -> None:
    first_revision = (await log.state()).revision
    await write_chain(client, log, 10)

    compacted_at = await log.prune(below=6)

    assert compacted_at is not None
    state = await log.state()
    assert (state.base, state.height) == (6, 11)
    assert [b.number for b in await collect(log, 6, 11)] == [6, 7, 8, 9, 10]
    with pytest.raises(BlocksPruned):
        await collect(log, 3, 11)
    with pytest.raises(EtcdRevisionCompacted):
        async for _ in log.watch_blocks(first_revision):
            pass
    assert await log.prune(below=6) is None


async def test_orderer_heights_are_recorded_by_name(log: BlockLog) -> None:
    await log.record_orderer_height("orderer0", 7)
    await log.record_orderer_height("orderer1", 5)
    await log.record_orderer_height("orderer0", 9)

    assert await log.orderer_heights() == {"orderer0": 9, "orderer1": 5}
