"""Typed errors: the library raises these, the CLI turns each into one line and an exit status."""

from __future__ import annotations

import re

from etl.model.credentials import has_credentials, redact_url

# sysexits.h: EX_TEMPFAIL tells schedulers "try again later", which is what an overlapping run should do.
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_ALREADY_RUNNING = 75


def install_hint(extra: str) -> str:
    """The command that adds `extra` to aai-etl as it was installed (pip records where from in the
    distribution's direct_url.json)."""
    import json
    import os
    from importlib import metadata

    try:
        origin = json.loads(metadata.distribution("aai-etl").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        origin = {}
    return hint_for(extra, origin, os.getcwd())


def hint_for(extra: str, origin: dict, cwd: str) -> str:
    """From a checkout or a wheel file, that path (`.` when it is the working directory; `-e` again for an
    editable install); from a package index (no direct URL recorded), the package's name."""
    from urllib.parse import unquote, urlparse

    url = urlparse(origin.get("url", ""))
    if url.scheme != "file" or not ("dir_info" in origin or "archive_info" in origin):
        return f"pip install 'aai-etl[{extra}]'"
    path = unquote(url.path)
    editable = "-e " if origin.get("dir_info", {}).get("editable") else ""
    return f"pip install {editable}'{'.' if path == cwd else path}[{extra}]'"


class EtlError(Exception):
    """An expected failure with a message fit for the user."""

    exit_code = EXIT_FAILURE
    # The setting whose value led to it, if any: the CLI adds where that value came from.
    setting: str | None = None


class ConfigError(EtlError):
    exit_code = EXIT_CONFIG


class UsageError(EtlError):
    """Arguments that cannot mean anything: an inverted date range, an unknown revision."""

    exit_code = EXIT_CONFIG


class DatabaseUrlError(ConfigError):
    setting = "database_url"


class DatabaseError(EtlError):
    """The database cannot be reached or used as configured."""


class CannotConnect(DatabaseError):
    setting = "database_url"


class SchemaTooNew(DatabaseError):
    pass


class SyncAlreadyRunning(EtlError):
    exit_code = EXIT_ALREADY_RUNNING


class ApiError(EtlError):
    """The API refused a request; retrying the same request will not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    pass


class RetriesExhausted(ApiError):
    """A retriable failure kept happening until the retry budget ran out."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # the last failure alone, for a line that is not about a run (check)


class RateLimited(RetriesExhausted):
    """Every attempt was answered 429: the server is answering, only not this fast."""


class PaginationError(ApiError):
    """The listing did not move backwards as promised; stopping beats looping."""


class CursorRejected(ApiError):
    """The API answered 400 to a `before_id`: that transcript has most likely left the 90-day listing."""

    def __init__(self, before_id: str, reason: str) -> None:
        super().__init__(f"the API rejected transcript {before_id} as a cursor: {reason}", 400)
        self.before_id = before_id


class AccountsFailed(EtlError):
    """Some accounts of a multi-account sync failed; each has said why already."""

    def __init__(self, failed: dict[str, int], total: int) -> None:
        names = ", ".join(sorted(failed))
        super().__init__(f"{len(failed)} of {total} accounts did not sync: {names}")
        # Failures of one kind keep their status (2: a configuration mistake, such as an unset key variable;
        # 75: runs already in progress); a mix is a plain failure.
        statuses = set(failed.values())
        self.exit_code = statuses.pop() if len(statuses) == 1 else EXIT_FAILURE


class Unhealthy(EtlError):
    """`status --max-age`: the last run failed, or no run succeeded recently enough."""


class Retriable(Exception):
    """Internal to the client: a failure worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.rate_limited = rate_limited


# The password of a URL with one (scheme://user:password@host): a database URL, a Pushgateway URL.
# Found from its "://", not its scheme: a scheme pattern rescans a long word at every letter (quadratic).
_URL_PASSWORD = re.compile(r"(://[^\s:/?#@]*:)[^\s/?#@]+(@)")


def redact(text: str, secrets: list[str | None]) -> str:
    """Blank out every secret in text: the last line of defence before anything is printed or stored. The
    secrets given (API keys, with or without the whitespace a key file adds), the password of any URL, and
    the credentials of any presigned URL.

    Values under 6 characters are left alone: replacing them would mangle ordinary words, and no real
    API key is that short."""
    for secret in secrets:
        for value in {secret, secret.strip()} if secret else ():
            if len(value) >= 6:
                text = text.replace(value, "***")
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    return redact_url(text) if has_credentials(text) else text
