"""The policies of a channel config tree, looked up by path; policies built from protos.

A `PolicyManager` is built from the channel's root `common.ConfigGroup` (named
`Channel`) as Fabric builds its policy manager: every group's `SIGNATURE` and
`IMPLICIT_META` policies are compiled once, implicit meta policies are bound to the
same-named policy of each child group, and every policy is reachable from an ancestor by
its relative path (`Application/Writers` from the root) or by its absolute path
(`/Channel/Application/Writers`). The orderer (Writers, BlockValidation), the peer
(ACLs, endorsement policies by reference) and the gateway all resolve policies here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import PolicyError, PolicyNotSatisfied, UnknownPolicy
from common.policies.implicit_meta import (
    ImplicitMetaRule,
    implicit_meta_from_proto,
    implicit_meta_threshold,
)
from common.policies.signature import (
    CompiledEnvelope,
    Identity,
    MspSource,
    SignedData,
    compile_envelope,
    evaluate_identities,
    valid_identities,
)
from protos.common import configtx_pb2, policies_pb2
from protos.peer import policy_pb2

__all__ = [
    "ImplicitMetaPolicy",
    "Policy",
    "PolicyManager",
    "SignatureEnvelopePolicy",
    "policy_from_application_policy",
    "policy_from_proto",
]

ROOT_GROUP = "Channel"

IdentityT = TypeVar("IdentityT", bound=Identity)
MessageT = TypeVar("MessageT", bound=Message)


class Policy(Protocol):
    """A compiled policy that judges a set of signatures."""

    @property
    def name(self) -> str:
        """The absolute path of the policy, or a short description when it has none."""

    def evaluate(
        self, signed_data: Sequence[SignedData], msps: MspSource[IdentityT]
    ) -> None:
        """Raise `PolicyNotSatisfied` unless the valid signatures satisfy the policy."""

    def evaluate_identities(
        self, identities: Sequence[IdentityT], msps: MspSource[IdentityT]
    ) -> None:
        """Like `evaluate`, for identities already validated, verified, deduplicated."""


class SignatureEnvelopePolicy:
    """A `SignaturePolicyEnvelope`, compiled once."""

    __slots__ = ("_compiled", "_name")

    def __init__(
        self, envelope: policies_pb2.SignaturePolicyEnvelope, *, name: str
    ) -> None:
        """Raises `PolicyError` when the envelope is malformed."""
        try:
            self._compiled: CompiledEnvelope = compile_envelope(envelope)
        except PolicyError as error:
            raise PolicyError(f"{name}: {error}") from error
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def evaluate(
        self, signed_data: Sequence[SignedData], msps: MspSource[IdentityT]
    ) -> None:
        self.evaluate_identities(valid_identities(signed_data, msps), msps)

    def evaluate_identities(
        self, identities: Sequence[IdentityT], msps: MspSource[IdentityT]
    ) -> None:
        try:
            evaluate_identities(self._compiled, identities, msps)
        except PolicyNotSatisfied as error:
            raise PolicyNotSatisfied(f"{self._name}: {error}") from None


class ImplicitMetaPolicy:
    """ANY, ALL or MAJORITY of the same-named policies of a group's children."""

    __slots__ = ("_children", "_name", "_rule")

    def __init__(
        self, rule: ImplicitMetaRule, children: Sequence[Policy], *, name: str
    ) -> None:
        self._rule = rule
        self._children = tuple(children)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def rule(self) -> ImplicitMetaRule:
        return self._rule

    def evaluate(
        self, signed_data: Sequence[SignedData], msps: MspSource[IdentityT]
    ) -> None:
        # The identity set depends only on the signed data, so it is computed once here
        # instead of once per child as Fabric does; the outcome is the same.
        self.evaluate_identities(valid_identities(signed_data, msps), msps)

    def evaluate_identities(
        self, identities: Sequence[IdentityT], msps: MspSource[IdentityT]
    ) -> None:
        threshold = implicit_meta_threshold(self._rule.rule, len(self._children))
        satisfied = 0
        for child in self._children:
            if satisfied >= threshold:
                return
            try:
                child.evaluate_identities(identities, msps)
            except PolicyNotSatisfied:
                continue
            satisfied += 1
        if satisfied < threshold:
            raise PolicyNotSatisfied(
                f"{self._name} ({self._rule}): {satisfied} of {len(self._children)} "
                f"sub-policies satisfied, {threshold} required"
            )


class _MissingPolicy:
    """Stands for a child group that lacks the implicit meta policy's sub-policy."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def evaluate(
        self, signed_data: Sequence[SignedData], msps: MspSource[IdentityT]
    ) -> None:
        raise PolicyNotSatisfied(f"no policy {self._name}")

    def evaluate_identities(
        self, identities: Sequence[IdentityT], msps: MspSource[IdentityT]
    ) -> None:
        raise PolicyNotSatisfied(f"no policy {self._name}")


class PolicyManager:
    """The policies of one config group and, by relative path, of all groups below."""

    __slots__ = ("_managers", "_path", "_policies")

    def __init__(
        self,
        *,
        path: str,
        policies: Mapping[str, Policy],
        managers: Mapping[str, PolicyManager],
    ) -> None:
        self._path = path
        self._policies = dict(policies)
        self._managers = dict(managers)

    @classmethod
    def from_config_group(
        cls, group: configtx_pb2.ConfigGroup, *, name: str = ROOT_GROUP
    ) -> PolicyManager:
        """Compile every policy of a config tree whose root group is called `name`.

        Raises:
            PolicyError: a policy is empty, of an unsupported type, or malformed.
        """
        return _build_manager(group, path=name)

    @property
    def path(self) -> str:
        """The group's path without the leading slash, e.g. `Channel/Application`."""
        return self._path

    @property
    def policy_names(self) -> list[str]:
        """Every name `get` accepts as a relative path, sorted."""
        return sorted(self._policies)

    def get(self, path: str) -> Policy:
        """The policy at an absolute path (`/Channel/...`) or a path relative to here.

        Raises:
            UnknownPolicy: no policy exists at that path below this group.
        """
        if not path:
            raise UnknownPolicy("empty policy path")
        relative = path
        if path.startswith("/"):
            prefix = f"/{self._path}/"
            if not path.startswith(prefix):
                raise UnknownPolicy(f"no policy {path}: not below /{self._path}")
            relative = path[len(prefix) :]
        policy = self._policies.get(relative)
        if policy is None:
            raise UnknownPolicy(f"no policy {path} in /{self._path}")
        return policy

    def manager(self, groups: Iterable[str]) -> PolicyManager:
        """The manager of a descendant group: `manager(["Application", "Org1MSP"])`.

        Raises:
            UnknownPolicy: there is no such group.
        """
        current = self
        for group in groups:
            child = current._managers.get(group)
            if child is None:
                raise UnknownPolicy(f"no config group {group} in /{current._path}")
            current = child
        return current


def policy_from_proto(policy: policies_pb2.Policy, *, name: str) -> Policy:
    """Compile a standalone `common.Policy`: SIGNATURE only, implicit meta needs groups.

    Raises:
        PolicyError: the type is not SIGNATURE or the value is malformed.
    """
    if policy.type != policies_pb2.Policy.SIGNATURE:
        raise PolicyError(
            f"{name}: policy type {policy.type} cannot be used outside a config tree"
        )
    envelope = _unmarshal(policies_pb2.SignaturePolicyEnvelope, policy.value, what=name)
    return SignatureEnvelopePolicy(envelope, name=name)


def policy_from_application_policy(
    application_policy: policy_pb2.ApplicationPolicy | bytes,
    *,
    channel: PolicyManager,
    name: str = "endorsement policy",
) -> Policy:
    """The policy a chaincode definition or collection names (`validation_parameter`).

    A `signature_policy` is compiled; a `channel_config_policy_reference` such as
    `/Channel/Application/Endorsement` is looked up in `channel`.

    Raises:
        PolicyError: the bytes are malformed or neither field is set.
        UnknownPolicy: the referenced channel policy does not exist.
    """
    if isinstance(application_policy, bytes):
        application_policy = _unmarshal(
            policy_pb2.ApplicationPolicy, application_policy, what=name
        )
    kind = application_policy.WhichOneof("Type")
    if kind == "signature_policy":
        return SignatureEnvelopePolicy(application_policy.signature_policy, name=name)
    if kind == "channel_config_policy_reference":
        return channel.get(application_policy.channel_config_policy_reference)
    raise PolicyError(f"{name}: application policy sets neither field")


def _build_manager(group: configtx_pb2.ConfigGroup, *, path: str) -> PolicyManager:
    managers = {
        child: _build_manager(group.groups[child], path=f"{path}/{child}")
        for child in sorted(group.groups)
    }
    policies: dict[str, Policy] = {
        name: _build_policy(
            group.policies[name], name=f"/{path}/{name}", managers=managers
        )
        for name in sorted(group.policies)
    }
    for child, manager in managers.items():
        for name, policy in manager._policies.items():
            policies[f"{child}/{name}"] = policy
    return PolicyManager(path=path, policies=policies, managers=managers)


def _build_policy(
    config_policy: configtx_pb2.ConfigPolicy,
    *,
    name: str,
    managers: Mapping[str, PolicyManager],
) -> Policy:
    if not config_policy.HasField("policy"):
        raise PolicyError(f"policy {name} is empty")
    policy = config_policy.policy
    if policy.type == policies_pb2.Policy.IMPLICIT_META:
        try:
            rule = implicit_meta_from_proto(policy.value)
        except PolicyError as error:
            raise PolicyError(f"policy {name}: {error}") from error
        children = [
            _child_policy(manager, rule.sub_policy) for manager in managers.values()
        ]
        return ImplicitMetaPolicy(rule, children, name=name)
    if policy.type == policies_pb2.Policy.SIGNATURE:
        return policy_from_proto(policy, name=name)
    raise PolicyError(f"policy {name} has unsupported type {policy.type}")


def _child_policy(manager: PolicyManager, sub_policy: str) -> Policy:
    try:
        return manager.get(sub_policy)
    except UnknownPolicy:
        return _MissingPolicy(f"/{manager.path}/{sub_policy}")


def _unmarshal(message_type: type[MessageT], data: bytes, *, what: str) -> MessageT:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise PolicyError(
            f"{what}: malformed {message_type.__name__}: {error}"
        ) from error
    return message
