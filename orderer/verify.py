"""Envelope signature checks in worker processes, for Broadcast streams under load.

ECDSA verification holds the GIL, so threads do not help; with `verify_workers > 0`
the orderer hands signatures to a process pool in batches (up to `batch_max`, or
whatever arrived within `linger_s`), keeping the event loop free for gRPC. Each item
is (public key DER, message, signature); workers cache parsed keys. The answer per
item is "" when the signature verifies, else the reason.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from common.crypto import PublicKey
from common.errors import CryptoError
from orderer.errors import BackendUnavailable

__all__ = ["PoolVerifier", "verify_batch"]

KEY_CACHE_SIZE = 4096
_KEYS: dict[bytes, PublicKey] = {}

Item = tuple[bytes, bytes, bytes]


def verify_batch(items: Sequence[Item]) -> list[str]:
    """Runs in a worker: verify each (key DER, message, signature); "" means valid."""
    answers = []
    for key_der, message, signature in items:
        try:
            key = _KEYS.get(key_der)
            if key is None:
                if len(_KEYS) >= KEY_CACHE_SIZE:
                    _KEYS.clear()
                key = _KEYS[key_der] = PublicKey.from_pem(key_der)
            key.verify(signature, message)
        except CryptoError as error:
            answers.append(str(error) or "invalid signature")
        else:
            answers.append("")
    return answers


class PoolVerifier:
    """Batches verification requests from the event loop to worker processes."""

    def __init__(
        self, workers: int, *, batch_max: int = 64, linger_s: float = 0.001
    ) -> None:
        assert workers > 0, workers
        self._pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn")
        )
        self._workers = workers
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._items: list[Item] = []
        self._futures: list[asyncio.Future[str]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def warm_up(self) -> None:
        """Start every worker now rather than on the first envelopes."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, verify_batch, [])
                for _ in range(self._workers)
            )
        )

    def verify(
        self, key_der: bytes, message: bytes, signature: bytes
    ) -> asyncio.Future[str]:
        """A future of "" (valid) or the reason the signature does not verify."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._items.append((key_der, message, signature))
        self._futures.append(future)
        if len(self._items) >= self._batch_max:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger_s, self._flush)
        return future

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for future in self._futures:
            if not future.done():
                future.set_exception(BackendUnavailable("orderer is stopping"))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, futures = self._items, self._futures
        self._items, self._futures = [], []
        if not items:
            return
        done = self._pool.submit(verify_batch, items)
        loop = asyncio.get_running_loop()
        done.add_done_callback(
            lambda finished: loop.call_soon_threadsafe(_resolve, futures, finished)
        )


def _resolve(futures: list[asyncio.Future[str]], finished: Future[list[str]]) -> None:
    error = finished.exception() if not finished.cancelled() else None
    answers = None if finished.cancelled() or error else finished.result()
    for index, future in enumerate(futures):
        if future.done():
            continue
        if answers is None:
            future.set_exception(
                BackendUnavailable(f"signature workers failed: {error}")
            )
        else:
            future.set_result(answers[index])
