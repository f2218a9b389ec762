"""Values both databases can store: the few characters they refuse, escaped reversibly.

PostgreSQL refuses NUL (U+0000) in text and jsonb, and neither database driver can encode a lone surrogate
(U+D800 to U+DFFF) as UTF-8. Each such character is stored as U+FFFF followed by its code in four upper-case
hex digits, and a U+FFFF that was already there as U+FFFF "FFFF", so `unescape` returns the exact value
received. Text without these characters (all ordinary text) is stored unchanged.
"""

from __future__ import annotations

import math
import re
from typing import Any

ESCAPE = "\uffff"
_REFUSED = re.compile("[\x00\ud800-\udfff\uffff]")
_ESCAPED = re.compile(ESCAPE + "([0-9A-F]{4})")


def escape(text: str) -> str:
    """The text with every character a database refuses escaped."""
    return _REFUSED.sub(lambda match: f"{ESCAPE}{ord(match.group()):04X}", text)


def unescape(text: str) -> str:
    """The text as received, from its stored form."""
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), text)


def escape_json(value: Any) -> Any:
    """A decoded JSON value with every string in it, keys included, escaped; the same object when none needs
    it (the common case, checked in one pass: this runs on every list item and body)."""
    return value if _clean(value) else _escaped(value)


def _clean(value: Any) -> bool:
    if isinstance(value, str):
        return not _REFUSED.search(value)
    if isinstance(value, dict):
        strings = [key for key in value if isinstance(key, str)]
        strings += [item for item in value.values() if isinstance(item, str)]
        # Joining cannot make a refused character: each is one code point.
        return not _REFUSED.search("".join(strings)) and all(
            _clean(item) for item in value.values() if isinstance(item, (dict, list))
        )
    if isinstance(value, list):
        return all(_clean(item) for item in value)
    return True


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


# What an INTEGER column holds on PostgreSQL (32 bits); SQLite's holds more, but both store the same values.
# Every integer read from a body (milliseconds, counts, channels) goes into one.
_INTEGER = range(-(2**31), 2**31)


def storable_number(value: Any) -> float | None:
    """A JSON number as a float; None for what is no number (true, text) or too large for a float (JSON allows
    an integer of 400 digits, which float() refuses with OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def storable_integer(value: Any) -> int | None:
    """A JSON number that is a whole number an INTEGER column holds, as int; None otherwise (2.5, Infinity, NaN,
    1e30). Past 64 bits SQLite's driver raised OverflowError, which is no database error: a body holding one
    stopped hydration on every run. Past 32 bits PostgreSQL refused the transcript's details."""
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int) and not isinstance(value, bool) and value in _INTEGER:
        return value
    return None
