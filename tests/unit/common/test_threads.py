"""A cancelled caller of `in_thread_to_completion` waits for its thread to end.

Method: a writer holds an asyncio lock around work blocked in a thread; the writer is
cancelled; for 0.2 s it must stay running with the lock held, then, once the work is
released, it ends cancelled after the work finished.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from common.threads import in_thread_to_completion, wait_out

STILL_RUNNING_S = 0.2


async def test_a_cancelled_caller_keeps_its_lock_until_the_thread_ends() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> str:
        started.set()
        release.wait(10)
        finished.append("work")
        return "done"

    lock = asyncio.Lock()

    async def writer() -> str:
        async with lock:
            return await in_thread_to_completion(work)

    task = asyncio.create_task(writer())
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=STILL_RUNNING_S)

    assert not done
    assert lock.locked()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["work"]
    assert not lock.locked()


async def test_results_and_errors_come_back_as_from_the_function() -> None:
    def fail() -> None:
        raise ValueError("bad block")

    assert await in_thread_to_completion(lambda: 7) == 7
    with pytest.raises(ValueError, match="bad block"):
        await in_thread_to_completion(fail)


async def test_wait_out_consumes_a_failure() -> None:
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(ValueError("dropped"))

    await wait_out(failed)  # returns; the error is retrieved, not raised
