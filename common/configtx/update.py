"""Computing a config update: the read and write sets that turn one config into another.

`compute_update(channel_id, original, updated)` returns the ConfigUpdate an operator
signs and broadcasts, with the versions Fabric's ``configtxlator compute_update``
gives, so that `validate_config_update` applied to `original` yields `updated`.
Groups are compared recursively from /Channel:

  - an unchanged value or policy is left out, unless its group is rewritten (below);
    then a version-only copy goes into both sets, so the validator keeps it as it is;
  - a changed value or policy goes into the write set at its version + 1;
  - a new element goes into the write set at version 0, a new group with all its
    members at version 0;
  - a group that gains or loses members, or whose mod_policy changes, is rewritten:
    its version + 1 in the write set, listing every member it keeps (a deleted
    member is simply absent);
  - any other group on the way to a change appears at its current version in both
    sets, naming only the changed members.

The read set pins the versions the update depends on, so an update computed from a
config that has changed since in the same places is refused by the validator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from common.errors import ConfigUpdateError
from protos.common import configtx_pb2

__all__ = ["compute_update"]

_T = TypeVar("_T")
_Leaf = TypeVar("_Leaf", configtx_pb2.ConfigValue, configtx_pb2.ConfigPolicy)


def compute_update(
    channel_id: str, original: configtx_pb2.Config, updated: configtx_pb2.Config
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate that turns `original` into `updated` on `channel_id`.

    Raises:
        ConfigUpdateError: a config has no channel group, or the two do not differ.
    """
    if not original.HasField("channel_group"):
        raise ConfigUpdateError("the original config has no channel group")
    if not updated.HasField("channel_group"):
        raise ConfigUpdateError("the updated config has no channel group")
    difference = _group_difference(original.channel_group, updated.channel_group)
    if not difference.changed:
        raise ConfigUpdateError(
            "the original and updated configs do not differ: there is nothing to update"
        )
    return configtx_pb2.ConfigUpdate(
        channel_id=channel_id,
        read_set=difference.read,
        write_set=difference.write,
    )


@dataclass(slots=True)
class _Members(Generic[_T]):
    """How one kind of member (values, policies or groups) of a group differs."""

    read: dict[str, _T] = field(default_factory=dict)
    write: dict[str, _T] = field(default_factory=dict)
    same: dict[str, _T] = field(default_factory=dict)
    membership_changed: bool = False

    @property
    def changed(self) -> bool:
        return self.membership_changed or bool(self.read) or bool(self.write)

    def include_same(self) -> None:
        """Keep the unchanged members in both sets, for a group that is rewritten."""
        self.read.update(self.same)
        self.write.update(self.same)


@dataclass(frozen=True, slots=True)
class _GroupDifference:
    read: configtx_pb2.ConfigGroup
    write: configtx_pb2.ConfigGroup
    changed: bool


def _group_difference(
    original: configtx_pb2.ConfigGroup, updated: configtx_pb2.ConfigGroup
) -> _GroupDifference:
    values = _leaf_differences(original.values, updated.values, _same_value)
    policies = _leaf_differences(original.policies, updated.policies, _same_policy)
    groups = _group_differences(original.groups, updated.groups)
    same_mod_policy = original.mod_policy == updated.mod_policy
    members = (values, policies, groups)
    if same_mod_policy and not any(member.changed for member in members):
        stub = configtx_pb2.ConfigGroup(version=original.version)
        return _GroupDifference(read=stub, write=stub, changed=False)
    rewritten = not same_mod_policy or any(
        member.membership_changed for member in members
    )
    if rewritten:
        for member in members:
            member.include_same()
    read = configtx_pb2.ConfigGroup(
        version=original.version,
        values=values.read,
        policies=policies.read,
        groups=groups.read,
    )
    write = configtx_pb2.ConfigGroup(
        version=original.version + 1 if rewritten else original.version,
        mod_policy=updated.mod_policy if rewritten else "",
        values=values.write,
        policies=policies.write,
        groups=groups.write,
    )
    return _GroupDifference(read=read, write=write, changed=True)


def _leaf_differences(
    original: Mapping[str, _Leaf],
    updated: Mapping[str, _Leaf],
    is_same: Callable[[_Leaf, _Leaf], bool],
) -> _Members[_Leaf]:
    members: _Members[_Leaf] = _Members()
    for name in sorted(original):
        before = original[name]
        after = updated.get(name)
        if after is None:
            members.membership_changed = True
        elif is_same(before, after):
            members.same[name] = type(before)(version=before.version)
        else:
            members.write[name] = _versioned(after, before.version + 1)
    for name in sorted(set(updated) - set(original)):
        members.membership_changed = True
        members.write[name] = _versioned(updated[name], 0)
    return members


def _group_differences(
    original: Mapping[str, configtx_pb2.ConfigGroup],
    updated: Mapping[str, configtx_pb2.ConfigGroup],
) -> _Members[configtx_pb2.ConfigGroup]:
    members: _Members[configtx_pb2.ConfigGroup] = _Members()
    for name in sorted(original):
        after = updated.get(name)
        if after is None:
            members.membership_changed = True
            continue
        difference = _group_difference(original[name], after)
        if difference.changed:
            members.read[name] = difference.read
            members.write[name] = difference.write
        else:
            members.same[name] = difference.read
    for name in sorted(set(updated) - set(original)):
        members.membership_changed = True
        members.write[name] = _new_group(updated[name])
    return members


def _new_group(group: configtx_pb2.ConfigGroup) -> configtx_pb2.ConfigGroup:
    """A copy of a group joining the config: itself and every member at version 0."""
    return configtx_pb2.ConfigGroup(
        version=0,
        mod_policy=group.mod_policy,
        values={name: _versioned(value, 0) for name, value in group.values.items()},
        policies={
            name: _versioned(policy, 0) for name, policy in group.policies.items()
        },
        groups={name: _new_group(child) for name, child in group.groups.items()},
    )


def _versioned(element: _Leaf, version: int) -> _Leaf:
    copy = type(element)()
    copy.CopyFrom(element)
    copy.version = version
    return copy


def _same_value(
    before: configtx_pb2.ConfigValue, after: configtx_pb2.ConfigValue
) -> bool:
    return before.mod_policy == after.mod_policy and before.value == after.value


def _same_policy(
    before: configtx_pb2.ConfigPolicy, after: configtx_pb2.ConfigPolicy
) -> bool:
    return before.mod_policy == after.mod_policy and before.policy == after.policy
