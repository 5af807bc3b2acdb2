"""How values and key metadata are stored in the state table.

A value that is a JSON object is stored as SQLite TEXT (so SQLite's JSON
functions, and therefore rich queries and Mango indexes, see it); any other
value is stored as a BLOB. `CAST(val AS BLOB)` gives the original bytes back
either way. Key metadata (name → bytes) is stored as sorted, length-prefixed
pairs, so equal metadata always encodes to equal bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping

from peer.errors import LedgerError

__all__ = ["decode_metadata", "encode_metadata", "stored_value"]


def stored_value(value: bytes) -> bytes | str:
    """The form a value is stored in: TEXT for a JSON object, BLOB for anything else.

    The same verdict as `json.loads` (without NaN and Infinity) returning a dict,
    reached through the decoder's C scanner directly: this runs for every write.
    """
    if value[:1] == b"{":
        start = 0
    elif value.lstrip(_WHITESPACE_BYTES)[:1] == b"{":
        start = len(value) - len(value.lstrip(_WHITESPACE_BYTES))
    else:
        return value
    try:
        text = value.decode("utf-8")
        document, end = _SCAN(text, start)
    except (ValueError, StopIteration, RecursionError):
        return value
    if end != len(text) and text[end:].strip(_WHITESPACE):
        return value
    return text if isinstance(document, dict) else value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# One decoder for all calls: json.loads with options would build one per call.
# NaN and Infinity are Python extensions that SQLite's JSON parser rejects.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# The decoder's scanner: what `decode` runs after skipping leading whitespace.
_SCAN: Callable[[str, int], tuple[object, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_WHITESPACE = " \t\n\r"
_WHITESPACE_BYTES = _WHITESPACE.encode()


def encode_metadata(metadata: Mapping[str, bytes]) -> bytes | None:
    """A deterministic encoding of key metadata: sorted (name, value) length-prefixed pairs."""
    if not metadata:
        return None
    parts: list[bytes] = []
    for name in sorted(metadata):
        encoded_name = name.encode("utf-8")
        entry = metadata[name]
        parts += [struct.pack(">I", len(encoded_name)), encoded_name]
        parts += [struct.pack(">I", len(entry)), bytes(entry)]
    return b"".join(parts)


def decode_metadata(encoded: bytes | None) -> dict[str, bytes]:
    """Invert `encode_metadata`; raises LedgerError on bytes it did not write."""
    metadata: dict[str, bytes] = {}
    offset = 0
    data = encoded or b""
    try:
        while offset < len(data):
            name, offset = _read_prefixed(data, offset)
            entry, offset = _read_prefixed(data, offset)
            metadata[name.decode("utf-8")] = entry
    except (struct.error, ValueError) as error:
        raise LedgerError(
            f"corrupt key metadata in the state database: {error}"
        ) from error
    return metadata


def _read_prefixed(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", data, offset)
    start = offset + 4
    if start + length > len(data):
        raise ValueError("length prefix runs past the end")
    return data[start : start + length], start + length
