"""Evaluating a `SignaturePolicyEnvelope` against signed data, with Fabric's semantics.

Used at commit for endorsement policies, by the orderer and peers for channel policies
(through `common.policies.manager`), and by the gateway for endorsement planning
(`satisfied_by_orgs`). Evaluation has two steps, as in Fabric:

1. the signed data becomes a list of *valid identities*: each identity deserialised,
   validated by its MSP and its signature verified; invalid entries are dropped and an
   identity that appears twice counts once;
2. the rule tree is evaluated greedily: `signed_by(i)` takes the first unused identity
   that satisfies principal i and marks it used; an n-out-of gate evaluates every
   sub-rule on a tentative copy of the marks, keeps the marks of the sub-rules that
   succeed and passes when at least n succeeded. So no identity serves two principals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError

from common.errors import (
    CryptoError,
    IdentityError,
    PolicyError,
    PolicyNotSatisfied,
)
from common.policies.envelope import principal_from_proto
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2

__all__ = [
    "CompiledEnvelope",
    "Identity",
    "MspSource",
    "NOutOf",
    "SignedBy",
    "SignedData",
    "compile_envelope",
    "evaluate_identities",
    "evaluate_signature_policy",
    "is_satisfied",
    "satisfied_by_orgs",
    "valid_identities",
]

logger = logging.getLogger(__name__)

_MAX_DEPTH = 100
_PLANNING_ROLES = frozenset(
    {msp_principal_pb2.MSPRole.MEMBER, msp_principal_pb2.MSPRole.PEER}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedData:
    """A `signature` over `data` by `identity` (serialized `msp.SerializedIdentity`)."""

    data: bytes
    identity: bytes
    signature: bytes


class Identity(Protocol):
    """The part of an MSP identity that policy evaluation uses."""

    @property
    def mspid(self) -> str: ...

    @property
    def serialized(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise `InvalidSignature` unless this identity signed `message`."""


IdentityT = TypeVar("IdentityT", bound=Identity)


class MspSource(Protocol[IdentityT]):
    """The channel's MSPs as policy evaluation sees them (`common.msp.MspManager`)."""

    def deserialize_identity(self, serialized: bytes) -> IdentityT:
        """Raise `IdentityError` when the bytes are not an identity of a known MSP."""

    def validate(self, identity: IdentityT) -> None:
        """Raise `IdentityError` when the identity is not valid for its MSP."""

    def satisfies_principal(
        self, identity: IdentityT, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class SignedBy:
    """Leaf of a compiled rule: a signature from a holder of principal `index`."""

    index: int


@dataclass(frozen=True, slots=True)
class NOutOf:
    """Gate of a compiled rule: at least `n` of `rules`."""

    n: int
    rules: tuple[SignedBy | NOutOf, ...]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledEnvelope:
    """A checked envelope: a rule tree whose indices all point into `principals`."""

    rule: SignedBy | NOutOf
    principals: tuple[msp_principal_pb2.MSPPrincipal, ...]


def evaluate_signature_policy(
    envelope: policies_pb2.SignaturePolicyEnvelope | CompiledEnvelope,
    signed_data: Sequence[SignedData],
    msps: MspSource[IdentityT],
) -> None:
    """Check that the signatures satisfy the policy.

    Raises:
        PolicyNotSatisfied: they do not; the message names the unmatched principals.
        PolicyError: the envelope is malformed (see `compile_envelope`).
    """
    evaluate_identities(envelope, valid_identities(signed_data, msps), msps)


def evaluate_identities(
    envelope: policies_pb2.SignaturePolicyEnvelope | CompiledEnvelope,
    identities: Sequence[IdentityT],
    msps: MspSource[IdentityT],
) -> None:
    """Check identities (validated, verified, de-duplicated) against the policy.

    Raises:
        PolicyNotSatisfied: they do not satisfy it.
        PolicyError: the envelope is malformed.
    """
    compiled = _compiled(envelope)
    unmatched: list[int] = []

    def satisfies(identity_index: int, principal_index: int) -> bool:
        identity = identities[identity_index]
        principal = compiled.principals[principal_index]
        try:
            return msps.satisfies_principal(identity, principal)
        except IdentityError as error:
            logger.debug(
                "principal check failed principal=%d error=%s", principal_index, error
            )
            return False

    if is_satisfied(compiled, len(identities), satisfies, unmatched=unmatched):
        return
    signers = sorted({identity.mspid for identity in identities})
    raise PolicyNotSatisfied(
        f"{len(identities)} valid signature(s) from {signers or 'no MSP'} do not "
        f"satisfy the policy; unmatched: {_describe_principals(compiled, unmatched)}"
    )


def valid_identities(
    signed_data: Sequence[SignedData], msps: MspSource[IdentityT]
) -> list[IdentityT]:
    """Deserialise, de-duplicate, validate and verify; keep the identities that pass.

    Duplicates are recognised before the signature check (a repeated identity costs no
    verification), but only an identity whose signature verified blocks later copies.
    """
    accepted: set[tuple[str, bytes]] = set()
    identities: list[IdentityT] = []
    for position, item in enumerate(signed_data):
        try:
            identity = msps.deserialize_identity(item.identity)
        except IdentityError as error:
            logger.debug("dropping signer position=%d error=%s", position, error)
            continue
        key = _signer_key(identity)
        if key in accepted:
            logger.debug(
                "dropping duplicate signer position=%d mspid=%s", position, key[0]
            )
            continue
        try:
            msps.validate(identity)
            identity.verify(item.data, item.signature)
        except (IdentityError, CryptoError) as error:
            logger.debug("dropping signer position=%d error=%s", position, error)
            continue
        accepted.add(key)
        identities.append(identity)
    return identities


def compile_envelope(
    envelope: policies_pb2.SignaturePolicyEnvelope,
) -> CompiledEnvelope:
    """Check an envelope once so that evaluating it cannot fail on its shape.

    Raises:
        PolicyError: version is not 0, a rule is empty, or an index is out of range.
    """
    if envelope.version != 0:
        raise PolicyError(f"unsupported signature policy version {envelope.version}")
    principals = tuple(envelope.identities)
    return CompiledEnvelope(
        rule=_compile_rule(envelope.rule, len(principals), depth=0),
        principals=principals,
    )


def is_satisfied(
    compiled: CompiledEnvelope,
    identity_count: int,
    satisfies: Callable[[int, int], bool],
    *,
    unmatched: list[int] | None = None,
) -> bool:
    """Fabric's greedy evaluation over identities numbered 0..identity_count-1.

    `satisfies(identity_index, principal_index)` answers whether an identity holds a
    principal; answers are cached. Principal indices of leaves that found no unused
    identity are appended to `unmatched` when given.
    """
    cache: dict[tuple[int, int], bool] = {}

    def cached(identity_index: int, principal_index: int) -> bool:
        key = (identity_index, principal_index)
        if key not in cache:
            cache[key] = satisfies(identity_index, principal_index)
        return cache[key]

    sink = unmatched if unmatched is not None else []
    return _evaluate(compiled.rule, [False] * identity_count, cached, sink)


def satisfied_by_orgs(
    envelope: policies_pb2.SignaturePolicyEnvelope | CompiledEnvelope,
    mspids: Iterable[str],
    *,
    peers_per_org: int = 1,
) -> bool:
    """Whether peers of the given orgs could endorse so that the policy is satisfied.

    For endorsement planning: each org is assumed to contribute `peers_per_org` distinct
    peer identities, and a peer identity satisfies its org's `member` and `peer`
    principals only (never admin, client, orderer, OU or identity principals). The same
    greedy evaluation as at commit is used, so the answer matches what validation would
    decide for such a set of endorsements.

    Raises:
        PolicyError: the envelope is malformed.
    """
    compiled = _compiled(envelope)
    orgs = [mspid for mspid in dict.fromkeys(mspids) for _ in range(peers_per_org)]
    planned = [_planning_mspid(principal) for principal in compiled.principals]

    def satisfies(identity_index: int, principal_index: int) -> bool:
        return planned[principal_index] == orgs[identity_index]

    return is_satisfied(compiled, len(orgs), satisfies)


def _compiled(
    envelope: policies_pb2.SignaturePolicyEnvelope | CompiledEnvelope,
) -> CompiledEnvelope:
    if isinstance(envelope, CompiledEnvelope):
        return envelope
    return compile_envelope(envelope)


def _compile_rule(
    rule: policies_pb2.SignaturePolicy, principal_count: int, *, depth: int
) -> SignedBy | NOutOf:
    if depth > _MAX_DEPTH:
        raise PolicyError("signature policy nested too deeply")
    kind = rule.WhichOneof("Type")
    if kind == "signed_by":
        if not 0 <= rule.signed_by < principal_count:
            raise PolicyError(
                f"signed_by index {rule.signed_by} out of range for "
                f"{principal_count} identities"
            )
        return SignedBy(rule.signed_by)
    if kind == "n_out_of":
        rules = tuple(
            _compile_rule(sub, principal_count, depth=depth + 1)
            for sub in rule.n_out_of.rules
        )
        return NOutOf(n=rule.n_out_of.n, rules=rules)
    raise PolicyError("empty signature policy rule")


def _evaluate(
    rule: SignedBy | NOutOf,
    used: list[bool],
    satisfies: Callable[[int, int], bool],
    unmatched: list[int],
) -> bool:
    if isinstance(rule, SignedBy):
        for identity_index, is_used in enumerate(used):
            if not is_used and satisfies(identity_index, rule.index):
                used[identity_index] = True
                return True
        unmatched.append(rule.index)
        return False
    # Like Fabric, every sub-rule is evaluated even once n are satisfied, and the
    # identities of each satisfied sub-rule stay used.
    satisfied = 0
    for sub in rule.rules:
        tentative = list(used)
        if _evaluate(sub, tentative, satisfies, unmatched):
            satisfied += 1
            used[:] = tentative
    return satisfied >= rule.n


def _planning_mspid(principal: msp_principal_pb2.MSPPrincipal) -> str | None:
    """The MSP whose peers satisfy this principal, or None when no peer does."""
    if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
        return None
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(principal.principal)
    except DecodeError:
        return None
    return role.msp_identifier if role.role in _PLANNING_ROLES else None


def _describe_principals(compiled: CompiledEnvelope, indices: Sequence[int]) -> str:
    labels: list[str] = []
    for index in dict.fromkeys(indices):
        try:
            principal = principal_from_proto(compiled.principals[index])
            labels.append(f"'{principal.mspid}.{principal.role.value}'")
        except PolicyError:
            labels.append(f"principal #{index}")
    if not labels:
        return "none"
    return ", ".join(labels[:5]) + (" …" if len(labels) > 5 else "")


def _signer_key(identity: Identity) -> tuple[str, bytes]:
    """What makes two signers the same: the MSP id and the certificate (DER).

    Fabric compares certificates, not serializations, so one certificate presented
    in two PEM encodings is still one signer. Identities that expose no
    `certificate.der` (test fakes) are told apart by their serialized bytes.
    """
    der = getattr(getattr(identity, "certificate", None), "der", None)
    return identity.mspid, der if isinstance(der, bytes) else identity.serialized
