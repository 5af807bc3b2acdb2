"""Envelope signatures checked in a worker process, in batches, off the event loop.

ECDSA verification (~80 µs) is the largest part of Broadcast's own work per envelope,
and `cryptography` holds the GIL while it runs, so a thread would not help. The
orderer runs one worker: a child Python process (`python -m orderer.signature_worker`,
started with exec, never a bare fork of the gRPC process) that reads batches of
`SignatureItem`s on its stdin and writes one verdict per item on its stdout: None when
the signature verifies, else the reason. The event loop only moves bytes through
asyncio's non-blocking pipes; a frame is a 4-byte big-endian length and a pickle.

Batches are answered in the order they were sent. While the worker is not running
(not started, died, restarting) batches are verified in this process by the same
function (`signature_verdicts`), so a verdict never depends on where it was reached.
The worker exits when its stdin closes, which also happens when the orderer is killed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import pickle
import signal
import struct
import sys
from collections.abc import Sequence
from typing import BinaryIO

from common.crypto import verify_signature
from common.errors import CryptoError

__all__ = [
    "SignatureItem",
    "SignatureWorker",
    "Verdict",
    "signature_verdict",
    "signature_verdicts",
]

_LOG = logging.getLogger(__name__)

SignatureItem = tuple[bytes, bytes, bytes]
"""(certificate PEM or DER, signed message, DER signature)."""

Verdict = str | None
"""None: the signature verifies; else why it does not."""

_HEADER = struct.Struct(">I")
RESTART_INTERVAL_S = 1.0
STOP_TIMEOUT_S = 5.0


def signature_verdict(item: SignatureItem) -> Verdict:
    """Verify one signature (the certificate's parse is cached by its bytes)."""
    certificate, message, signature = item
    try:
        verify_signature(certificate, signature=signature, message=message)
    except CryptoError as error:
        return str(error)
    return None


def signature_verdicts(items: Sequence[SignatureItem]) -> list[Verdict]:
    """One verdict per item, in order."""
    return [signature_verdict(item) for item in items]


class SignatureWorker:
    """One worker process verifying batches for the event loop that started it."""

    def __init__(
        self,
        *,
        command: Sequence[str] | None = None,
        restart_interval_s: float = RESTART_INTERVAL_S,
    ) -> None:
        """`restart_interval_s`: the least time between two starts of the process."""
        self._restart_interval_s = restart_interval_s
        self._command = (
            list(command)
            if command is not None
            else [sys.executable, "-m", "orderer.signature_worker"]
        )
        self._process: asyncio.subprocess.Process | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._waiting: collections.deque[
            tuple[Sequence[SignatureItem], asyncio.Future[list[Verdict]]]
        ] = collections.deque()
        self._starting: asyncio.Task[None] | None = None
        self._spawning = False
        self._last_start = -restart_interval_s
        self._closed = False

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def started(self) -> bool:
        """Wait for a (re)start under way; whether the process runs now."""
        if self._starting is not None:
            await asyncio.shield(self._starting)
        return self.running

    async def start(self) -> None:
        """Start the worker process (batches are verified here until it runs)."""
        if self._closed or self._spawning or self._process is not None:
            return
        self._spawning = True
        self._last_start = asyncio.get_running_loop().time()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            _LOG.warning("signature worker did not start: %s", error)
            return
        finally:
            self._spawning = False
        if self.closed:  # closed while the process started
            await _stop(process)
            return
        self._process = process
        self._receiver = asyncio.ensure_future(self._receive(process))

    def verify(self, items: Sequence[SignatureItem]) -> asyncio.Future[list[Verdict]]:
        """The verdicts of `items`, in order; batches resolve in the order sent."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Verdict]] = loop.create_future()
        process = self._process
        if process is None or process.stdin is None:
            self._restart_soon(loop)
            future.set_result(signature_verdicts(items))
            return future
        frame = pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            process.stdin.write(_HEADER.pack(len(frame)) + frame)
        except (ConnectionError, RuntimeError):
            future.set_result(signature_verdicts(items))
            return future
        self._waiting.append((items, future))
        return future

    async def close(self) -> None:
        """Stop the worker; batches still waiting are verified here."""
        self._closed = True
        if self._starting is not None:
            self._starting.cancel()
        process, self._process = self._process, None
        if process is not None:
            await _stop(process)
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver
        self._answer_here()

    async def _receive(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                header = await process.stdout.readexactly(_HEADER.size)
                body = await process.stdout.readexactly(_HEADER.unpack(header)[0])
                verdicts: list[Verdict] = pickle.loads(body)
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_result(verdicts)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError) as error:
            if not self._closed:
                _LOG.warning("signature worker stopped (%r); verifying here", error)
        finally:
            if self._process is process:
                self._process = None
            self._answer_here()

    def _answer_here(self) -> None:
        while self._waiting:
            items, future = self._waiting.popleft()
            if not future.done():
                future.set_result(signature_verdicts(items))

    def _restart_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed or self._spawning:
            return
        if loop.time() - self._last_start < self._restart_interval_s:
            return
        self._starting = asyncio.ensure_future(self.start())


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The worker's loop: a batch in, its verdicts out, until `source` closes."""
    while len(header := source.read(_HEADER.size)) == _HEADER.size:
        body = source.read(_HEADER.unpack(header)[0])
        verdicts = signature_verdicts(pickle.loads(body))
        frame = pickle.dumps(verdicts, protocol=pickle.HIGHEST_PROTOCOL)
        sink.write(_HEADER.pack(len(frame)) + frame)
        sink.flush()


def main() -> None:
    # The orderer decides when the worker stops: by closing its stdin (its death
    # closes it too). A signal sent to the whole process group, such as Ctrl-C or a
    # launcher's SIGTERM, leaves the worker to serve the orderer's drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
