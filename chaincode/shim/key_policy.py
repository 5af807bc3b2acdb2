"""Key-level endorsement policies: which organisations must endorse changes to a key.

`KeyEndorsementPolicy` edits the set of organisations and renders it as the
SignaturePolicyEnvelope bytes that `set_state_validation_parameter` stores: one
signature from each organisation (in the given role), organisations sorted by MSP id,
exactly as Fabric's state-based endorsement helper builds it.
"""

from __future__ import annotations

from chaincode.shim.messages import parse
from common.errors import PolicyError, WireError
from common.policies import (
    Gate,
    Principal,
    Role,
    envelope_from_gate,
    principal_from_proto,
)
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2

ADDABLE_ROLES = frozenset({Role.MEMBER, Role.PEER})
"""The roles an organisation can be added with (as in Fabric)."""


class KeyEndorsementPolicy:
    """A mutable set of organisations whose endorsement a key requires.

    Raises (on construction):
        PolicyError: `policy` is not a SignaturePolicyEnvelope.
    """

    def __init__(self, policy: bytes = b"") -> None:
        self._orgs: dict[str, Role] = {}
        if policy:
            for principal in _role_principals(policy):
                self._orgs[principal.mspid] = principal.role

    def add_orgs(self, role: Role | str, *mspids: str) -> None:
        """Require an endorsement from each of `mspids`, by an identity in `role`.

        Raises:
            ValueError: the role is not MEMBER or PEER, or an MSP id is empty.
        """
        chosen = _role(role)
        if chosen not in ADDABLE_ROLES:
            raise ValueError(f"role {chosen.name} cannot be used; use MEMBER or PEER")
        for mspid in mspids:
            if not mspid:
                raise ValueError("an MSP id must not be empty")
            self._orgs[mspid] = chosen

    def delete_orgs(self, *mspids: str) -> None:
        """Stop requiring endorsements from `mspids` (unknown ids are ignored)."""
        for mspid in mspids:
            self._orgs.pop(mspid, None)

    def list_orgs(self) -> list[str]:
        """The organisations currently required, sorted."""
        return sorted(self._orgs)

    def get_policy(self) -> bytes:
        """The policy as marshaled SignaturePolicyEnvelope bytes."""
        principals = tuple(
            Principal(mspid, self._orgs[mspid]) for mspid in self.list_orgs()
        )
        envelope = envelope_from_gate(Gate(n=len(principals), rules=principals))
        return envelope.SerializeToString(deterministic=True)


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(role.lower())
    except ValueError:
        raise ValueError(f"unknown role {role!r}") from None


def _role_principals(policy: bytes) -> list[Principal]:
    """The MSP-role principals of an envelope; other principal kinds are skipped."""
    try:
        envelope = parse(
            policies_pb2.SignaturePolicyEnvelope, policy, what="key endorsement policy"
        )
    except WireError as error:
        raise PolicyError(str(error)) from None
    return [
        principal_from_proto(identity)
        for identity in envelope.identities
        if identity.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
    ]
