"""Which chaincodes are running on this peer, by package id.

A chaincode is known here once its stream has completed the handshake
(REGISTER → REGISTERED → READY). Launchers and service dialers `expect` the
package ids they are bringing up; `wait_ready` then waits (bounded) for the
registration, and fails at once for a package nobody is bringing up. A second
registration of a running package id is refused, as is a registration nobody
expected unless `allow_unsolicited` is set (Fabric's development mode). When a
stream ends its handler leaves the registry: the chaincode is unavailable until
it registers again.

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
        self._handlers: dict[str, ChaincodeHandler] = {}
        self._ready: dict[str, ChaincodeHandler] = {}
        self._expected: Counter[str] = Counter()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ launchers

    def expect(self, package_id: str) -> None:
        """A launcher or dialer is bringing this package up (call `forget` when it stops)."""
        self._expected[package_id] += 1

    def forget(self, package_id: str) -> None:
        self._expected[package_id] -= 1
        if self._expected[package_id] <= 0:
            del self._expected[package_id]
        self._notify()

    def is_expected(self, package_id: str) -> bool:
        return self._expected[package_id] > 0

    # ------------------------------------------------------------ Registrar

    def register(self, handler: ChaincodeHandler) -> None:
        package_id = handler.package_id
        if package_id in self._handlers:
            raise ChaincodeError(
                f"duplicate chaincode id: {package_id} is already registered"
            )
        if not self._allow_unsolicited and not self.is_expected(package_id):
            raise ChaincodeError(
                f"peer will not accept a connection from chaincode {package_id}: "
                "it was not launched or configured on this peer"
            )
        self._handlers[package_id] = handler

    def ready(self, handler: ChaincodeHandler) -> None:
        if self._handlers.get(handler.package_id) is handler:
            self._ready[handler.package_id] = handler
            self._notify()

    def deregister(self, handler: ChaincodeHandler) -> None:
        package_id = handler.package_id
        if self._handlers.get(package_id) is handler:
            del self._handlers[package_id]
            self._ready.pop(package_id, None)
            self._notify()

    # ------------------------------------------------------------ users

    def handler(self, package_id: str) -> ChaincodeHandler | None:
        """The ready handler of the package, or None."""
        return self._ready.get(package_id)

    def package_ids(self) -> list[str]:
        """Package ids of the ready chaincodes, sorted."""
        return sorted(self._ready)

    async def wait_ready(
        self, package_id: str, *, timeout_s: float
    ) -> ChaincodeHandler:
        """The ready handler, waiting up to `timeout_s` while the package is coming up.

        Raises:
            ChaincodeUnavailable: nobody brings the package up, or it did not register
                in time.
        """
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    handler = self._ready.get(package_id)
                    if handler is not None:
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
        handlers = list(self._handlers.values())
        for handler in handlers:
            handler.close(reason)
        for handler in handlers:
            await handler.wait_closed()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
