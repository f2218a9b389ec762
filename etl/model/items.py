"""List items as typed rows: every field under the API's own name, a bad value as None and named.

The statuses are here too: which are known, which are final and which are pending. `as_stored` makes any
value from the API storable, a list item, a transcript body or an extra detail alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from etl.model.credentials import has_credentials, redact_credentials
from etl.model.storable import dumps, escape_json

STATUSES = frozenset({"queued", "processing", "completed", "error"})
PENDING_STATUSES = ("queued", "processing")
FINAL_STATUSES = ("completed", "error")
TEXT_FIELDS = ("audio_url", "resource_url", "error")
NULLABLE_FIELDS = frozenset({"completed", "error"})
# Ids are uuids; one this long cannot be a key (PostgreSQL's index rows hold about 2,700 bytes).
MAX_ID_LENGTH = 500
_HAS_TIME = re.compile(r"\d[T ]\d{2}:\d{2}")
# The API's own form: no offset, UTC. Matched whole, it is read as UTC in one call (see parse_timestamp).
_API_FORM = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")
# What the API lists as a deleted transcript's audio_url; the transcript itself stays listed.
DELETED_AUDIO_URL = "http://deleted_by_user"


@dataclass(frozen=True, slots=True)
class Item:
    """One list item: `row` holds the typed columns and `raw`, `bad_fields` what could not be read, `raw_json`
    the stored `raw` as JSON text (empty for an item without a usable id or one `refused`: it is never stored)."""

    id: str | None
    row: dict[str, Any]
    bad_fields: tuple[str, ...]
    raw_json: str = ""
    refused: str | None = None  # why no database can store it


def as_stored(value: Any, *, redact: bool) -> tuple[Any, str]:
    """A decoded JSON value as it is stored, and its JSON text: credentials redacted if `redact`
    (etl.model.credentials), every string made storable (etl.model.storable). ValueError for NaN or
    Infinity, which are not JSON; RecursionError for a value too deep to walk.

    The text is needed to store the value anyway, and it is ASCII: every character a database refuses is
    written as a \\u escape in it. Without one (nearly every item and body) there is nothing to escape, and
    without a credential parameter nothing to redact: no walk through the value's strings."""
    text = dumps(value)
    if redact and has_credentials(text):
        value = redact_credentials(value)
        text = dumps(value)
    if "\\u" in text:
        escaped = escape_json(value)
        if escaped is not value:
            value, text = escaped, dumps(escaped)
    return value, text


def parse_item(raw: Any, keep_presigned_credentials: bool = False) -> Item:
    """The item as stored: every string made storable (etl.model.storable), the credentials of presigned
    URLs redacted wherever the item quotes them unless asked to keep them (etl.model.credentials), the
    typed columns read from it."""
    if not isinstance(raw, dict):
        return Item(None, {"raw": raw}, ("item",))
    try:
        raw, raw_json = as_stored(raw, redact=not keep_presigned_credentials)
    except ValueError:
        # Not JSON, so neither database can hold it: refused alone, as PostgreSQL's jsonb refuses it.
        return _refused(raw, "it holds NaN or Infinity, which are not JSON")
    except RecursionError:  # read, but too deep for the walks that make it storable: the same on every run
        return _refused(raw, "it nests its values too deeply to store")
    bad: list[str] = []
    transcript_id = raw.get("id")
    if not isinstance(transcript_id, str) or not transcript_id or len(transcript_id) > MAX_ID_LENGTH:
        return Item(None, {"raw": raw}, ("id",))
    status = raw.get("status")
    if status not in STATUSES:
        # An unknown status is stored as received (a warning names it) and treated as pending until it
        # becomes a known final one; a status that is not text at all is stored as NULL, also pending.
        bad.append("status")
        if not isinstance(status, str):
            status = None
    row = {
        "id": transcript_id,
        "status": status,
        "created": _timestamp(raw, "created", bad),
        "completed": _timestamp(raw, "completed", bad),
        "raw": raw,
    }
    for name in TEXT_FIELDS:
        value = raw.get(name)
        if not _absent(raw, name, bad) and not isinstance(value, str):
            bad.append(name)
            value = None
        row[name] = value
    return Item(transcript_id, row, tuple(bad), raw_json)


def _refused(raw: dict[str, Any], reason: str) -> Item:
    transcript_id = raw.get("id")
    if not isinstance(transcript_id, str) or not transcript_id or len(transcript_id) > MAX_ID_LENGTH:
        return Item(None, {"raw": raw}, ("id",))
    return Item(escape_json(transcript_id), {"raw": raw}, (), refused=reason)


def parse_timestamp(value: Any) -> datetime | None:
    """The API's timestamps carry no offset and are UTC; one that does carry an offset is converted.
    A bare date is not a timestamp: reading it as midnight would invent a time."""
    if not isinstance(value, str):
        return None
    if _API_FORM.fullmatch(value):
        # Nearly every value: parsed with its offset spelled out, because replace(tzinfo=) after the parse
        # costs ten times the parse itself, twice per item.
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # the right shape, an impossible date or time
            return None
    if not _HAS_TIME.search(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: an offset that takes it past year 1 or 9999 in UTC
        return None


def _timestamp(raw: dict[str, Any], name: str, bad: list[str]) -> datetime | None:
    if _absent(raw, name, bad):
        return None
    parsed = parse_timestamp(raw[name])
    if parsed is None:
        bad.append(name)
    return parsed


def _absent(raw: dict[str, Any], name: str, bad: list[str]) -> bool:
    """True when the field holds no value; a missing field, or a null where the spec forbids one, is bad."""
    if raw.get(name) is not None:
        return False
    if name not in raw or name not in NULLABLE_FIELDS:
        bad.append(name)
    return True
