"""A transcript body's single values as columns store them: one reader per kind, used by the details and the
audio intelligence tables alike, so the same value in a body is the same value in every table.

Each reader takes a value as JSON gave it (`etl.model.storable.loads`) and returns it in its column's type,
or None for one that is not of its kind; it never changes a value to make it fit. A value present that reads
as None is odd: the callers that warn about odd values count those. Strings reach the readers already escaped
(`etl.model.items.as_stored`).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

# What an INTEGER column holds on PostgreSQL (32 bits); SQLite's holds more, but both store the same values.
_INTEGER = range(-(2**31), 2**31)


def integer(value: Any) -> int | None:
    """Milliseconds, counts, channel counts: a whole number an INTEGER column holds (1234.0 is 1234); None for a
    fraction (1234.5: no column value is exact, and the API documents whole milliseconds), for what is no
    number (true, "1234") and past 32 bits (PostgreSQL's column refuses it; SQLite's driver raised OverflowError
    past 64)."""
    if isinstance(value, Decimal):  # loads gives one only for a fraction of many digits or a huge integer
        whole = value.is_finite() and value.adjusted() < 10 and value == value.to_integral_value()
        value = int(value) if whole else None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int) and not isinstance(value, bool) and value in _INTEGER:
        return value
    return None


def number(value: Any) -> float | None:
    """Confidences, scores, durations: a JSON number as a float; None for what is no number (true, "0.9") or
    too large for a float (JSON allows an integer of 400 digits, which float() refuses with OverflowError,
    and a decimal of 5,000 digits, which float() makes Infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if math.isfinite(as_float) else None


def label(value: Any) -> str | None:
    """A speaker or a channel: text, or a whole number as its digits (the API sends "A" and "1", some bodies 1,
    which names the same speaker or channel); None for anything else (true, 1.5, an object), whose text
    would be Python's rendering of it, not the API's."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def text(value: Any) -> str | None:
    """Words, sentiments, entity types, summaries: text as received; None for anything else."""
    return value if isinstance(value, str) else None


def flag(value: Any) -> bool | None:
    """A request flag (speaker_labels): true or false; None for anything else (1, "true")."""
    return value if isinstance(value, bool) else None
