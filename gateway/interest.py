"""What a proposal touched (its chaincode interest) and the endorsement it therefore needs.

A peer reports, in `ProposalResponse.interest`, every chaincode a proposal invoked, the
collections it used and the key-level policies of the keys it wrote. Peers that leave
the interest out get one derived from the simulated read-write set (namespaces,
collections, whether private data was read); key-level policies cannot be derived and
are then left to the validator.

`requirements_for` turns the calls into planner `Requirements`:

- each invoked chaincode's endorsement policy, unless the call disregards it;
- each collection's own endorsement policy, when it has one;
- each key-level policy;
- endorsers restricted to the member organisations of every collection whose private
  data was read, or of every collection at all when transient data must be protected.

A chaincode without a known definition is held to /Channel/Application/Endorsement
(the policy a definition gets by default); `_lifecycle` to LifecycleEndorsement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.errors import WireError
from common.policies import (
    Policy,
    PolicyManager,
    SignatureEnvelopePolicy,
    policy_from_application_policy,
)
from common.protoutil import parse_tx_rwset
from gateway.definitions import LIFECYCLE_NAMESPACE, ChaincodeInfo
from gateway.planner import Requirements
from protos.common import policies_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import proposal_response_pb2

__all__ = [
    "DEFAULT_ENDORSEMENT_POLICY",
    "LIFECYCLE_ENDORSEMENT_POLICY",
    "Call",
    "calls_from_interest",
    "calls_from_rwset",
    "default_calls",
    "requirements_for",
]

DEFAULT_ENDORSEMENT_POLICY = "/Channel/Application/Endorsement"
LIFECYCLE_ENDORSEMENT_POLICY = "/Channel/Application/LifecycleEndorsement"

ChaincodeLookup = Callable[[str], ChaincodeInfo | None]


@dataclass(frozen=True, slots=True)
class Call:
    """One invoked chaincode, as a `protos.ChaincodeCall` describes it.

    `key_policies` are marshaled SignaturePolicyEnvelopes.
    """

    name: str
    collections: tuple[str, ...] = ()
    no_private_reads: bool = True
    disregard_namespace_policy: bool = False
    key_policies: tuple[bytes, ...] = ()


def default_calls(chaincode: str) -> tuple[Call, ...]:
    """The interest of a proposal before anything is known: just its chaincode."""
    return (Call(chaincode),)


def calls_from_interest(
    interest: proposal_response_pb2.ChaincodeInterest,
) -> tuple[Call, ...]:
    """The calls a peer reported; empty when it reported none."""
    return tuple(
        Call(
            name=call.name,
            collections=tuple(call.collection_names),
            no_private_reads=call.no_private_reads,
            disregard_namespace_policy=call.disregard_namespace_policy,
            key_policies=tuple(
                policy.SerializeToString(deterministic=True)
                for policy in call.key_policies
            ),
        )
        for call in interest.chaincodes
    )


def calls_from_rwset(results: bytes, *, chaincode: str) -> tuple[Call, ...]:
    """Calls derived from a simulated TxReadWriteSet (ChaincodeAction.results).

    The invoked `chaincode` always comes first, even when it read and wrote nothing.

    Raises:
        WireError: the read-write set does not decode.
    """
    calls: dict[str, Call] = {chaincode: Call(chaincode)}
    for ns in parse_tx_rwset(results).ns_rwsets:
        private_reads = any(
            _has_hashed_reads(collection.hashed_rwset)
            for collection in ns.collection_hashed_rwsets
        )
        calls[ns.namespace] = Call(
            name=ns.namespace,
            collections=tuple(
                collection.collection_name for collection in ns.collection_hashed_rwsets
            ),
            no_private_reads=not private_reads,
        )
    return tuple(calls.values())


def requirements_for(
    calls: Sequence[Call],
    *,
    chaincodes: ChaincodeLookup,
    channel_policies: PolicyManager,
    protect_transient: bool = False,
) -> Requirements:
    """The policies and endorser restriction the calls need (see the module docstring).

    Raises:
        PolicyError: a policy is malformed or names a channel policy that does not exist.
        WireError: a stored definition does not decode.
    """
    policies: list[Policy] = []
    names: list[str] = []
    allowed: frozenset[str] | None = None
    for call in calls:
        info = chaincodes(call.name)
        if not call.disregard_namespace_policy:
            policies.append(_chaincode_policy(call.name, info, channel_policies))
            names.append(call.name)
        for collection_name in call.collections:
            collection = info.collections.get(collection_name) if info else None
            if collection is None:
                continue
            if collection.endorsement_policy:
                policies.append(
                    policy_from_application_policy(
                        collection.endorsement_policy,
                        channel=channel_policies,
                        name=f"{call.name}/{collection_name} endorsement policy",
                    )
                )
                names.append(f"{call.name}/{collection_name}")
            if protect_transient or not call.no_private_reads:
                members = collection.members
                allowed = members if allowed is None else allowed & members
        for index, key_policy in enumerate(call.key_policies):
            policies.append(_key_policy(call.name, index, key_policy))
            names.append(f"{call.name} key-level policy {index + 1}")
    return Requirements(tuple(policies), allowed, ", ".join(names))


def _chaincode_policy(
    name: str, info: ChaincodeInfo | None, channel_policies: PolicyManager
) -> Policy:
    if info is not None and info.endorsement_policy:
        return policy_from_application_policy(
            info.endorsement_policy,
            channel=channel_policies,
            name=f"endorsement policy of {name}",
        )
    reference = (
        LIFECYCLE_ENDORSEMENT_POLICY
        if name == LIFECYCLE_NAMESPACE
        else DEFAULT_ENDORSEMENT_POLICY
    )
    return channel_policies.get(reference)


def _key_policy(chaincode: str, index: int, data: bytes) -> Policy:
    envelope = policies_pb2.SignaturePolicyEnvelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as error:
        raise WireError(f"key-level policy of {chaincode} does not decode") from error
    return SignatureEnvelopePolicy(
        envelope, name=f"key-level policy {index + 1} of {chaincode}"
    )


def _has_hashed_reads(hashed_rwset: bytes) -> bool:
    message = kv_rwset_pb2.HashedRWSet()
    try:
        message.ParseFromString(hashed_rwset)
    except DecodeError:  # an undecodable set is the validator's business
        return False
    return len(message.hashed_reads) > 0
