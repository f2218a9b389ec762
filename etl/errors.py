"""Typed errors: the library raises these, the CLI turns each into one line and an exit status."""

from __future__ import annotations

# sysexits.h: EX_TEMPFAIL tells schedulers "try again later", which is what an overlapping run should do.
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_ALREADY_RUNNING = 75


class EtlError(Exception):
    """An expected failure with a message fit for the user."""

    exit_code = EXIT_FAILURE


class ConfigError(EtlError):
    exit_code = EXIT_CONFIG


class DatabaseError(EtlError):
    """The database cannot be reached or used as configured."""


class SchemaTooNew(DatabaseError):
    pass


class SyncAlreadyRunning(EtlError):
    exit_code = EXIT_ALREADY_RUNNING


class ApiError(EtlError):
    """The API refused a request; retrying the same request will not help."""


class AuthError(ApiError):
    pass


class RetriesExhausted(ApiError):
    """A retriable failure kept happening until the retry budget ran out."""


class PaginationError(ApiError):
    """The listing did not move backwards as promised; stopping beats looping."""


class Retriable(Exception):
    """Internal to the client: a failure worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def redact(text: str, secrets: list[str | None]) -> str:
    """Blank out every secret in text: the last line of defence before anything is printed or stored.

    Values under 6 characters are left alone: replacing them would mangle ordinary words, and no real
    API key is that short."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
