"""A config tree as a flat map from element path to element, and back to a tree.

Config updates are judged element by element: the read set, the write set and the
current config are each flattened into a `ConfigMap` keyed by (kind, path), e.g.
(value, /Channel/Orderer/BatchSize). Applying an update overlays the changed elements
on the current map and reassembles the tree from /Channel down, following each group's
member names. Element names are checked as Fabric checks them: ASCII letters, digits,
'.' and '-', at most 249 characters, and never "." or "..".
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from common.errors import ConfigUpdateError
from protos.common import configtx_pb2

__all__ = [
    "ROOT_GROUP",
    "ConfigElement",
    "ConfigMap",
    "ElementKey",
    "ElementKind",
    "assemble_group",
    "element_name_problem",
    "map_config",
]

ROOT_GROUP = "Channel"
"""The name of a config tree's root group, as element paths spell it."""

_NAME = re.compile(r"[A-Za-z0-9.-]+")
_NAME_LENGTH_MAX = 249
_RESERVED_NAMES = frozenset({".", ".."})

ConfigElement = (
    configtx_pb2.ConfigGroup | configtx_pb2.ConfigValue | configtx_pb2.ConfigPolicy
)
"""One element of a config tree; a group also carries its members' names."""


_T = TypeVar(
    "_T", configtx_pb2.ConfigGroup, configtx_pb2.ConfigValue, configtx_pb2.ConfigPolicy
)


class ElementKind(enum.StrEnum):
    """Groups, values and policies live in separate name spaces of their group."""

    GROUP = "group"
    VALUE = "value"
    POLICY = "policy"


@dataclass(frozen=True, slots=True, order=True)
class ElementKey:
    """Where an element sits: its kind and its names from the root group down."""

    kind: ElementKind
    names: tuple[str, ...]

    @property
    def path(self) -> str:
        """The element's absolute path, e.g. ``/Channel/Application/HospitalAMSP``."""
        return "/" + "/".join(self.names)

    @property
    def group_names(self) -> tuple[str, ...]:
        """The names of the group that governs the element: the group itself for a
        group, the enclosing group for a value or policy."""
        return self.names if self.kind is ElementKind.GROUP else self.names[:-1]

    def child(self, kind: ElementKind, name: str) -> ElementKey:
        """The key of a member of this group."""
        assert self.kind is ElementKind.GROUP, "only groups have members"
        return ElementKey(kind, (*self.names, name))

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


ConfigMap = dict[ElementKey, ConfigElement]


def map_config(group: configtx_pb2.ConfigGroup | None, *, what: str) -> ConfigMap:
    """Flatten the tree below `group` (taken as /Channel) into a map; None gives {}.

    Raises:
        ConfigUpdateError: an element name is empty, too long or has other characters.
    """
    elements: ConfigMap = {}
    if group is not None:
        _add_group(elements, ElementKey(ElementKind.GROUP, (ROOT_GROUP,)), group, what)
    return elements


def assemble_group(
    elements: Mapping[ElementKey, ConfigElement],
) -> tuple[configtx_pb2.ConfigGroup, set[ElementKey]]:
    """Rebuild the /Channel tree from a map, and say which keys it reached.

    Each group contributes the members its own message names; an element the map holds
    but no group names is left out (the caller decides whether that is an error).

    Raises:
        ConfigUpdateError: a group names a member the map does not hold.
    """
    reached: set[ElementKey] = set()
    root = _assemble(elements, ElementKey(ElementKind.GROUP, (ROOT_GROUP,)), reached)
    return root, reached


def element_name_problem(name: str) -> str | None:
    """Why `name` is not a legal config element name, or None when it is."""
    if not name:
        return "an element name is empty"
    if len(name) > _NAME_LENGTH_MAX:
        return f"an element name is {len(name)} characters long (at most {_NAME_LENGTH_MAX})"
    if name in _RESERVED_NAMES:
        return f"element name {name!r} is not allowed"
    if _NAME.fullmatch(name) is None:
        return (
            f"element name {name!r} has characters other than letters, digits, "
            "'.' and '-'"
        )
    return None


def _add_group(
    elements: ConfigMap,
    key: ElementKey,
    group: configtx_pb2.ConfigGroup,
    what: str,
) -> None:
    elements[key] = group
    members: list[tuple[ElementKind, Mapping[str, ConfigElement]]] = [
        (ElementKind.VALUE, group.values),
        (ElementKind.POLICY, group.policies),
    ]
    for kind, entries in members:
        for name in entries:
            child = key.child(kind, name)
            _check_name(name, child, what)
            elements[child] = entries[name]
    for name in group.groups:
        child = key.child(ElementKind.GROUP, name)
        _check_name(name, child, what)
        _add_group(elements, child, group.groups[name], what)


def _check_name(name: str, key: ElementKey, what: str) -> None:
    problem = element_name_problem(name)
    if problem is not None:
        raise ConfigUpdateError(f"{what}: {problem}", path=key.path)


def _assemble(
    elements: Mapping[ElementKey, ConfigElement],
    key: ElementKey,
    reached: set[ElementKey],
) -> configtx_pb2.ConfigGroup:
    source = _lookup(elements, key, configtx_pb2.ConfigGroup)
    reached.add(key)
    group = configtx_pb2.ConfigGroup(
        version=source.version, mod_policy=source.mod_policy
    )
    for name in sorted(source.values):
        child = key.child(ElementKind.VALUE, name)
        group.values[name].CopyFrom(_lookup(elements, child, configtx_pb2.ConfigValue))
        reached.add(child)
    for name in sorted(source.policies):
        child = key.child(ElementKind.POLICY, name)
        group.policies[name].CopyFrom(
            _lookup(elements, child, configtx_pb2.ConfigPolicy)
        )
        reached.add(child)
    for name in sorted(source.groups):
        child = key.child(ElementKind.GROUP, name)
        group.groups[name].CopyFrom(_assemble(elements, child, reached))
    return group


def _lookup(
    elements: Mapping[ElementKey, ConfigElement], key: ElementKey, kind: type[_T]
) -> _T:
    element = elements.get(key)
    if element is None:
        raise ConfigUpdateError(f"the config names a missing {key.kind}", path=key.path)
    assert isinstance(element, kind), f"{key} holds a {type(element).__name__}"
    return element
