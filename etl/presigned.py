"""Credentials in presigned URLs: kept out of the database unless the user asks to keep them.

An `audio_url` may be a presigned URL (Amazon S3, Google Cloud Storage, Azure Blob Storage): its query
carries a signature, and sometimes a session token, that let anyone holding the URL read the audio until
it expires. Only those parameters' values are replaced; the rest of the URL stays as received.
"""

from __future__ import annotations

import re

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


def redact_audio_url(value: dict) -> dict:
    """A list item or transcript body with the credentials in its `audio_url` redacted; the same object
    when there are none."""
    url = value.get("audio_url")
    if not isinstance(url, str) or ("?" not in url and "&" not in url):  # no parameters: nothing to redact
        return value
    redacted = redact_url(url)
    return value if redacted == url else {**value, "audio_url": redacted}
