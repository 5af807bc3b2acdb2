"""Several in-process etcd-backed orderers of one channel, and checks of their stores.

`OrdererCluster` starts `OrdererNode`s (tests.chaos.orderers) on one etcd cluster and
can restart one on its folder, find the cutter and wait for equal heights;
`verify_stores` checks closed stores against each other and the acknowledgements.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.blockstore import BlockStore
from common.protoutil import parse_envelope
from orderer.consensus.etcd_settings import EtcdSettings
from tests.chaos.orderers import ChannelFixture, OrdererNode, block_files


class OrdererCluster:
    """Three (or more) in-process orderers of one channel on one etcd cluster."""

    def __init__(
        self,
        folder: Path,
        *,
        channel: ChannelFixture,
        endpoints: Sequence[str],
        settings: EtcdSettings | None = None,
    ) -> None:
        self.folder = folder
        self.channel = channel
        self.endpoints = tuple(endpoints)
        self.settings = settings
        self.nodes: list[OrdererNode] = []

    async def start(self, count: int = 3) -> OrdererCluster:
        for index in range(count):
            self.nodes.append(await self._start(index))
        return self

    async def restart(self, index: int) -> OrdererNode:
        """Start orderer `index` again on its folder (after a stop or crash)."""
        await self.nodes[index].crash()
        self.nodes[index] = await self._start(index)
        return self.nodes[index]

    async def cutter(self, *, timeout_s: float = 10.0) -> int:
        """The index of the running orderer that is cutter now (waits for one)."""
        found: list[int] = []

        def elected() -> bool:
            found[:] = [
                i for i, n in enumerate(self.nodes) if n.running and n.chain.is_cutter
            ]
            return bool(found)

        await until(elected, timeout_s=timeout_s, what="a cutter")
        return found[0]

    async def same_height(self, *, timeout_s: float = 10.0) -> int:
        """Wait until every running orderer has stored the same number of blocks."""

        def level() -> bool:
            heights = {n.store.height for n in self.nodes if n.running}
            return len(heights) == 1

        await until(level, timeout_s=timeout_s, what="equal heights")
        return next(n.store.height for n in self.nodes if n.running)

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()

    async def _start(self, index: int) -> OrdererNode:
        return await OrdererNode.start(
            f"orderer{index}",
            self.folder / f"orderer{index}",
            channel=self.channel,
            identity=self.channel.orderers[index % len(self.channel.orderers)],
            endpoints=self.endpoints,
            settings=self.settings,
        )


async def until(
    predicate: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = 0.02
) -> None:
    """Wait for `predicate` to hold, checking every `poll_s`, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s} s")
        await asyncio.sleep(poll_s)


@dataclass(frozen=True)
class ChainReport:
    """What the stores hold, checked: height, and the block of every tx id."""

    height: int
    tx_blocks: dict[str, int]


def verify_stores(
    folders: Sequence[Path], *, acked: Mapping[str, int] | Collection[str]
) -> ChainReport:
    """Check the orderers' stores (closed) against each other and the acknowledgements.

    Every store verifies (checksums, hash chain, data hashes), the block files are
    byte-identical, no tx id appears twice, and every acknowledged tx id is in the
    chain (in the block its acknowledgement named, when `acked` maps them).
    """
    files = [block_files(folder) for folder in folders]
    assert all(f == files[0] for f in files[1:]), "block files differ between orderers"
    tx_blocks: dict[str, int] = {}
    with BlockStore.open(folders[0]) as store:
        assert store.verify_all() == store.height
        height = store.height
        for block in store.iter_blocks(1):
            for envelope in block.data.data:
                tx_id = parse_envelope(envelope).tx_id
                assert tx_id not in tx_blocks, (
                    f"tx {tx_id} in blocks {tx_blocks[tx_id]} and {block.header.number}"
                )
                tx_blocks[tx_id] = block.header.number
    missing = {tx for tx in acked if tx not in tx_blocks}
    assert not missing, f"{len(missing)} acknowledged envelopes are not in the chain"
    if isinstance(acked, Mapping):
        moved = {
            tx: (n, tx_blocks[tx]) for tx, n in acked.items() if tx_blocks[tx] != n
        }
        assert not moved, f"acknowledged with other block numbers: {moved}"
    return ChainReport(height=height, tx_blocks=tx_blocks)
