"""The ChaincodeInterest of an endorsement: which policies a transaction must satisfy.

Execute phase, after simulation. A gateway plans which organisations must endorse
from the interest the first endorser returns, as Fabric's gateway does:

- a chaincode namespace the transaction read or wrote needs its chaincode policy, unless
  every key it wrote carries a key-level policy (then those `key_policies` apply and
  `disregard_namespace_policy` is set);
- a collection written (without key-level policies on all its keys) or read in
  plaintext gets its own call, with `no_private_reads` when it was only written;
- system namespaces (`_lifecycle`, `qscc`, `cscc`, `lscc`) are left out.

Calls are sorted by namespace, then collection, so every endorser builds the same bytes.
The common case (no key-level policy on a written key, no private data) needs only
the namespace names; its bytes are remembered per list of names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from common.protoutil import TxRwSet, parse_tx_rwset
from peer.simulator import SimulationResults
from protos.common import policies_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import proposal_response_pb2

__all__ = ["SYSTEM_NAMESPACES", "build_chaincode_interest", "chaincode_interest_bytes"]

SYSTEM_NAMESPACES = frozenset({"_lifecycle", "lscc", "qscc", "cscc"})
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
_PUBLIC = ""
_M = TypeVar("_M", bound=Message)
_KNOWN_INTERESTS = 256
_PLAIN_INTERESTS: dict[tuple[str, ...], bytes] = {}


@dataclass(slots=True)
class _Needs:
    """Per namespace: which collections ("" = public) need the chaincode policy."""

    required: dict[str, bool] = field(default_factory=dict)
    key_policies: list[policies_pb2.SignaturePolicyEnvelope] = field(
        default_factory=list
    )


def build_chaincode_interest(
    results: SimulationResults,
) -> proposal_response_pb2.ChaincodeInterest:
    """The interest of a simulation's read-write sets (see the module docstring).

    Raises:
        WireError: the public read-write set or a key-level policy does not decode.
    """
    interest = proposal_response_pb2.ChaincodeInterest()
    interest.ParseFromString(chaincode_interest_bytes(results))
    return interest


def chaincode_interest_bytes(results: SimulationResults) -> bytes:
    """`build_chaincode_interest` marshaled (deterministically).

    Raises:
        WireError: the public read-write set or a key-level policy does not decode.
    """
    names = _public_only_namespaces(results)
    if names is not None:
        return _namespace_policies(names)
    rwset = parse_tx_rwset(results.public_rwset, what="simulation results")
    needs = _needs_of(rwset, results.writeset_metadata, results.private_reads)
    interest = proposal_response_pb2.ChaincodeInterest()
    for namespace in sorted(needs):
        interest.chaincodes.extend(
            _calls(namespace, needs[namespace], results.private_reads)
        )
    return interest.SerializeToString(deterministic=True)


def _public_only_namespaces(results: SimulationResults) -> tuple[str, ...] | None:
    """The sorted application namespaces when each needs just its chaincode policy.

    That is the common case: no key-level policies on written keys, no private data
    read and no collection written. None otherwise (the general rules apply).
    """
    if results.writeset_metadata or results.private_reads:
        return None
    rwset = _decode(rwset_pb2.TxReadWriteSet, results.public_rwset)
    names: set[str] = set()
    for ns_rwset in rwset.ns_rwset:
        if ns_rwset.collection_hashed_rwset:
            return None
        names.add(ns_rwset.namespace)
    return tuple(sorted(names - SYSTEM_NAMESPACES))


def _namespace_policies(names: tuple[str, ...]) -> bytes:
    """A ChaincodeInterest of one plain ChaincodeCall per namespace (remembered)."""
    known = _PLAIN_INTERESTS.get(names)
    if known is None:
        interest = proposal_response_pb2.ChaincodeInterest(
            chaincodes=[proposal_response_pb2.ChaincodeCall(name=n) for n in names]
        )
        known = interest.SerializeToString(deterministic=True)
        if len(_PLAIN_INTERESTS) >= _KNOWN_INTERESTS:
            _PLAIN_INTERESTS.pop(next(iter(_PLAIN_INTERESTS)), None)
        _PLAIN_INTERESTS[names] = known
    return known


def _needs_of(
    rwset: TxRwSet,
    metadata: Mapping[tuple[str, str, str], Mapping[str, bytes]],
    private_reads: Iterable[tuple[str, str]],
) -> dict[str, _Needs]:
    needs: dict[str, _Needs] = {}
    for ns_rwset in rwset.ns_rwsets:
        namespace = ns_rwset.namespace
        if namespace in SYSTEM_NAMESPACES:
            continue
        entry = needs.setdefault(namespace, _Needs())
        public = _decode(kv_rwset_pb2.KVRWSet, ns_rwset.rwset)
        written = [w.key for w in public.writes] + [
            w.key for w in public.metadata_writes
        ]
        _note_writes(entry, _PUBLIC, namespace, written, metadata)
        for hashed_set in ns_rwset.collection_hashed_rwsets:
            hashed = _decode(kv_rwset_pb2.HashedRWSet, hashed_set.hashed_rwset)
            count = len(hashed.hashed_writes) + len(hashed.metadata_writes)
            _note_hashed_writes(
                entry, namespace, hashed_set.collection_name, count, metadata
            )
        if not entry.required:
            entry.required[_PUBLIC] = True
    for namespace, collection in private_reads:
        if namespace not in SYSTEM_NAMESPACES:
            needs.setdefault(namespace, _Needs()).required[collection] = True
    return needs


def _note_writes(
    entry: _Needs,
    collection: str,
    namespace: str,
    keys: Iterable[str],
    metadata: Mapping[tuple[str, str, str], Mapping[str, bytes]],
) -> None:
    keys = list(keys)
    if not keys:
        return
    entry.required.setdefault(collection, False)
    for key in keys:
        policy = metadata.get((namespace, collection, key), {}).get(
            VALIDATION_PARAMETER
        )
        if policy is None:
            entry.required[collection] = True
        else:
            entry.key_policies.append(_envelope(policy))


def _note_hashed_writes(
    entry: _Needs,
    namespace: str,
    collection: str,
    count: int,
    metadata: Mapping[tuple[str, str, str], Mapping[str, bytes]],
) -> None:
    """Private keys are hashed in the public set: count those with a key-level policy."""
    if count == 0:
        return
    entry.required.setdefault(_PUBLIC, False)
    policies = [
        values[VALIDATION_PARAMETER]
        for (ns, coll, _key), values in sorted(metadata.items())
        if ns == namespace and coll == collection and VALIDATION_PARAMETER in values
    ]
    entry.key_policies.extend(_envelope(policy) for policy in policies)
    if len(policies) < count:
        entry.required[collection] = True


def _calls(
    namespace: str, entry: _Needs, private_reads: frozenset[tuple[str, str]]
) -> list[proposal_response_pb2.ChaincodeCall]:
    calls: list[proposal_response_pb2.ChaincodeCall] = []
    requires_chaincode_policy = entry.required.get(_PUBLIC, False)
    for collection in sorted(entry.required):
        if collection == _PUBLIC:
            if entry.key_policies:
                calls.append(
                    proposal_response_pb2.ChaincodeCall(
                        name=namespace,
                        key_policies=entry.key_policies,
                        disregard_namespace_policy=not requires_chaincode_policy,
                    )
                )
            elif requires_chaincode_policy:
                calls.append(proposal_response_pb2.ChaincodeCall(name=namespace))
        elif entry.required[collection]:
            calls.append(
                proposal_response_pb2.ChaincodeCall(
                    name=namespace,
                    collection_names=[collection],
                    no_private_reads=(namespace, collection) not in private_reads,
                )
            )
    return calls


def _envelope(data: bytes) -> policies_pb2.SignaturePolicyEnvelope:
    return _decode(policies_pb2.SignaturePolicyEnvelope, data)


def _decode(message_type: type[_M], data: bytes) -> _M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        name = message_type.DESCRIPTOR.full_name
        raise WireError(f"{name} in the simulation results: {error}") from error
    return message
