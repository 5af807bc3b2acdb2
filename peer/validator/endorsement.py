"""Endorsement rules: chaincode definitions, then chaincode, collection and key-level policies.

Validate phase, after the structure checks. A namespace a transaction invokes or writes
must have a committed definition (INVALID_CHAINCODE). The invoked chaincode's version
must be the defined one (EXPIRED_CHAINCODE, Fabric 1.4's code for it): Fabric 2.5 leaves
a stale definition to the MVCC check of the endorser's `_lifecycle` read, and this also
refuses a transaction whose endorser did not record that read. Writes are then judged as
Fabric 2.5's built-in validation plugin does, namespace by namespace:

- a written key (public, or private by hash) with a `VALIDATION_PARAMETER` in its
  committed metadata needs that key-level policy; if an earlier transaction of the block
  that passed this check wrote the key's metadata, the parameter is in flux and the
  transaction fails;
- otherwise a private key needs its collection's endorsement policy (the chaincode's
  when the collection sets none; the org's Endorsement policy for `_implicit_org_<MSP>`),
  and a public key the chaincode's policy, each evaluated once;
- if no policy was evaluated at all, the chaincode's policy is.

`_lifecycle` is always defined and endorsed under /Channel/Application/LifecycleEndorsement.
Any failure is ENDORSEMENT_POLICY_FAILURE; malformed policies fail the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from common.errors import PolicyError
from common.msp import Identity
from common.policies import (
    Policy,
    SignatureEnvelopePolicy,
    from_string,
    policy_from_application_policy,
)
from peer.errors import ChaincodeDefinitionError
from peer.lifecycle import (
    LIFECYCLE_ENDORSEMENT_POLICY_REF,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    signature_endorsement_policy,
)
from peer.validator.context import LedgerView
from peer.validator.identities import MomentMsps
from peer.validator.transaction import EndorserTx, NamespaceRwSet
from protos.common import policies_pb2
from protos.peer import policy_pb2, transaction_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "IMPLICIT_COLLECTION_PREFIX",
    "VALIDATION_PARAMETER",
    "EndorsementRules",
    "MetadataKey",
    "metadata_writes",
]

IMPLICIT_COLLECTION_PREFIX = "_implicit_org_"
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""The key metadata entry holding a key-level endorsement policy."""

MetadataKey = tuple[str, str, str | bytes]
"""(namespace, collection or "", key; or key hash for a private key)."""

_FAILURE = transaction_pb2.ENDORSEMENT_POLICY_FAILURE
_OutcomeKey = tuple[bytes, bool, MomentMsps, tuple[bytes, ...]]


class _PolicyFailed(Exception):
    """Internal: a policy the transaction needs is not satisfied (or unusable)."""


class EndorsementRules:
    """The policies of one block's validation: definitions and compiled policies, cached."""

    def __init__(self, config: ChannelConfig, ledger: LedgerView) -> None:
        self._config = config
        self._ledger = ledger
        self._definitions: dict[str, ChaincodeDefinition | None] = {}
        self._policies: dict[bytes, Policy | None] = {}
        self._outcomes: dict[_OutcomeKey, bool] = {}
        self._parameters: dict[MetadataKey, bytes] = {}

    def check_definitions(self, tx: EndorserTx) -> TxValidationCode | None:
        """INVALID_CHAINCODE or EXPIRED_CHAINCODE, or None when every namespace is defined."""
        for ns in tx.validated_namespaces:
            if ns == LIFECYCLE_NAMESPACE:
                continue
            definition = self.definition(ns)
            if definition is None:
                return transaction_pb2.INVALID_CHAINCODE
            if ns == tx.chaincode_name and tx.chaincode_version != definition.version:
                return transaction_pb2.EXPIRED_CHAINCODE
        return None

    def check_policies(
        self,
        tx: EndorserTx,
        identities: Sequence[Identity],
        *,
        msps: MomentMsps,
        metadata_in_flux: set[MetadataKey],
    ) -> TxValidationCode | None:
        """ENDORSEMENT_POLICY_FAILURE, or None when every needed policy is satisfied.

        `identities` are the endorsers whose signatures verified (valid, de-duplicated);
        `metadata_in_flux` holds the keys whose metadata an earlier transaction of the
        block that passed this check writes.
        """
        evaluation = _Evaluation(self, identities, msps)
        rwsets = {ns.namespace: ns for ns in tx.rwset}
        try:
            for ns in tx.validated_namespaces:
                evaluation.check_namespace(ns, rwsets.get(ns), metadata_in_flux)
        except _PolicyFailed:
            return _FAILURE
        return None

    def definition(self, name: str) -> ChaincodeDefinition | None:
        """The committed definition (None: undefined or not a usable definition)."""
        if name not in self._definitions:
            try:
                self._definitions[name] = self._ledger.chaincode_definition(name)
            except ChaincodeDefinitionError:
                self._definitions[name] = None
        return self._definitions[name]

    def validation_parameter(self, ns: str, coll: str, key: str | bytes) -> bytes:
        """The committed key-level policy of a key (b"" when it has none)."""
        cache_key = (ns, coll, key)
        parameter = self._parameters.get(cache_key)
        if parameter is None:
            if coll:
                assert isinstance(key, bytes)
                metadata = self._ledger.hashed_metadata(ns, coll, key)
            else:
                assert isinstance(key, str)
                metadata = self._ledger.metadata(ns, key)
            parameter = (metadata or {}).get(VALIDATION_PARAMETER, b"")
            self._parameters[cache_key] = parameter
        return parameter

    def prefetch(self, txs: Sequence[EndorserTx]) -> None:
        """Look up the committed key-level policies every write of `txs` may need.

        Lets the committed reads happen while signatures are still being verified;
        public keys in one look-up.
        """
        public: dict[tuple[str, str], None] = {}
        for tx in txs:
            for ns in tx.rwset:
                for coll, key in _written_keys(ns):
                    if coll:
                        self.validation_parameter(ns.namespace, coll, key)
                    elif (ns.namespace, coll, key) not in self._parameters:
                        assert isinstance(key, str)
                        public[(ns.namespace, key)] = None
        found = self._ledger.metadata_of(public.keys()) if public else {}
        for ns_key in public:
            namespace, key = ns_key
            metadata = found.get(ns_key, {})
            self._parameters[(namespace, "", key)] = metadata.get(
                VALIDATION_PARAMETER, b""
            )

    def chaincode_policy_bytes(self, ns: str) -> bytes:
        """The namespace's endorsement policy as marshaled ApplicationPolicy bytes."""
        if ns == LIFECYCLE_NAMESPACE:
            return self._lifecycle_policy_bytes()
        definition = self.definition(ns)
        assert definition is not None, "definitions are checked before policies"
        return definition.endorsement_policy

    def collection_policy_bytes(self, ns: str, coll: str) -> bytes:
        """The collection's endorsement policy bytes (the chaincode's when it sets none).

        Raises:
            _PolicyFailed: the chaincode defines no such collection.
        """
        if coll.startswith(IMPLICIT_COLLECTION_PREFIX):
            return self._org_policy_bytes(coll.removeprefix(IMPLICIT_COLLECTION_PREFIX))
        definition = self.definition(ns) if ns != LIFECYCLE_NAMESPACE else None
        if definition is None:
            raise _PolicyFailed(f"namespace {ns} defines no collection {coll}")
        try:
            configs = definition.collection_configs()
        except ChaincodeDefinitionError as error:
            raise _PolicyFailed(str(error)) from error
        for config in configs:
            if config.name == coll:
                if config.HasField("endorsement_policy"):
                    return config.endorsement_policy.SerializeToString(
                        deterministic=True
                    )
                return definition.endorsement_policy
        raise _PolicyFailed(f"chaincode {ns} defines no collection {coll}")

    def compiled(self, policy_bytes: bytes, *, key_level: bool = False) -> Policy:
        """The compiled policy for ApplicationPolicy (or, key-level, envelope) bytes.

        Raises:
            _PolicyFailed: the bytes are malformed or name no channel policy.
        """
        cache_key = (b"k" if key_level else b"a") + policy_bytes
        if cache_key not in self._policies:
            self._policies[cache_key] = self._compile(policy_bytes, key_level=key_level)
        policy = self._policies[cache_key]
        if policy is None:
            raise _PolicyFailed("malformed or unknown policy")
        return policy

    def is_satisfied(
        self,
        policy_bytes: bytes,
        *,
        key_level: bool,
        identities: Sequence[Identity],
        msps: MomentMsps,
    ) -> bool:
        """Whether the endorsers satisfy the policy (remembered for the whole block).

        Raises:
            _PolicyFailed: the policy is malformed or names no channel policy.
        """
        key = (
            policy_bytes,
            key_level,
            msps,
            tuple(identity.serialized for identity in identities),
        )
        outcome = self._outcomes.get(key)
        if outcome is None:
            policy = self.compiled(policy_bytes, key_level=key_level)
            try:
                policy.evaluate_identities(identities, msps)
            except PolicyError:
                outcome = False
            else:
                outcome = True
            self._outcomes[key] = outcome
        return outcome

    def _compile(self, policy_bytes: bytes, *, key_level: bool) -> Policy | None:
        try:
            if key_level:
                envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy_bytes)
                return SignatureEnvelopePolicy(envelope, name="key-level policy")
            return policy_from_application_policy(
                policy_bytes, channel=self._config.policy_manager
            )
        except (PolicyError, DecodeError, ValueError):
            return None

    def _lifecycle_policy_bytes(self) -> bytes:
        """LifecycleEndorsement when the channel has it, else a majority of members."""
        manager = self._config.policy_manager
        try:
            manager.get(LIFECYCLE_ENDORSEMENT_POLICY_REF)
        except PolicyError:
            mspids = sorted(org.mspid for org in self._config.application_orgs.values())
            principals = ", ".join(f"'{mspid}.member'" for mspid in mspids)
            rule = f"OutOf({len(mspids) // 2 + 1}, {principals})"
            return signature_endorsement_policy(from_string(rule))
        return policy_pb2.ApplicationPolicy(
            channel_config_policy_reference=LIFECYCLE_ENDORSEMENT_POLICY_REF
        ).SerializeToString()

    def _org_policy_bytes(self, mspid: str) -> bytes:
        """An org's implicit collection: its Endorsement policy, else any of its members."""
        for org in self._config.application_orgs.values():
            if org.mspid == mspid:
                path = f"/Channel/Application/{org.name}/Endorsement"
                try:
                    self._config.policy_manager.get(path)
                except PolicyError:
                    break
                return policy_pb2.ApplicationPolicy(
                    channel_config_policy_reference=path
                ).SerializeToString()
        else:
            raise _PolicyFailed(f"no organisation with msp id {mspid} on the channel")
        return signature_endorsement_policy(from_string(f"OR('{mspid}.member')"))


@dataclass
class _Evaluation:
    """The policy checks of one transaction; each policy is evaluated at most once."""

    rules: EndorsementRules
    identities: Sequence[Identity]
    msps: MomentMsps

    def check_namespace(
        self,
        ns: str,
        rwset: NamespaceRwSet | None,
        metadata_in_flux: set[MetadataKey],
    ) -> None:
        checked: set[str] = set()
        some_checked = False
        for coll, key in _written_keys(rwset):
            if (ns, coll, key) in metadata_in_flux:
                raise _PolicyFailed(f"the validation parameter of {key!r} is in flux")
            parameter = self.rules.validation_parameter(ns, coll, key)
            if parameter:
                self._require(parameter, key_level=True)
                some_checked = True
            elif self._check_default(ns, coll, checked):
                some_checked = True
        if not some_checked:
            self._require(self.rules.chaincode_policy_bytes(ns))

    def _check_default(self, ns: str, coll: str, checked: set[str]) -> bool:
        """The collection's or chaincode's policy, once each; True when one was evaluated."""
        if coll:
            if coll in checked:
                return False
            collection_policy = self.rules.collection_policy_bytes(ns, coll)
            if collection_policy:
                self._require(collection_policy)
                checked.add(coll)
                return True
        if "" in checked:
            return False
        self._require(self.rules.chaincode_policy_bytes(ns))
        checked.add("")
        return True

    def _require(self, policy_bytes: bytes, *, key_level: bool = False) -> None:
        satisfied = self.rules.is_satisfied(
            policy_bytes,
            key_level=key_level,
            identities=self.identities,
            msps=self.msps,
        )
        if not satisfied:
            raise _PolicyFailed("endorsement policy not satisfied")


def _written_keys(rwset: NamespaceRwSet | None) -> list[tuple[str, str | bytes]]:
    """(collection or "", key or key hash) of every write, in Fabric's checking order."""
    if rwset is None:
        return []
    keys: list[tuple[str, str | bytes]] = [("", write.key) for write in rwset.kv.writes]
    keys += [("", write.key) for write in rwset.kv.metadata_writes]
    for collection in rwset.collections:
        keys += [(collection.name, w.key_hash) for w in collection.hashed.hashed_writes]
    for collection in rwset.collections:
        keys += [
            (collection.name, w.key_hash) for w in collection.hashed.metadata_writes
        ]
    return keys


def metadata_writes(tx: EndorserTx) -> set[MetadataKey]:
    """The keys whose metadata `tx` writes (their validation parameters are in flux)."""
    keys: set[MetadataKey] = set()
    for ns in tx.rwset:
        keys.update((ns.namespace, "", write.key) for write in ns.kv.metadata_writes)
        for collection in ns.collections:
            keys.update(
                (ns.namespace, collection.name, write.key_hash)
                for write in collection.hashed.metadata_writes
            )
    return keys
