"""Value classification (`stored_value`) against `json.loads`, the rule it implements."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from peer.ledger.values import stored_value


def _reference(value: bytes) -> bytes | str:
    """TEXT exactly when the bytes are UTF-8 JSON (no NaN/Infinity) for an object."""

    def reject(name: str) -> object:
        raise ValueError(name)

    try:
        text = value.decode("utf-8")
        document = json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError):
        return value
    if not isinstance(document, dict) or text.lstrip(" \t\r\n")[:1] != "{":
        return value
    return text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_PADDING = st.sampled_from(["", " ", "\n", "\t\r ", "\f", "\v", "\u00a0"])


@settings(max_examples=150, deadline=None)
@given(document=_JSON, before=_PADDING, after=_PADDING, tail=st.binary(max_size=2))
def test_stored_value_agrees_with_json_loads(
    document: object, before: str, after: str, tail: bytes
) -> None:
    value = (before + json.dumps(document) + after).encode() + tail
    assert stored_value(value) == _reference(value)


def test_stored_value_edge_cases() -> None:
    cases = [
        b'{"a": 1}',
        b' \r\n\t{"a": 1} \n',
        b'{"a": 1} x',
        b'{"a": 1}{}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": "\xff"}',
        b'{"a": "\\ud800"}',
        b"{" * 5000 + b"}" * 5000,
        b'{"a": 1,}',
        b"{'a': 1}",
        b"\xef\xbb\xbf{}",
        b"{}",
        b"",
    ]
    for value in cases:
        assert stored_value(value) == _reference(value), value
