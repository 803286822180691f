"""Units: the one grammar for durations, rates, sizes and ranges in scenarios.

Durations: `500ms`, `30s`, `5m`, `1h30m`, `14d` (parts in decreasing order).
Rates: `10/s`, `600/m`, `3600/h`. Sizes: `256`, `512B`, `4KiB`, `1KB`, `1GiB`.
Ranges: `50ms..200ms`, `1/s..50/s`. A bare number where a unit is ambiguous is refused
with a hint, so `timeout: 30` never silently means 30 ms or 30 minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3}
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


class UnitError(ValueError):
    """A value that does not follow the grammar; the message says what would."""


def parse_duration(value: object) -> float:
    """Seconds from a duration such as `500ms`, `30s` or `1h30m`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected a duration such as 30s, got {describe(value)}")
    if isinstance(value, (int, float)):
        raise UnitError(f"bare number {value!r} is ambiguous: give a unit, e.g. {_fmt_num(value)}s or {_fmt_num(value)}ms")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise UnitError(f"bare number {text!r} is ambiguous: give a unit, e.g. {text}s or {text}ms")
    pos, total, order = 0, 0.0, list(_DURATION_UNITS)
    last = -1
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        rank = order.index(match.group(2))
        if rank <= last:
            raise UnitError(f"{text!r}: units must go from largest to smallest, each once (e.g. 1h30m)")
        last = rank
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise UnitError(f"{text!r} is not a duration: use a number and a unit (ms, s, m, h, d), e.g. 500ms, 30s, 1h30m")
    return total


def parse_rate(value: object) -> float:
    """Messages per second from a rate such as `10/s` or `600/m`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected a rate such as 10/s, got {describe(value)}")
    if isinstance(value, (int, float)):
        raise UnitError(f"bare number {value!r} is ambiguous: give a unit, e.g. {_fmt_num(value)}/s or {_fmt_num(value)}/m")
    match = _RATE.match(value)
    if not match:
        raise UnitError(f"{value!r} is not a rate: use messages per unit of time, e.g. 10/s, 600/m")
    return float(match.group(1)) / _RATE_UNITS[match.group(2)]


def parse_rate_option(text: str) -> float:
    """Messages per second from a command-line rate: a rate as scenarios write it (`50/s`,
    `600/m`), or a bare number, which an option documented in msg/s makes unambiguous."""
    stripped = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", stripped):
        return float(stripped)
    try:
        return parse_rate(stripped)
    except UnitError:
        raise UnitError(f"{text!r} is not a rate: give messages per second (50) or a rate such as 50/s, 600/m") from None


def parse_size(value: object) -> int:
    """Bytes from a size such as `256`, `512B` or `4KiB`."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size in bytes such as 256 or 4KiB, got {describe(value)}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise UnitError(f"{describe(value)} is not a size: use bytes, e.g. 256, 512B, 4KiB")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_fraction(value: object) -> float:
    """A share from `0.05` or `5%`: a number from 0 to 1, or a percentage from 0% to 100%."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected a fraction such as 0.05 or 5%, got {describe(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d+(\.\d+)?\s*%", text):
            raise UnitError(f"{value!r} is not a fraction: give 0 to 1 (0.05) or a percentage (5%)")
        share = float(text.rstrip("%").strip()) / 100
    else:
        share = float(value)
    if not 0 <= share <= 1:
        raise UnitError(f"{value!r} is not a fraction: it must be from 0 to 1 (0% to 100%)")
    return share


def parse_range(value: object, parse: Callable[[object], float] = parse_duration) -> tuple[float, float]:
    """(low, high) from `LOW..HIGH`, or (x, x) from a single value."""
    if isinstance(value, str) and ".." in value:
        low_text, _, high_text = value.partition("..")
        low, high = parse(low_text), parse(high_text)
        if low > high:
            raise UnitError(f"{value!r}: the low end is above the high end")
        return low, high
    single = parse(value)
    return single, single


def format_duration(seconds: float) -> str:
    """The shortest duration text for a number of seconds (`90` → `1m30s`)."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    if seconds != int(seconds):
        return f"{seconds:.3g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _fmt_num(value: float) -> str:
    return f"{value:g}"


def describe(value: object) -> str:
    """A value as an error message shows it: `text 'abc'`, `int 2`, `a list`, `nothing (null)`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    return f"{type(value).__name__} {value!r}"
