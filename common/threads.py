"""Blocking work in a worker thread that a cancelled caller does not leave behind.

`asyncio.to_thread` cannot stop its thread: when the awaiting task is cancelled the
await ends at once while the function runs on. A caller that holds a lock for the
work (one writer at a time: a block append, a commit) would then release the lock and
let the next writer start beside the one still running — two threads writing the
same block. `in_thread_to_completion` delivers a cancellation only once the thread
has ended, so the lock is released after the work, never during it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_thread_to_completion", "wait_out"]

T = TypeVar("T")


async def in_thread_to_completion(function: Callable[[], T]) -> T:
    """`function()` in a worker thread; its result, or its exception.

    Raises:
        asyncio.CancelledError: the caller was cancelled; raised once `function` has
            returned or failed (its outcome is then dropped).
    """
    work = asyncio.ensure_future(asyncio.to_thread(function))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await wait_out(work)
        raise


async def wait_out(work: asyncio.Future[T]) -> None:
    """Return once `work` is done, through any cancellation meanwhile; its outcome
    is consumed (not reported) — the caller is on its way out already."""
    while not work.done():
        try:
            await asyncio.wait([work])
        except asyncio.CancelledError:
            continue
    if not work.cancelled():
        work.exception()
