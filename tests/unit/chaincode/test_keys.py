"""Fabric's key rules: composite keys, range bounds for simple and partial keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincode import InvalidKeyError, create_composite_key, split_composite_key
from chaincode.shim.keys import (
    EMPTY_KEY_SUBSTITUTE,
    MAX_UNICODE_RUNE,
    check_collection,
    check_key,
    partial_key_range,
    simple_key_range,
)

# Text a composite-key part may hold: any code point but U+0000, U+10FFFF and surrogates.
PART = st.text(st.characters(codec="utf-8", exclude_characters="\x00\U0010ffff"))


def test_composite_key_layout() -> None:
    """U+0000, object type, then every attribute, each followed by U+0000."""
    key = create_composite_key("color~name", ["blue", "a1"])
    assert key == "\x00color~name\x00blue\x00a1\x00"
    assert create_composite_key("t", []) == "\x00t\x00"


@given(PART, st.lists(PART, max_size=5))
def test_split_undoes_create(object_type: str, attributes: list[str]) -> None:
    key = create_composite_key(object_type, attributes)
    assert split_composite_key(key) == (object_type, attributes)


@pytest.mark.parametrize(
    ("object_type", "attributes"),
    [
        ("bad\x00type", []),
        ("type", ["ok", "bad\x00"]),
        ("type", [f"max{MAX_UNICODE_RUNE}"]),
        ("type", ["\ud800"]),
    ],
)
def test_create_refuses_forbidden_characters(
    object_type: str, attributes: list[str]
) -> None:
    with pytest.raises(InvalidKeyError):
        create_composite_key(object_type, attributes)


@pytest.mark.parametrize("key", ["", "\x00", "plain", "\x00type\x00attr"])
def test_split_refuses_non_composite_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        split_composite_key(key)


def test_invalid_key_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="U\\+0000"):
        create_composite_key("a\x00", [])


def test_simple_ranges_start_after_composite_keys() -> None:
    """An empty start becomes U+0001, so composite keys (U+0000...) are never returned."""
    assert simple_key_range("", "") == (EMPTY_KEY_SUBSTITUTE, "")
    assert simple_key_range("a", "b") == ("a", "b")
    for start, end in (("\x00x", ""), ("a", "\x00b")):
        with pytest.raises(InvalidKeyError, match="U\\+0000"):
            simple_key_range(start, end)


def test_partial_key_range_covers_every_longer_key() -> None:
    start, end = partial_key_range("color~name", ["blue"])
    assert start == "\x00color~name\x00blue\x00"
    assert end == start + MAX_UNICODE_RUNE
    inside = create_composite_key("color~name", ["blue", "zzz\uffff"])
    outside = create_composite_key("color~name", ["bluer", "a"])
    assert start <= inside < end
    assert not start <= outside < end


def test_written_keys_and_collections_must_be_named() -> None:
    with pytest.raises(InvalidKeyError, match="key"):
        check_key("")
    with pytest.raises(InvalidKeyError, match="collection"):
        check_collection("")
    check_key("k")
    check_collection("c")
