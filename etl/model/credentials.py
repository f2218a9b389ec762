"""Credentials in presigned URLs: kept out of the database unless the user asks to keep them.

An `audio_url` may be a presigned URL (Amazon S3, Google Cloud Storage, Azure Blob Storage): its query
carries a signature, and sometimes a session token, that let anyone holding the URL read the audio until
it expires. Such a URL is quoted in more than `audio_url`: AssemblyAI's download-failure `error` names it,
and a body may repeat it. So every string of an item or body is looked through. Only those parameters'
values are replaced; the rest of the text stays as received.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "REDACTED"
CREDENTIAL_PARAMETERS = (
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",  # S3 (signature version 4)
    "X-Goog-Signature", "X-Goog-Credential",  # Google Cloud Storage (V4 signing)
    "sig",  # Azure shared access signature
)
_CREDENTIAL = re.compile(r"([?&](?:" + "|".join(map(re.escape, CREDENTIAL_PARAMETERS)) + r")=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with the value of every credential parameter replaced by REDACTED."""
    return _CREDENTIAL.sub(lambda match: match.group(1) + REDACTED, url)


def has_credentials(text: str) -> bool:
    """Whether the text (a URL, a message, an item's JSON) holds a credential parameter."""
    return _CREDENTIAL.search(text) is not None


def redact_credentials(value: Any) -> Any:
    """A list item or transcript body with the credentials in every string redacted, wherever they are
    quoted; the same object when there are none."""
    if isinstance(value, str):
        return redact_url(value) if ("=" in value and has_credentials(value)) else value
    if isinstance(value, dict):
        changed = {key: redact_credentials(item) for key, item in value.items()}
        return value if all(changed[key] is item for key, item in value.items()) else changed
    if isinstance(value, list):
        items = [redact_credentials(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    return value
