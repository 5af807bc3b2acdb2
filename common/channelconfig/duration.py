"""Go duration strings ("2s", "250ms", "1m30s"), as channel configs store batch timeouts.

`BatchTimeout.timeout` holds a string in the syntax of Go's `time.ParseDuration`, and
Fabric's configtxgen writes it in the form of Go's `Duration.String()`. These two
functions do the same in Python, on integer nanoseconds so nothing is lost to floats.

Syntax: an optional sign, then one or more decimal numbers, each with an optional
fraction and a unit (``ns``, ``us``/``µs``/``μs``, ``ms``, ``s``, ``m``, ``h``), e.g.
``1h15m``, ``1.5s``, ``.5ms``; a bare ``0`` is allowed too.
"""

from __future__ import annotations

__all__ = [
    "NANOSECONDS_PER_SECOND",
    "format_go_duration",
    "parse_go_duration",
    "parse_go_duration_ns",
]

NANOSECONDS_PER_SECOND = 1_000_000_000
_MICROSECOND = 1_000
_MILLISECOND = 1_000_000
_MINUTE = 60 * NANOSECONDS_PER_SECOND
_INT64_MAX = (1 << 63) - 1
_INT64_DIGITS = len(str(_INT64_MAX))

_UNITS = {
    "ns": 1,
    "us": _MICROSECOND,
    "\u00b5s": _MICROSECOND,  # micro sign, as Go writes it
    "\u03bcs": _MICROSECOND,  # Greek small letter mu
    "ms": _MILLISECOND,
    "s": NANOSECONDS_PER_SECOND,
    "m": _MINUTE,
    "h": 60 * _MINUTE,
}
_DIGITS = frozenset("0123456789")


def parse_go_duration(text: str) -> float:
    """The duration in seconds.

    Raises:
        ValueError: `text` is not a Go duration, or it overflows int64 nanoseconds.
    """
    return parse_go_duration_ns(text) / NANOSECONDS_PER_SECOND


def parse_go_duration_ns(text: str) -> int:
    """The duration in whole nanoseconds, computed exactly as Go computes it.

    Raises:
        ValueError: `text` is not a Go duration, or it overflows int64 nanoseconds.
    """
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    limit = _INT64_MAX + 1 if negative else _INT64_MAX
    total = 0
    while rest:
        nanoseconds, rest = _component(rest, text)
        total += nanoseconds
        if total > limit:
            raise ValueError(f"invalid duration {text!r}: overflows int64 nanoseconds")
    return -total if negative else total


def format_go_duration(nanoseconds: int) -> str:
    """Render as Go's `Duration.String()` does: "250ms", "2s", "1m30s", "1h0m0s".

    Raises:
        ValueError: the value does not fit in int64.
    """
    if not -_INT64_MAX - 1 <= nanoseconds <= _INT64_MAX:
        raise ValueError(f"duration {nanoseconds}ns does not fit in int64")
    sign = "-" if nanoseconds < 0 else ""
    size = abs(nanoseconds)
    if size == 0:
        return "0s"
    if size < _MICROSECOND:
        return f"{sign}{size}ns"
    if size < _MILLISECOND:
        return f"{sign}{_decimal(size, 3)}\u00b5s"
    if size < NANOSECONDS_PER_SECOND:
        return f"{sign}{_decimal(size, 6)}ms"
    whole_seconds, fraction = divmod(size, NANOSECONDS_PER_SECOND)
    minutes, seconds = divmod(whole_seconds, 60)
    text = f"{_decimal(seconds * NANOSECONDS_PER_SECOND + fraction, 9)}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _component(rest: str, text: str) -> tuple[int, str]:
    """Read one ``<number>[.<fraction>]<unit>``; return its nanoseconds and what follows.

    The fraction is scaled with float64 arithmetic, as Go does, so that results agree to
    the nanosecond.
    """
    whole, rest = _take_digits(rest)
    fraction = ""
    has_point = rest.startswith(".")
    if has_point:
        fraction, rest = _take_digits(rest[1:])
    if not whole and not fraction:
        raise ValueError(f"invalid duration {text!r}: expected a number")
    unit_length = next(
        (i for i, char in enumerate(rest) if char in _DIGITS or char == "."), len(rest)
    )
    unit, rest = rest[:unit_length], rest[unit_length:]
    if not unit:
        raise ValueError(f"invalid duration {text!r}: missing unit")
    scale = _UNITS.get(unit)
    if scale is None:
        raise ValueError(
            f"invalid duration {text!r}: unknown unit {unit!r} "
            "(expected ns, us, µs, ms, s, m or h)"
        )
    if len(whole) > _INT64_DIGITS or int(whole or "0") > (_INT64_MAX + 1) // scale:
        raise ValueError(f"invalid duration {text!r}: overflows int64 nanoseconds")
    nanoseconds = int(whole or "0") * scale
    numerator, denominator = _leading_fraction(fraction)
    if numerator:
        nanoseconds += int(float(numerator) * (float(scale) / denominator))
    return nanoseconds, rest


def _leading_fraction(digits: str) -> tuple[int, float]:
    """The fraction's digits as an integer and its float scale, dropping digits beyond
    what an int64 holds (Go's `leadingFraction`)."""
    value = 0
    scale = 1.0
    for char in digits:
        if value > _INT64_MAX // 10:
            break
        candidate = value * 10 + int(char)
        if candidate > _INT64_MAX + 1:
            break
        value = candidate
        scale *= 10
    return value, scale


def _take_digits(text: str) -> tuple[str, str]:
    end = next((i for i, char in enumerate(text) if char not in _DIGITS), len(text))
    return text[:end], text[end:]


def _decimal(value: int, places: int) -> str:
    """`value` / 10**places with the fraction's trailing zeros (and point) dropped."""
    whole, fraction = divmod(value, 10**places)
    digits = f"{fraction:0{places}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
