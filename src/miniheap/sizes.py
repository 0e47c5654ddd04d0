"""Byte sizes as people write them ("64M", "2G") and as logs print them.

Units are binary, as in the JVM's -Xmx: K = 1024, M = 1024 K, and so on.
Only whole numbers of bytes are accepted: a heap is carved into pages and
regions, and "1.5G" invites rounding surprises, so we ask for "1536M".
"""

from __future__ import annotations

import re

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40

# Largest size we accept: the C side stores sizes in uint64_t.
MAX_SIZE = (1 << 64) - 1

_UNITS = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}

# Number, optional unit letter, optional "iB" (or plain "B" for bytes).
_SIZE_RE = re.compile(r"(?P<digits>[0-9][0-9_]*)\s*(?P<unit>[KMGT]?)(?P<suffix>IB|B)?", re.IGNORECASE)

EXAMPLES = "4096, 512K, 64M, 64MiB, 2G, 1T"


def _reject(value: object, problem: str) -> ValueError:
    return ValueError(
        f"{value!r} is not a size: {problem}; write a whole number of bytes with an optional "
        f"binary unit K/M/G/T (K=1024), e.g. {EXAMPLES}"
    )


def parse_size(value: int | str) -> int:
    """Return the number of bytes that `value` names.

    Accepts a non-negative int, or a string like "4096", "512K", "64m", "64MiB", "2G", "1T".
    Raises ValueError naming the value and showing allowed forms.
    """
    # bool is an int subclass; True as "1 byte" is always a mistake.
    if isinstance(value, bool):
        raise _reject(value, "a boolean is not a number of bytes")
    if isinstance(value, int):
        return _check_range(value, value)
    if not isinstance(value, str):
        raise _reject(value, f"expected an int or a string, got {type(value).__name__}")
    return _parse_text(value)


def _parse_text(text: str) -> int:
    stripped = text.strip()
    if not stripped:
        raise _reject(text, "it is empty")
    if stripped.startswith("-"):
        raise _reject(text, "sizes cannot be negative")
    match = _SIZE_RE.fullmatch(stripped)
    if match is None:
        if re.fullmatch(r"[0-9_]*[.,][0-9_]*\s*[A-Za-z]*", stripped):
            raise _reject(text, "fractions are not allowed, use a smaller unit (1.5G is 1536M)")
        raise _reject(text, "expected digits followed by an optional unit")
    unit = match["unit"].upper()
    suffix = (match["suffix"] or "").upper()
    # "64MB" is decimal (10^6) to some readers and binary to others: refuse to guess.
    if unit and suffix == "B":
        raise _reject(text, f"'{unit}B' is ambiguous, write '{unit}' or '{unit}iB' (both mean {_UNITS[unit]} bytes)")
    if not unit and suffix == "IB":
        raise _reject(text, "'iB' needs a unit letter before it, as in KiB or MiB")
    count = int(match["digits"].replace("_", ""))
    return _check_range(text, count * _UNITS[unit])


def _check_range(original: object, size: int) -> int:
    if size < 0:
        raise _reject(original, "sizes cannot be negative")
    if size > MAX_SIZE:
        raise _reject(original, "it does not fit in 64 bits")
    return size


def format_size(n: int) -> str:
    """Compact JVM-log style: 67108864 -> "64M", 1.5 GiB -> "1.5G", 100 -> "100B".

    Exact multiples print without a decimal point, so "64M" round-trips
    through parse_size; other values get one decimal ("64.0M" means "about").
    """
    sign, magnitude = ("-", -n) if n < 0 else ("", n)
    for letter, unit in (("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)):
        if magnitude >= unit:
            return sign + _scaled(magnitude, unit, letter)
    return f"{sign}{magnitude}B"


def _scaled(magnitude: int, unit: int, letter: str) -> str:
    if magnitude % unit == 0:
        return f"{magnitude // unit}{letter}"
    return f"{magnitude / unit:.1f}{letter}"


def format_bytes_human(n: int) -> str:
    """Prose style with IEC units: "64 MiB", "1.5 GiB", "12.3 KiB", "100 bytes".

    Three significant digits are enough to compare memory figures by eye.
    """
    sign, magnitude = ("-", -n) if n < 0 else ("", n)
    if magnitude < KIB:
        return f"{sign}{magnitude} byte" + ("" if magnitude == 1 else "s")
    for name, unit in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if magnitude >= unit:
            return f"{sign}{_three_digits(magnitude / unit)} {name}"
    raise AssertionError("unreachable")


def _three_digits(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}".removesuffix(".0")
    return f"{x:.2f}".rstrip("0").rstrip(".")
