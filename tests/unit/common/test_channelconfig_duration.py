"""Unit tests for common.channelconfig.duration: Go duration strings, both ways.

The expected values are those of Go's `time.ParseDuration` and `Duration.String()`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.channelconfig import (
    format_go_duration,
    parse_go_duration,
    parse_go_duration_ns,
)

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
INT64_MAX = (1 << 63) - 1


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("2s", 2 * SECOND),
        ("250ms", 250_000_000),
        ("1m30s", 90 * SECOND),
        ("-5s", -5 * SECOND),
        ("+5s", 5 * SECOND),
        ("5.6s", 5_600_000_000),
        ("5.s", 5 * SECOND),
        (".5s", 500_000_000),
        ("1.004s", 1_004_000_000),
        ("100.00100s", 100_001_000_000),
        ("10ns", 10),
        ("11us", 11_000),
        ("12\u00b5s", 12_000),
        ("12\u03bcs", 12_000),
        ("13ms", 13_000_000),
        ("16h", 16 * HOUR),
        ("3h30m", 3 * HOUR + 30 * MINUTE),
        ("10.5s4m", 4 * MINUTE + 10_500_000_000),
        ("-2m3.4s", -(2 * MINUTE + 3_400_000_000)),
        ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4_005_006),
        ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14_425_000_000),
        ("0.3333333333333333333h", 20 * MINUTE),
        ("0.9223372036854775807h", 55 * MINUTE + 20 * SECOND + 413_933_267),
        ("9223372036854775807ns", INT64_MAX),
        ("9223372036s854ms775us807ns", INT64_MAX),
        ("-9223372036854775808ns", -INT64_MAX - 1),
    ],
)
def test_parse_matches_go(text: str, nanoseconds: int) -> None:
    assert parse_go_duration_ns(text) == nanoseconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "1.5",
        "00",
        "2 s",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036855s",
    ],
)
def test_parse_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration_ns(text)


def test_parse_in_seconds() -> None:
    assert parse_go_duration("250ms") == 0.25
    assert parse_go_duration("1m30s") == 90.0


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_100, "1.1\u00b5s"),
        (2_200_000, "2.2ms"),
        (250_000_000, "250ms"),
        (2 * SECOND, "2s"),
        (1_500_000_000, "1.5s"),
        (MINUTE, "1m0s"),
        (90 * SECOND, "1m30s"),
        (HOUR, "1h0m0s"),
        (HOUR + 1, "1h0m0.000000001s"),
        (-2 * SECOND, "-2s"),
        (INT64_MAX, "2562047h47m16.854775807s"),
    ],
)
def test_format_matches_go(nanoseconds: int, text: str) -> None:
    assert format_go_duration(nanoseconds) == text


def test_format_rejects_values_outside_int64() -> None:
    with pytest.raises(ValueError, match="int64"):
        format_go_duration(INT64_MAX + 1)


@given(st.integers(min_value=-INT64_MAX - 1, max_value=INT64_MAX))
def test_formatted_durations_parse_back(nanoseconds: int) -> None:
    assert parse_go_duration_ns(format_go_duration(nanoseconds)) == nanoseconds
