"""Values both databases can store: the few characters they refuse, escaped reversibly.

PostgreSQL refuses NUL (U+0000) in text and jsonb, and neither database driver can encode a lone surrogate
(U+D800 to U+DFFF) as UTF-8. Each such character is stored as U+FFFF followed by its code in four upper-case
hex digits, and a U+FFFF that was already there as U+FFFF "FFFF", so `unescape` returns the exact value
received. Text without these characters (all ordinary text) is stored unchanged.
"""

from __future__ import annotations

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
    """A decoded JSON value with every string in it, keys included, escaped; the same object when none needs it."""
    if isinstance(value, str):
        return escape(value) if _REFUSED.search(value) else value
    if isinstance(value, dict):
        items = [(escape_json(key), escape_json(item)) for key, item in value.items()]
        if all(new_key is key and new is item for (new_key, new), (key, item) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, list):
        escaped = [escape_json(item) for item in value]
        return value if all(new is item for new, item in zip(escaped, value)) else escaped
    return value
