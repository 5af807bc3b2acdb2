"""The channel's MSPs at one moment, remembering every verdict for the rest of a block.

Validate phase. A block's 500 transactions are mostly signed by a handful of clients and
endorsing peers, so each identity is validated, and each (identity, principal) pair
judged, once per moment instead of once per signature and policy leaf. The verdicts
are the MSP's own; only the repetition goes.
"""

from __future__ import annotations

from common.errors import IdentityError
from common.msp import Identity, MspManager
from protos.msp import msp_principal_pb2

__all__ = ["MomentMsps"]


class MomentMsps:
    """An `MspManager` fixed at one time, with memoized validation and principal checks.

    Satisfies the `MspSource` protocol of `common.policies`, so policies evaluate
    against it directly. Principals are remembered by identity of the message object
    (policies are compiled once per block), and each is kept alive by the cache.
    """

    __slots__ = ("_identities", "_msps", "_principals", "_validity")

    def __init__(
        self,
        msps: MspManager,
        *,
        identities: dict[bytes, Identity | IdentityError] | None = None,
    ) -> None:
        """`identities` may be shared between moments: parsing does not depend on time."""
        self._msps = msps
        self._identities = {} if identities is None else identities
        self._validity: dict[bytes, IdentityError | None] = {}
        self._principals: dict[
            tuple[bytes, int], tuple[msp_principal_pb2.MSPPrincipal, bool]
        ] = {}

    def deserialize_identity(self, serialized: bytes) -> Identity:
        """Raises the `IdentityError` the MSP raised the first time, if any."""
        known = self._identities.get(serialized)
        if known is None:
            try:
                known = self._msps.deserialize_identity(serialized)
            except IdentityError as error:
                known = error
            self._identities[serialized] = known
        if isinstance(known, IdentityError):
            raise known.with_traceback(None)
        return known

    def validate(self, identity: Identity) -> None:
        """Raises the `IdentityError` the MSP raised the first time, if any."""
        key = identity.serialized
        if key not in self._validity:
            try:
                self._msps.validate(identity)
            except IdentityError as error:
                self._validity[key] = error
            else:
                self._validity[key] = None
        failure = self._validity[key]
        if failure is not None:
            raise failure.with_traceback(None)

    def satisfies_principal(
        self, identity: Identity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        key = (identity.serialized, id(principal))
        cached = self._principals.get(key)
        if cached is None:
            cached = (principal, self._msps.satisfies_principal(identity, principal))
            self._principals[key] = cached
        return cached[1]
