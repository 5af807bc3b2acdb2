"""State keys: Fabric's composite-key format and the rules for simple keys.

A composite key is U+0000, the object type, U+0000, then each attribute followed
by U+0000. Parts may not contain U+0000 (the separator) or U+10FFFF (the largest
code point, used as the exclusive upper bound of partial-key ranges). Keys sort
by their UTF-8 bytes, which is code-point order, the same as Go's string compare;
every composite key therefore sorts before every simple key, and all keys that
share a prefix P lie in [P, P + U+10FFFF).
"""

from __future__ import annotations

from collections.abc import Sequence

from peer.errors import InvalidKey

__all__ = [
    "COMPOSITE_KEY_NAMESPACE",
    "MAX_UNICODE_RUNE",
    "MIN_UNICODE_RUNE",
    "create_composite_key",
    "is_composite_key",
    "partial_composite_key_range",
    "split_composite_key",
    "validate_simple_key",
]

MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
COMPOSITE_KEY_NAMESPACE = "\x00"


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Join an object type and attributes into one composite key."""
    _validate_part(object_type)
    for attribute in attributes:
        _validate_part(attribute)
    parts = [COMPOSITE_KEY_NAMESPACE, object_type, MIN_UNICODE_RUNE]
    for attribute in attributes:
        parts += [attribute, MIN_UNICODE_RUNE]
    return "".join(parts)


def split_composite_key(key: str) -> tuple[str, tuple[str, ...]]:
    """Split a composite key into its object type and attributes."""
    if not is_composite_key(key) or len(key) < 2 or not key.endswith(MIN_UNICODE_RUNE):
        raise InvalidKey(f"{key!r} is not a composite key")
    components = key[1:-1].split(MIN_UNICODE_RUNE)
    return components[0], tuple(components[1:])


def partial_composite_key_range(
    object_type: str, attributes: Sequence[str] = ()
) -> tuple[str, str]:
    """The [start, end) key range holding every key with this object type and leading attributes."""
    prefix = create_composite_key(object_type, attributes)
    return prefix, prefix + MAX_UNICODE_RUNE


def is_composite_key(key: str) -> bool:
    """Whether the key is in the composite-key namespace (starts with U+0000)."""
    return key.startswith(COMPOSITE_KEY_NAMESPACE)


def validate_simple_key(key: str) -> None:
    """Reject a simple key that is not valid UTF-8 or starts with U+0000."""
    _validate_utf8(key)
    if is_composite_key(key):
        raise InvalidKey(
            f"first character of the key {key!r} is U+0000, "
            "which is reserved for composite keys"
        )


def _validate_part(part: str) -> None:
    _validate_utf8(part)
    if MIN_UNICODE_RUNE in part:
        raise InvalidKey(
            f"composite key part {part!r} contains U+0000, which is not allowed"
        )
    if MAX_UNICODE_RUNE in part:
        raise InvalidKey(
            f"composite key part {part!r} contains U+10FFFF, which is not allowed"
        )


def _validate_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidKey(f"key {text!r} is not valid UTF-8: {error.reason}") from error
