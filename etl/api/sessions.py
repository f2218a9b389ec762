"""The client's HTTP sessions, shared by its threads one request at a time, and the wait before a retry."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests

MAX_BACKOFF_SECONDS = 60.0


class SessionPool:
    """Sessions with the client's headers, lent to one request at a time. requests does not promise a Session
    is safe to share between threads; taken back after each request, so threads that come and go (a download
    thread per page) reuse the same few connections instead of opening one each."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers
        self._lock = threading.Lock()
        self._idle: list[requests.Session] = []  # sessions not in use, each with its open connections
        self._all: list[requests.Session] = []

    @contextmanager
    def session(self) -> Iterator[requests.Session]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            with self._lock:
                self._all.append(session)
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def close(self) -> None:
        for session in self._all:
            session.close()


def backoff(attempt: int, base_seconds: float, retry_after: float | None) -> float:
    """The wait before retrying a failure other than a 429."""
    if retry_after is not None:
        # The server named the wait: honour it, plus a little jitter so parallel jobs do not return in step.
        return retry_after + random.uniform(0, 1)
    ceiling = min(MAX_BACKOFF_SECONDS, base_seconds * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)
