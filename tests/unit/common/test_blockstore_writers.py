"""Two threads appending the same block: one stores it, the other is refused, the
files stay consistent (the orderer's etcd follower once released its lock while its
append thread ran on, and a second append of that block corrupted the store).

Method: the store's record writer is wrapped so that the first append, once inside
it, waits up to 0.5 s for a second append to get there too (without the store's
writer lock both pass the height check and write; with it the second waits for the
first). Then both results are compared and the store is reopened.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from common.blockstore import BlockStore
from common.errors import BlockRejected
from tests.unit.common.test_blockstore import make_chain

RACE_WINDOW_S = 0.5


def test_a_block_appended_by_two_threads_at_once_is_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis, block = make_chain(2)
    store = BlockStore.open(tmp_path)
    store.append(genesis)
    inside = threading.Event()
    write = store._write

    second_arrived = threading.Event()

    def contended_write(*args: Any) -> Any:
        if not inside.is_set():
            inside.set()
            second_arrived.wait(RACE_WINDOW_S)  # the second append, if it gets here
        else:
            second_arrived.set()
        return write(*args)

    monkeypatch.setattr(store, "_write", contended_write)
    outcomes: list[BaseException | None] = []

    def append() -> None:
        try:
            store.append(block)
            outcomes.append(None)
        except Exception as error:
            outcomes.append(error)

    first = threading.Thread(target=append)
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=append)
    second.start()
    first.join(10)
    second.join(10)

    assert outcomes[0] is None
    assert isinstance(outcomes[1], BlockRejected), outcomes
    assert store.height == 2
    store.close()
    with BlockStore.open(tmp_path) as reopened:
        assert reopened.height == 2
        assert reopened.block_bytes(1) == block.SerializeToString()


def test_closing_waits_for_an_append_in_another_thread(tmp_path: Path) -> None:
    """The block an append has started is on disk and indexed when close returns."""
    genesis, block = make_chain(2)
    store = BlockStore.open(tmp_path)
    store.append(genesis)
    inside, release = threading.Event(), threading.Event()
    write = store._write

    def slow_write(*args: Any) -> Any:
        inside.set()
        release.wait(5)
        return write(*args)

    store._write = slow_write  # type: ignore[method-assign]
    appending = threading.Thread(target=store.append, args=(block,))
    appending.start()
    assert inside.wait(5)
    closing = threading.Thread(target=store.close)
    closing.start()
    release.set()
    appending.join(10)
    closing.join(10)

    with BlockStore.open(tmp_path) as reopened:
        assert reopened.height == 2
