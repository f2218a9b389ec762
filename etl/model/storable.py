"""Values both databases can store: the few characters they refuse, escaped reversibly.

PostgreSQL refuses NUL (U+0000) in text and jsonb, and neither database driver can encode a lone surrogate
(U+D800 to U+DFFF) as UTF-8. Each such character is stored as U+FFFF followed by its code in four upper-case
hex digits, and a U+FFFF that was already there as U+FFFF "FFFF", so `unescape` returns the exact value
received. Text without these characters (all ordinary text) is stored unchanged.

JSON is read and written here too (`loads`, `dumps`), so that every number is kept exact whatever its size
or form, and a value read back from either database equals the value received.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
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


# Python's limit on the digits of an integer read from or written as text: a longer one stays a Decimal.
_INTEGER_DIGITS = 4300
# Stands for a Decimal in the text json.dumps writes, then replaced by the number: no string a database
# stores can equal it (NUL and lone surrogates are escaped before storing, see above).
_PLACEHOLDER = "\x00\ud800aai-etl number\ud800\x00"
_NUMBER = json.dumps(_PLACEHOLDER)


def loads(text: str | bytes) -> Any:
    """JSON text as Python values, each number as its exact value (`number`). NaN and Infinity, which are not
    JSON but which some servers send, are read as floats: `dumps` refuses them, so they are never stored.
    Nesting past the interpreter's recursion limit raises RecursionError."""
    try:
        return json.loads(text, parse_float=number)
    except ValueError:
        # Read again with every integer through `number`, which is slower: the only ValueError this can
        # mend is an integer past Python's digits; any other the second read raises too.
        return json.loads(text, parse_int=number, parse_float=number)


def dumps(value: Any) -> str:
    """The JSON text of a value `loads` returned, every number exact; ValueError for NaN or Infinity."""
    numbers: list[str] = []
    text = json.dumps(value, allow_nan=False, default=lambda item: _placeholder(item, numbers))
    if not numbers:
        return text
    pieces = text.split(_NUMBER)
    if len(pieces) != len(numbers) + 1:
        raise ValueError("a string in the value reads like aai-etl's placeholder for a number")
    return "".join(piece + written for piece, written in zip(pieces, [*numbers, ""], strict=True))


def number(text: str) -> int | float | Decimal:
    """A JSON number as one Python value, the same for every way of writing it, so that what either database
    gives back (PostgreSQL's jsonb writes 1e23 as 100000000000000000000000) equals what was received: a
    whole number is an int, another a float when the float's shortest form has its value (0.93), a Decimal
    otherwise (more digits than a float holds, past a float's range, or past Python's integer digits)."""
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text) if len(text) <= _INTEGER_DIGITS else Decimal(text)
    as_float = float(text)
    # Nearly every fraction an API sends: at most 15 digits (16 characters with the point, no exponent), which
    # a float holds exactly as written, or the float's own shortest form.
    if ((len(text) <= 16 and "e" not in text and "E" not in text) or repr(as_float) == text) and not as_float.is_integer():
        return as_float
    exact = Decimal(text)
    if exact == exact.to_integral_value():
        return int(exact) if exact.adjusted() < _INTEGER_DIGITS else exact
    return as_float if math.isfinite(as_float) and Decimal(repr(as_float)) == exact else exact


def _placeholder(value: Any, numbers: list[str]) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        numbers.append(str(value))
        return _PLACEHOLDER
    raise TypeError(f"{type(value).__name__} is not a JSON value")
