"""The DER (ASN.1) encodings a block header hash needs: INTEGER, OCTET STRING, SEQUENCE.

Written out by hand so the header hash depends on no library's encoder; the output is
what Go's encoding/asn1 produces for a big.Int and two byte slices.
"""

from __future__ import annotations

_TAG_INTEGER = 0x02
_TAG_OCTET_STRING = 0x04
_TAG_SEQUENCE = 0x30
_SHORT_FORM_MAX = 0x7F


def der_integer(value: int) -> bytes:
    """A non-negative INTEGER, minimal two's complement (0x00 first if top bit set)."""
    if value < 0:
        raise ValueError(f"der_integer encodes non-negative values only, got {value}")
    # One byte more than the magnitude needs whenever its top bit is set, so the sign
    # bit reads as positive; zero is the single byte 0x00.
    content = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _tag_length_value(_TAG_INTEGER, content)


def der_octet_string(value: bytes) -> bytes:
    """An OCTET STRING; empty input gives the two bytes 04 00."""
    return _tag_length_value(_TAG_OCTET_STRING, value)


def der_sequence(*elements: bytes) -> bytes:
    """A SEQUENCE of already-encoded elements, in the given order."""
    return _tag_length_value(_TAG_SEQUENCE, b"".join(elements))


def der_length(length: int) -> bytes:
    """A definite length: one byte below 128, else 0x80 | n, then n big-endian bytes."""
    if length <= _SHORT_FORM_MAX:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _tag_length_value(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content
