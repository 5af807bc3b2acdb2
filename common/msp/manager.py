"""The channel's MSPs by id: dispatch deserialization, validation and principals.

Policies, the validator and the endorser see only this duck-typed surface:
`deserialize_identity`, `validate` and `satisfies_principal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from common.errors import ConfigError, UnknownMsp
from common.msp.identity import Identity, parse_serialized_identity
from common.msp.provider import Msp
from protos.msp import msp_config_pb2, msp_principal_pb2


class MspManager(Mapping[str, Msp]):
    """An immutable mapping mspid → Msp for one channel.

    Validity periods are checked at `at`, or at the current time when it is None.
    Block validation must use a time taken from the block (see `at_time`), so
    that every peer reaches the same verdict whenever it validates.
    """

    def __init__(self, msps: Iterable[Msp], *, at: datetime | None = None) -> None:
        """Raises ConfigError when two MSPs share an id."""
        self._at = at
        self._msps: dict[str, Msp] = {}
        for msp in msps:
            if msp.mspid in self._msps:
                raise ConfigError(f"msp id {msp.mspid!r} is defined twice")
            self._msps[msp.mspid] = msp

    @classmethod
    def from_configs(
        cls, configs: Iterable[msp_config_pb2.FabricMSPConfig]
    ) -> MspManager:
        """Build every MSP from its FabricMSPConfig."""
        return cls(Msp(config) for config in configs)

    def at_time(self, at: datetime | None) -> MspManager:
        """The same MSPs (and caches), checking validity periods at `at`."""
        return MspManager(self._msps.values(), at=at)

    def __getitem__(self, mspid: str) -> Msp:
        return self._msps[mspid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._msps)

    def __len__(self) -> int:
        return len(self._msps)

    def msp(self, mspid: str) -> Msp:
        """The MSP with this id.

        Raises:
            UnknownMsp: no such MSP on this channel.
        """
        msp = self._msps.get(mspid)
        if msp is None:
            known = ", ".join(sorted(self._msps)) or "none"
            raise UnknownMsp(
                f"msp {mspid!r} is not known here (known: {known})", mspid=mspid
            )
        return msp

    def deserialize_identity(self, serialized: bytes) -> Identity:
        """Parse SerializedIdentity bytes with the MSP they name (not validated).

        Raises:
            MalformedIdentity: not a SerializedIdentity with a PEM certificate.
            UnknownMsp: the named MSP is not on this channel.
        """
        mspid, _ = parse_serialized_identity(serialized)
        return self.msp(mspid).deserialize_identity(serialized)

    def validate(self, identity: Identity, *, at: datetime | None = None) -> None:
        """Validate the identity with its own MSP, at `at` or the manager's time.

        Raises:
            IdentityError: see `Msp.validate`; UnknownMsp for an unknown MSP.
        """
        self.msp(identity.mspid).validate(identity, at=at or self._at)

    def satisfies_principal(
        self, identity: Identity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        """True when the identity, valid in its own MSP, matches the principal."""
        msp = self._msps.get(identity.mspid)
        if msp is None:
            return False
        return msp.satisfies_principal(identity, principal, at=self._at)

    def __repr__(self) -> str:
        return f"MspManager({sorted(self._msps)})"
