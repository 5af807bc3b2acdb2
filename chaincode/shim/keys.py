"""Fabric's key rules: composite keys, simple-key range bounds, partial-key ranges.

A composite key is U+0000, the object type, U+0000, then each attribute followed by
U+0000. Because it starts with U+0000 it sorts before every simple key, and simple range
queries start at U+0001 so they never return composite keys. No part may contain U+0000
or U+10FFFF (the largest code point, used as the upper bound of partial-key ranges).
"""

from __future__ import annotations

from collections.abc import Sequence

from chaincode.errors import InvalidKeyError

COMPOSITE_KEY_NAMESPACE = "\x00"
"""First character of every composite key, and the separator after each part."""
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
EMPTY_KEY_SUBSTITUTE = "\x01"
"""Start of a simple range query whose start key is empty: after all composite keys."""


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Join an object type and attributes into a composite key.

    Raises:
        InvalidKeyError: a part contains U+0000 or U+10FFFF or is not encodable UTF-8.
    """
    _check_part(object_type, what="object type")
    for attribute in attributes:
        _check_part(attribute, what="attribute")
    parts = [object_type, *attributes]
    return COMPOSITE_KEY_NAMESPACE + "".join(part + MIN_UNICODE_RUNE for part in parts)


def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
    """The object type and attributes of a composite key.

    Raises:
        InvalidKeyError: the key does not start and end with U+0000.
    """
    if len(composite_key) < 2 or not composite_key.startswith(COMPOSITE_KEY_NAMESPACE):
        raise InvalidKeyError(f"{composite_key!r} is not a composite key")
    if not composite_key.endswith(MIN_UNICODE_RUNE):
        raise InvalidKeyError(
            f"composite key {composite_key!r} is not terminated by U+0000"
        )
    object_type, *attributes = composite_key[1:-1].split(MIN_UNICODE_RUNE)
    return object_type, attributes


def partial_key_range(object_type: str, attributes: Sequence[str]) -> tuple[str, str]:
    """The [start, end) range holding every composite key with this prefix.

    Raises:
        InvalidKeyError: see `create_composite_key`.
    """
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE


def simple_key_range(start_key: str, end_key: str) -> tuple[str, str]:
    """Range bounds for a query over simple keys ("" start = from the first simple key).

    Raises:
        InvalidKeyError: a bound is a composite key (starts with U+0000).
    """
    start = start_key or EMPTY_KEY_SUBSTITUTE
    for key in (start, end_key):
        if key.startswith(COMPOSITE_KEY_NAMESPACE):
            raise InvalidKeyError(
                f"first character of the key {key!r} is U+0000, which is not allowed"
            )
    return start, end_key


def check_key(key: str) -> None:
    """A key that is written must not be empty.

    Raises:
        InvalidKeyError: the key is empty.
    """
    if not key:
        raise InvalidKeyError("key must not be an empty string")


def check_collection(collection: str) -> None:
    """Private-data calls must name a collection.

    Raises:
        InvalidKeyError: the collection name is empty.
    """
    if not collection:
        raise InvalidKeyError("collection must not be an empty string")


def _check_part(part: str, *, what: str) -> None:
    try:
        part.encode()
    except UnicodeEncodeError:
        raise InvalidKeyError(f"{what} {part!r} is not valid UTF-8") from None
    for position, character in enumerate(part):
        if character in (MIN_UNICODE_RUNE, MAX_UNICODE_RUNE):
            raise InvalidKeyError(
                f"{what} {part!r} contains U+{ord(character):04X} at position {position}; "
                "U+0000 and U+10FFFF are not allowed in composite key parts"
            )
