"""Endorsement plans: which organisations' peers must endorse, as a pure computation.

What a proposal needs is a set of `Requirements`: the policies every endorsement set
must satisfy at once — the chaincode's endorsement policy (unless the call disregards
it), the endorsement policies of the collections it writes, and the key-level policies
its writes touch — and, optionally, the organisations allowed to endorse (collection
members when private data is read or transient data must stay protected).

`plan_layouts` turns requirements into *layouts*, the minimal combinations of
"n endorsements from organisation X" that satisfy every policy, smallest first and,
among equals, the ones that include the preferred (the gateway's own) organisation.
A layout is checked with the same policy evaluation the validator runs: each planned
endorsement is a stand-in identity that satisfies its organisation's `member` and
`peer` principals and nothing else, as a real peer's endorsement would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from common.errors import MalformedIdentity, PolicyNotSatisfied
from common.policies import Policy
from protos.msp import msp_principal_pb2

__all__ = [
    "MAX_ENDORSEMENTS_PER_ORG",
    "Layout",
    "PlannedEndorser",
    "PlanningMsps",
    "Requirements",
    "plan_layouts",
    "satisfies",
]

MAX_ENDORSEMENTS_PER_ORG = 3
"""Layouts never ask one organisation for more endorsements than this."""

_MAX_CANDIDATES = 20_000
_MAX_LAYOUTS = 64
_PEER_ROLES = frozenset(
    {msp_principal_pb2.MSPRole.MEMBER, msp_principal_pb2.MSPRole.PEER}
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Endorsements needed per organisation: `((mspid, count), ...)` sorted by MSP id."""

    counts: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Layout:
        return cls(tuple(sorted((org, n) for org, n in counts.items() if n > 0)))

    @property
    def orgs(self) -> tuple[str, ...]:
        return tuple(org for org, _ in self.counts)

    @property
    def size(self) -> int:
        return sum(n for _, n in self.counts)

    def count(self, mspid: str) -> int:
        return dict(self.counts).get(mspid, 0)

    def covers(self, other: Layout) -> bool:
        """Whether this layout asks at least as much of every org as `other` does."""
        mine = dict(self.counts)
        return all(mine.get(org, 0) >= n for org, n in other.counts)

    def __str__(self) -> str:
        return " + ".join(f"{n}×{org}" for org, n in self.counts) or "nobody"


@dataclass(frozen=True, slots=True)
class Requirements:
    """What an endorsement set must satisfy; `allowed_orgs` None means any organisation.

    `description` names the policies for error messages.
    """

    policies: tuple[Policy, ...]
    allowed_orgs: frozenset[str] | None = None
    description: str = field(default="", compare=False)

    def restricted_to(self, orgs: Iterable[str]) -> Requirements:
        """The same policies, endorsed only by `orgs` (and the current restriction)."""
        allowed = frozenset(orgs)
        if self.allowed_orgs is not None:
            allowed &= self.allowed_orgs
        return Requirements(self.policies, allowed, self.description)


@dataclass(frozen=True, slots=True)
class PlannedEndorser:
    """A stand-in for one future endorsement by a peer of `mspid`."""

    mspid: str
    index: int

    @property
    def serialized(self) -> bytes:
        return f"{self.mspid}#{self.index}".encode()

    def verify(self, message: bytes, signature: bytes) -> None:
        """Planned endorsements carry no signature to check."""


class PlanningMsps:
    """The MSP view of planning: a peer of an org holds its member and peer roles only."""

    def deserialize_identity(self, serialized: bytes) -> PlannedEndorser:
        raise MalformedIdentity("planning identities are never deserialised")

    def validate(self, identity: PlannedEndorser) -> None:
        """Every planned endorser is valid."""

    def satisfies_principal(
        self, identity: PlannedEndorser, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        return _peer_role_mspid(principal) == identity.mspid


_PLANNING_MSPS = PlanningMsps()


def satisfies(policies: Sequence[Policy], layout: Layout) -> bool:
    """Whether endorsements laid out as `layout` would satisfy every policy.

    Raises:
        PolicyError: a policy is malformed.
    """
    endorsers = [
        PlannedEndorser(org, index) for org, n in layout.counts for index in range(n)
    ]
    for policy in policies:
        try:
            policy.evaluate_identities(endorsers, _PLANNING_MSPS)
        except PolicyNotSatisfied:
            return False
    return True


def plan_layouts(
    requirements: Requirements,
    available: Mapping[str, int],
    *,
    preferred: str | None = None,
) -> tuple[Layout, ...]:
    """The minimal layouts that satisfy `requirements` with the peers `available`.

    `available` counts the usable peers of each organisation. Layouts come smallest
    first; among layouts of one size, those including `preferred` come first, then in
    MSP id order. Empty when no combination of the available peers satisfies them.

    Raises:
        PolicyError: a policy is malformed.
    """
    caps = {
        org: min(count, MAX_ENDORSEMENTS_PER_ORG)
        for org, count in sorted(available.items())
        if count > 0
        and (requirements.allowed_orgs is None or org in requirements.allowed_orgs)
    }
    found: list[Layout] = []
    for candidate in _candidates(caps):
        if any(candidate.covers(layout) for layout in found):
            continue
        if satisfies(requirements.policies, candidate):
            found.append(candidate)
            if len(found) >= _MAX_LAYOUTS:
                break
    return tuple(sorted(found, key=lambda layout: _rank(layout, preferred)))


def _rank(layout: Layout, preferred: str | None) -> tuple[int, int, tuple[str, ...]]:
    return (layout.size, 0 if preferred in layout.orgs else 1, layout.orgs)


def _candidates(caps: Mapping[str, int]) -> Iterator[Layout]:
    """Every combination within `caps`, by increasing total size (bounded)."""
    orgs = list(caps)
    produced = 0
    for size in range(1, sum(caps.values()) + 1):
        for chosen in itertools.combinations_with_replacement(orgs, size):
            counts: dict[str, int] = {}
            for org in chosen:
                counts[org] = counts.get(org, 0) + 1
            if any(n > caps[org] for org, n in counts.items()):
                continue
            produced += 1
            if produced > _MAX_CANDIDATES:
                return
            yield Layout.of(counts)


def _peer_role_mspid(principal: msp_principal_pb2.MSPPrincipal) -> str | None:
    """The MSP whose peers hold this principal, None when no peer endorsement does."""
    if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
        return None
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(principal.principal)
    except DecodeError:
        return None
    return role.msp_identifier if role.role in _PEER_ROLES else None
