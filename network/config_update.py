"""Making channel config updates: the difference of two configs, admin signatures, and
the CONFIG_UPDATE envelope an administrator broadcasts.

`compute_update(original, updated, channel_id=...)` finds the smallest ConfigUpdate
that turns one config into the other, as Fabric's ``configtxlator compute_update``
does; `sign_config_update` adds an admin's approval; `create_config_update_tx` wraps
the signed update for the orderer, which judges it with `common.configtx`.

What `compute_update` writes, group by group (compared recursively from /Channel):
  - an unchanged value or policy is left out, unless its group is rewritten (below);
    then a version-only copy goes into both sets, so the validator keeps it as it is;
  - a changed value or policy goes into the write set at its version + 1;
  - a new element goes into the write set at version 0, a new group with all its
    members at version 0;
  - a group that gains or loses members, or whose mod_policy changes, is rewritten:
    its version + 1 in the write set, listing every member it keeps;
  - any other group on the way to a change appears at its current version in both
    sets, naming only the changed members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from common.configtx import EnvelopeSigner, create_signed_tx
from common.errors import ConfigUpdateError
from common.protoutil import Timestamp, new_nonce, signature_header_bytes
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "compute_update",
    "config_update_envelope",
    "create_config_update_tx",
    "sign_config_update",
]

_T = TypeVar("_T")
_Leaf = TypeVar("_Leaf", configtx_pb2.ConfigValue, configtx_pb2.ConfigPolicy)


def compute_update(
    original: configtx_pb2.Config, updated: configtx_pb2.Config, *, channel_id: str
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
        raise ConfigUpdateError("the original and updated configs do not differ")
    return configtx_pb2.ConfigUpdate(
        channel_id=channel_id,
        read_set=difference.read,
        write_set=difference.write,
    )


def sign_config_update(
    config_update: bytes, signer: EnvelopeSigner, *, nonce: bytes | None = None
) -> configtx_pb2.ConfigSignature:
    """An admin's approval: a signature over ``signature_header ‖ config_update``.

    `config_update` is the marshaled ConfigUpdate, exactly as it travels in the
    ConfigUpdateEnvelope; the nonce defaults to fresh random bytes.
    """
    header = signature_header_bytes(
        creator=signer.serialized, nonce=new_nonce() if nonce is None else nonce
    )
    return configtx_pb2.ConfigSignature(
        signature_header=header, signature=signer.sign(header + config_update)
    )


def config_update_envelope(
    config_update: configtx_pb2.ConfigUpdate | bytes,
    *,
    signers: Iterable[EnvelopeSigner] = (),
    signatures: Iterable[configtx_pb2.ConfigSignature] = (),
) -> configtx_pb2.ConfigUpdateEnvelope:
    """A ConfigUpdateEnvelope carrying `signatures` and one new signature per signer.

    A ConfigUpdate message is marshaled once here; pass the bytes instead when the
    signatures were made elsewhere over those bytes.
    """
    if isinstance(config_update, configtx_pb2.ConfigUpdate):
        config_update = config_update.SerializeToString(deterministic=True)
    envelope = configtx_pb2.ConfigUpdateEnvelope(
        config_update=config_update, signatures=signatures
    )
    envelope.signatures.extend(
        sign_config_update(config_update, signer) for signer in signers
    )
    return envelope


def create_config_update_tx(
    channel_id: str,
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
    signer: EnvelopeSigner,
    *,
    timestamp: Timestamp | None = None,
    nonce: bytes | None = None,
) -> common_pb2.Envelope:
    """The CONFIG_UPDATE envelope an administrator broadcasts, signed by `signer`."""
    return create_signed_tx(
        common_pb2.CONFIG_UPDATE,
        update_envelope.SerializeToString(deterministic=True),
        signer,
        channel_id=channel_id,
        timestamp=timestamp,
        nonce=nonce,
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
