"""BlockFeed keeps the bytes a writer already had instead of serialising the block again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from common.blockstore import BlockStore
from common.deliver import BlockFeed
from common.protoutil import block_header_hash, new_block


async def test_expected_bytes_are_kept_for_that_block_object_only(
    tmp_path: Path,
) -> None:
    with BlockStore.open(tmp_path / "store") as store:
        feed = BlockFeed(store)
        first = new_block(0, previous_hash=b"", envelopes=[])
        second = new_block(
            1, previous_hash=block_header_hash(first.header), envelopes=[]
        )
        feed.expect(first, b"bytes the writer had")
        feed.expect(new_block(1, previous_hash=b"", envelopes=[]), b"another object")

        stored = asyncio.ensure_future(feed.wait_for_height(2))
        store.append(first, tx_ids=[])
        store.append(second, tx_ids=[])
        await stored  # woken from the loop, after the feed took both blocks' bytes

        assert await feed.block_bytes(0) == b"bytes the writer had"
        assert await feed.block_bytes(1) == second.SerializeToString()
        feed.close()
