"""Which chaincodes are running on this peer, by package id.

A chaincode is known here once its stream has completed the handshake
(REGISTER → REGISTERED → READY). Launchers and service dialers `expect` the
package ids they are bringing up; `wait_ready` then waits (bounded) for the
registration, and fails at once for a package nobody is bringing up. A
registration nobody expected is refused unless `allow_unsolicited` is set
(Fabric's development mode).

A package has one stream, as in Fabric, unless whoever brings it up expects
more (`expect(package_id, streams=n)`: the launcher tells our Python SDK to open
that many, see `peer.chaincode.launcher`): then up to `n` streams may register
under the same package id and `handler` hands new transactions to them in turn.
One gRPC stream carries one message at a time each way, so spreading
transactions over a few streams lets gRPC batch their messages (about 15-20 %
less CPU per endorsement on both sides, see `network.bench_endorse`). A
registration beyond the expected number is refused as a duplicate, as Fabric
refuses any second one. When a stream ends its handler leaves the registry: the
chaincode is unavailable once none is left.

All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from peer.chaincode.handler import ChaincodeHandler
from peer.errors import ChaincodeError, ChaincodeUnavailable

__all__ = ["ChaincodeRegistry"]


class ChaincodeRegistry:
    """Running chaincode handlers by package id, with waiting for registration."""

    def __init__(self, *, allow_unsolicited: bool = False) -> None:
        self._allow_unsolicited = allow_unsolicited
        self._handlers: dict[str, list[ChaincodeHandler]] = {}
        self._ready: dict[str, list[ChaincodeHandler]] = {}
        self._expected: Counter[str] = Counter()
        self._streams: dict[str, int] = {}
        self._turn = 0
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ launchers

    def expect(self, package_id: str, *, streams: int = 1) -> None:
        """A launcher or dialer is bringing this package up (call `forget` when it stops).

        `streams` is how many streams the chaincode may open under this package id.
        """
        self._expected[package_id] += 1
        self._streams[package_id] = max(streams, self._streams.get(package_id, 1))

    def forget(self, package_id: str) -> None:
        self._expected[package_id] -= 1
        if self._expected[package_id] <= 0:
            del self._expected[package_id]
            self._streams.pop(package_id, None)
        self._notify()

    def is_expected(self, package_id: str) -> bool:
        return self._expected[package_id] > 0

    # ------------------------------------------------------------ Registrar

    def register(self, handler: ChaincodeHandler) -> None:
        package_id = handler.package_id
        registered = self._handlers.get(package_id, [])
        if len(registered) >= self._streams.get(package_id, 1):
            raise ChaincodeError(
                f"duplicate chaincode id: {package_id} is already registered"
            )
        if not self._allow_unsolicited and not self.is_expected(package_id):
            raise ChaincodeError(
                f"peer will not accept a connection from chaincode {package_id}: "
                "it was not launched or configured on this peer"
            )
        self._handlers[package_id] = [*registered, handler]

    def ready(self, handler: ChaincodeHandler) -> None:
        package_id = handler.package_id
        if handler in self._handlers.get(package_id, ()):
            self._ready[package_id] = [*self._ready.get(package_id, ()), handler]
            self._notify()

    def deregister(self, handler: ChaincodeHandler) -> None:
        package_id = handler.package_id
        registered = self._handlers.get(package_id, [])
        if handler not in registered:
            return
        _set_or_drop(self._handlers, package_id, _without(registered, handler))
        ready = self._ready.get(package_id, [])
        _set_or_drop(self._ready, package_id, _without(ready, handler))
        self._notify()

    # ------------------------------------------------------------ users

    def handler(
        self, package_id: str, key: tuple[str, str] | None = None
    ) -> ChaincodeHandler | None:
        """A ready handler of the package, or None.

        With several streams: the one already running transaction `key` (channel,
        tx id) if any, so a chaincode calling itself meets its own transaction as
        in Fabric; else the next in turn.
        """
        ready = self._ready.get(package_id)
        if not ready:
            return None
        if len(ready) == 1:
            return ready[0]
        if key is not None:
            for handler in ready:
                if handler.is_running(key):
                    return handler
        self._turn += 1
        return ready[self._turn % len(ready)]

    def handlers(self, package_id: str) -> list[ChaincodeHandler]:
        """Every ready handler (stream) of the package."""
        return list(self._ready.get(package_id, ()))

    def package_ids(self) -> list[str]:
        """Package ids of the ready chaincodes, sorted."""
        return sorted(self._ready)

    async def wait_ready(
        self, package_id: str, *, timeout_s: float, streams: int = 1
    ) -> ChaincodeHandler:
        """A ready handler, waiting up to `timeout_s` while the package is coming up.

        With `streams` > 1 it waits until that many streams of the package are ready.

        Raises:
            ChaincodeUnavailable: nobody brings the package up, or it did not register
                in time.
        """
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    if len(self._ready.get(package_id, ())) >= streams:
                        handler = self.handler(package_id)
                        assert handler is not None
                        return handler
                    if not self._allow_unsolicited and not self.is_expected(package_id):
                        raise ChaincodeUnavailable(
                            f"chaincode {package_id} is not running on this peer"
                        )
                    await self._changed.wait()
        except TimeoutError:
            raise ChaincodeUnavailable(
                f"chaincode {package_id} did not register within {timeout_s:g} s"
            ) from None

    async def close_all(self, reason: str) -> None:
        """End every chaincode stream and wait until they are gone."""
        handlers = [
            handler for streams in self._handlers.values() for handler in streams
        ]
        for handler in handlers:
            handler.close(reason)
        for handler in handlers:
            await handler.wait_closed()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _without(
    handlers: list[ChaincodeHandler], gone: ChaincodeHandler
) -> list[ChaincodeHandler]:
    return [handler for handler in handlers if handler is not gone]


def _set_or_drop(
    table: dict[str, list[ChaincodeHandler]],
    package_id: str,
    handlers: list[ChaincodeHandler],
) -> None:
    if handlers:
        table[package_id] = handlers
    else:
        table.pop(package_id, None)
