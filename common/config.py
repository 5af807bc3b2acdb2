"""Reading YAML files that people write, with errors that say where and what was wrong.

Every configuration medledger reads (the consortium file, per-node files) goes through
`load_yaml`, which returns a `ConfigNode`: a YAML value together with the file it came
from, its key path (``organizations[1].mspid``) and its line.  Loaders walk the tree
with the `as_*` readers and build their own frozen dataclasses; a reader that finds the
wrong shape raises `ConfigError` with a message of the form

    consortium.yaml, line 12: organizations[1].mspid: expected an MSP id ..., got 'A B'

Keys are checked as well: mappings reject unknown keys (suggesting the closest known
one) and duplicate keys, which plain ``yaml.safe_load`` silently collapses.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from common.errors import ConfigError

__all__ = [
    "ConfigNode",
    "check_unique",
    "load_yaml",
    "optional_list",
    "parse_yaml",
]

_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)


def load_yaml(path: Path) -> ConfigNode:
    """Read and parse one YAML file; its top level must be a mapping.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML or is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: expected UTF-8 text: {error.reason}") from error
    return parse_yaml(text, source=str(path))


def parse_yaml(text: str, *, source: str) -> ConfigNode:
    """Parse YAML text; `source` names it in error messages (usually the file path)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        where = f"{source}, line {line}" if line else source
        raise ConfigError(f"{where}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from error
    if node is None:
        raise ConfigError(f"{source}: the file is empty; expected a mapping of keys")
    root = ConfigNode(source=source, path="", node=node)
    if not isinstance(node, yaml.MappingNode):
        raise root.expected("a mapping of keys at the top level")
    return root


@dataclass(frozen=True)
class ConfigNode:
    """One value in a YAML document, with the place it came from."""

    source: str
    path: str
    node: yaml.Node

    @property
    def line(self) -> int:
        """1-based line where the value starts."""
        return int(self.node.start_mark.line) + 1

    @property
    def is_null(self) -> bool:
        """True for an explicit or implicit YAML null (``key:`` with nothing after)."""
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(
            ":null"
        )

    def error(self, message: str) -> ConfigError:
        """A ConfigError about this value; the caller raises it."""
        where = self.path or "top level"
        return ConfigError(f"{self.source}, line {self.line}: {where}: {message}")

    def expected(self, what: str) -> ConfigError:
        """A ConfigError saying what this value should have been and what it is."""
        return self.error(f"expected {what}, got {self.describe()}")

    def describe(self) -> str:
        """A short description of the value for error messages."""
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        value = self._scalar()
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"the boolean {str(value).lower()}"
        if isinstance(value, str):
            return repr(value)
        return f"the {type(value).__name__} {value}"

    def as_mapping(
        self, *, required: Collection[str] = (), optional: Collection[str] = ()
    ) -> dict[str, ConfigNode]:
        """Read a mapping whose keys are exactly `required` plus any of `optional`.

        Returns the child nodes by key, in document order.  Unknown, duplicate and
        missing keys raise ConfigError.
        """
        items = self.as_items()
        allowed = set(required) | set(optional)
        for key, child in items:
            if key not in allowed:
                raise child.error(_unknown_key_message(key, allowed))
        children = dict(items)
        for key in required:
            if key not in children:
                raise self.error(f"missing key '{key}'")
        return children

    def child(self, key: str) -> ConfigNode:
        """The value at `key` of a mapping that has already been read and checked.

        Raises:
            ConfigError: the value is not a mapping or has no such key.
        """
        for found, child in self.as_items():
            if found == key:
                return child
        raise self.error(f"missing key '{key}'")

    def as_items(self) -> list[tuple[str, ConfigNode]]:
        """Read a mapping with string keys of any name (for user-defined maps)."""
        if not isinstance(self.node, yaml.MappingNode):
            raise self.expected("a mapping")
        items: list[tuple[str, ConfigNode]] = []
        seen: set[str] = set()
        for key_node, value_node in self.node.value:
            key_config = ConfigNode(self.source, self.path, key_node)
            key = key_config._scalar()
            if not isinstance(key, str) or not key:
                raise key_config.expected("a non-empty text key")
            if key in seen:
                duplicate = ConfigNode(self.source, self._child_path(key), key_node)
                raise duplicate.error(f"duplicate key '{key}'")
            seen.add(key)
            items.append(
                (key, ConfigNode(self.source, self._child_path(key), value_node))
            )
        return items

    def as_list(self) -> list[ConfigNode]:
        """Read a list; its items are named ``path[i]``."""
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.expected("a list")
        return [
            ConfigNode(self.source, f"{self.path}[{index}]", item)
            for index, item in enumerate(self.node.value)
        ]

    def as_str(
        self,
        *,
        pattern: re.Pattern[str] | None = None,
        expected: str = "non-empty text",
    ) -> str:
        """Read a non-empty string, optionally matching `pattern` (a full match).

        `expected` describes the acceptable values for the error message.
        """
        value = self._scalar()
        if not isinstance(value, str) or not value.strip():
            raise self.expected(expected)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.expected(expected)
        return value

    def as_int(self, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """Read an integer within the inclusive bounds."""
        value = self._scalar()
        bounds = _describe_bounds(minimum, maximum)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.expected(f"an integer{bounds}")
        if (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum
        ):
            raise self.expected(f"an integer{bounds}")
        return value

    def as_bool(self) -> bool:
        """Read ``true`` or ``false``."""
        value = self._scalar()
        if not isinstance(value, bool):
            raise self.expected("true or false")
        return value

    def _scalar(self) -> object:
        """The Python value of a scalar node; mappings and lists give a sentinel."""
        if not isinstance(self.node, yaml.ScalarNode):
            return _NOT_SCALAR
        try:
            return SafeConstructor().construct_object(self.node, deep=True)
        except ConstructorError as error:
            raise self.error(f"cannot read the value: {error.problem}") from error

    def _child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


_NOT_SCALAR = object()


def optional_list(
    fields: dict[str, ConfigNode], key: str, read: Callable[[ConfigNode], _T]
) -> tuple[_T, ...]:
    """Read an optional list key with `read` per item; absent or null means empty."""
    node = fields.get(key)
    if node is None or node.is_null:
        return ()
    return tuple(read(item) for item in node.as_list())


def check_unique(entries: Iterable[tuple[ConfigNode, _K]], *, what: str) -> None:
    """Raise at the second node whose key repeats an earlier one.

    `entries` pairs each node with the value that must be unique (which may be a
    normalised form, such as a case-folded name, or a tuple of several values);
    `what` names the value in the message (``"MSP id"``).
    """
    first_seen: dict[_K, ConfigNode] = {}
    for node, key in entries:
        earlier = first_seen.setdefault(key, node)
        if earlier is not node:
            shown = (
                ":".join(str(part) for part in key)
                if isinstance(key, tuple)
                else node.describe()
            )
            raise node.error(
                f"duplicate {what} {shown} (already used at {earlier.path})"
            )


def _unknown_key_message(key: str, allowed: Collection[str]) -> str:
    if not allowed:
        return f"unknown key '{key}' (no keys are allowed here)"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    known = ", ".join(sorted(allowed))
    return f"unknown key '{key}' (expected one of: {known}){hint}"


def _describe_bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""
