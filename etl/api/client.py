"""The AssemblyAI API over pooled requests sessions: auth, timeouts, retries, the request budget, typed errors."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3

from etl import __version__
from etl.api.pacing import Pacer
from etl.api.sessions import SessionPool, backoff
from etl.config import Account, Settings
from etl.errors import ApiError, AuthError, RateLimited, Retriable, RetriesExhausted, redact
from etl.model.storable import loads

log = logging.getLogger(__name__)

RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Failures in a row of one request after which its retries are a warning line, not only a count.
KEEPS_FAILING = 3
READ_SIZE = 64 * 1024
MAX_ERROR_CHARS = 300  # of an API error message, wherever it is shown or stored
# A server clock further ahead than this is not trusted to vouch for `created` values in our future.
MAX_CLOCK_AHEAD = timedelta(days=1)
TEXT_PARTS = frozenset({"srt", "vtt"})  # parts of a transcript the API answers as text/plain, not JSON
# The weight of the newest answer in the round trip's moving average: a few answers follow a change in
# latency, one slow answer does not.
ROUND_TRIP_WEIGHT = 0.2


class ApiClient:
    """Talks to one AssemblyAI account, from one thread or several; counts every HTTP attempt it makes."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        request_deadline: float = 120.0,
        max_retries: int = 6,
        retry_budget_seconds: float = 300.0,
        backoff_seconds: float = 1.0,
        requests_per_minute: float = 2000.0,
        key_variable: str = "ASSEMBLYAI_API_KEY",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_variable = key_variable  # named in the 401 message; the key itself never is
        self.host = urlsplit(self.base_url).netloc
        self.timeout = (connect_timeout, min(read_timeout, request_deadline))
        self.request_deadline = request_deadline  # the whole response, however slowly its bytes arrive
        self._api_key = api_key
        self.max_retries = max_retries
        self.retry_budget_seconds = retry_budget_seconds
        self.backoff_seconds = backoff_seconds
        self.requests_made = 0
        self.retries = 0  # attempts that failed and were retried; rate_limited: of them, HTTP 429
        self.rate_limited = 0
        self.pacer = Pacer(requests_per_minute)  # every thread's every attempt goes through it
        self._headers = {"Authorization": api_key, "User-Agent": f"aai-etl/{__version__}"}
        self._lock = threading.Lock()
        self._clock_ahead = timedelta(0)
        self._round_trip: float | None = None
        self._sessions = SessionPool(self._headers)

    @classmethod
    def for_account(cls, settings: Settings, account: Account) -> ApiClient:
        return cls(
            account.base_url,
            account.require_key(),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            request_deadline=settings.request_deadline,
            max_retries=settings.max_retries,
            retry_budget_seconds=settings.retry_budget_seconds,
            backoff_seconds=settings.backoff_seconds,
            requests_per_minute=settings.requests_per_minute,
            key_variable=account.api_key_env,
        )

    def list_transcripts(
        self, *, limit: int, before_id: str | None = None, after_id: str | None = None, status: str | None = None,
        created_on: str | None = None,
    ) -> dict[str, Any]:
        """One page of GET /v2/transcript, newest first (only `status` ones, or those of the `created_on` day, if
        given: the caller checks that the server applied the filter); `page_details` and `transcripts` are checked."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("before_id", before_id), ("after_id", after_id), ("status", status), ("created_on", created_on)):
            if value is not None:
                params[name] = value
        return self._get("/v2/transcript", params, _check_list_page)

    def get_transcript(self, transcript_id: str) -> dict[str, Any]:
        """GET /v2/transcript/{id}: the full transcript."""
        return self._get(_transcript_path(transcript_id), {}, _check_transcript)

    def get_transcript_part(self, transcript_id: str, part: str) -> Any:
        """GET /v2/transcript/{id}/{part}: `sentences` or `paragraphs` (an object with that list), `srt` or
        `vtt` (the subtitles' text)."""
        path = f"{_transcript_path(transcript_id)}/{part}"
        if part in TEXT_PARTS:
            return self._get(path, {}, _check_text, read=_text)
        return self._get(path, {}, lambda body: _check_part(body, part))

    def close(self) -> None:
        self._sessions.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any], check, read: Callable[[bytes], Any] = loads) -> Any:
        deadline = time.monotonic() + self.retry_budget_seconds
        only_429 = True  # every attempt so far answered 429: running out then is no fault of this request
        for attempt in range(self.max_retries + 1):
            sent = self.pacer.wait()
            try:
                return check(self._attempt(path, params, read))
            except Retriable as failure:
                only_429 = only_429 and failure.rate_limited
                if failure.rate_limited:
                    delay = self.pacer.rate_limited(sent, failure.retry_after)  # every thread slows down, not just this one
                else:
                    delay = backoff(attempt, self.backoff_seconds, failure.retry_after)
                refusal = _out_of_retries(failure, attempt, delay, deadline, only_429, self.max_retries, self.retry_budget_seconds)
                if refusal is not None:
                    raise refusal from None
                with self._lock:
                    self.retries += 1
                    self.rate_limited += failure.rate_limited
                _say_retrying(failure, delay, attempt, self.max_retries)
                if not failure.rate_limited:
                    time.sleep(delay)  # a 429's wait is the pacer's, taken in its wait()
        raise AssertionError("unreachable: the loop returns or raises")

    def _attempt(self, path: str, params: dict[str, Any], read: Callable[[bytes], Any]) -> Any:
        with self._lock:
            self.requests_made += 1
        started = time.monotonic()
        deadline = started + self.request_deadline
        try:
            with self._sessions.session() as session:
                with session.get(self.base_url + path, params=params, timeout=self.timeout, stream=True) as response:
                    content = _read_until(response, deadline)
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
            raise Retriable("the request timed out") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
            raise Retriable(_connection_problem(exc, self.host)) from None
        except _TooSlow:
            raise Retriable(f"the response took longer than request_deadline ({self.request_deadline:g}s)") from None
        self._note_clock(response.headers.get("Date"))
        status = response.status_code
        if status != 429:
            self.pacer.answered()
            self._note_round_trip(time.monotonic() - started)
        if status in RETRIABLE_STATUSES:
            raise Retriable(
                f"HTTP {status} {response.reason}", _retry_after(response.headers.get("Retry-After")), rate_limited=status == 429
            )
        if status == 401:
            raise AuthError(f"the API key was rejected (HTTP 401): check {self.key_variable}", 401)
        if status >= 400:
            message = _capped(self.redact(_error_message(content, response.reason)))  # redacted whole, then cut
            raise ApiError(f"the AssemblyAI API refused the request (HTTP {status}): {message}", status)
        try:
            return read(content)
        except ValueError:  # not JSON, or not UTF-8 text
            raise Retriable(f"unreadable response body (HTTP {status}, {len(content)} bytes)") from None
        except RecursionError:
            # The same body would be as deep on every try: refused, not retried.
            raise ApiError(f"the response nests its values too deeply to read (HTTP {status}, {len(content)} bytes)") from None

    def clock_ahead(self) -> timedelta:
        """How far the API's clock has been seen ahead of ours (its Date header), at most MAX_CLOCK_AHEAD; zero
        when behind or not seen. Its `created` values run ahead by as much: they are not in the future."""
        return self._clock_ahead

    def round_trip(self) -> float | None:
        """The seconds an answered request has taken lately, sent to read (a moving average); None before any."""
        return self._round_trip

    def _note_round_trip(self, seconds: float) -> None:
        with self._lock:
            last = self._round_trip
            self._round_trip = seconds if last is None else last + ROUND_TRIP_WEIGHT * (seconds - last)

    def _note_clock(self, date: str | None) -> None:
        server = _http_date(date)
        if server is not None:
            ahead = min(server - datetime.now(timezone.utc), MAX_CLOCK_AHEAD)
            with self._lock:
                self._clock_ahead = max(self._clock_ahead, ahead)

    def redact(self, text: str) -> str:
        """The text without this client's API key: for anything printed or stored."""
        return redact(text, [self._api_key])



def _out_of_retries(
    failure: Retriable, attempt: int, delay: float, deadline: float, only_429: bool, max_retries: int, budget: float
) -> RetriesExhausted | None:
    """The error that ends a request's retries, or None while it may try again. Out of retries on 429s
    alone, it is RateLimited: no fault of the request."""
    exhausted = RateLimited if only_429 else RetriesExhausted
    if attempt == max_retries:
        return exhausted(
            f"the AssemblyAI API kept failing ({failure.reason}) after {attempt + 1} attempts; "
            "everything synced so far is saved, run again later (max_retries raises the limit)",
            failure.reason,
        )
    if time.monotonic() + delay > deadline:
        return exhausted(
            f"the AssemblyAI API kept failing ({failure.reason}) and the next retry, in {delay:.0f}s, "
            f"would pass the {budget:.0f}s retry budget; everything synced so far "
            "is saved, run again later",
            failure.reason,
        )
    return None


def _say_retrying(failure: Retriable, delay: float, attempt: int, max_retries: int) -> None:
    # A retry is counted, not logged (the bar shows the wait through this `retrying` record);
    # a request that keeps failing is worth one warning line while it still retries.
    log.info(
        "%s; retrying in %.1fs (attempt %d of %d)", failure.reason, delay, attempt + 2, max_retries + 1,
        extra={"event": "retrying", "fields": {"delay": round(delay, 3), "rate_limited": failure.rate_limited}},
    )
    if attempt + 1 == KEEPS_FAILING:
        log.warning(
            "%s, %d times in a row for one request; still retrying (attempt %d of %d)", failure.reason,
            KEEPS_FAILING, attempt + 2, max_retries + 1, extra={"event": "keeps_failing"},
        )


def _check_list_page(body: Any) -> dict[str, Any]:
    # A 200 with the wrong shape is most often a proxy or a half-deployed backend: worth another try.
    if not isinstance(body, dict) or not isinstance(body.get("page_details"), dict):
        raise Retriable("response without page_details")
    if not isinstance(body.get("transcripts"), list):
        raise Retriable("response whose transcripts is not a list")
    if "prev_url" not in body["page_details"]:
        # Without it a page cannot say whether older transcripts exist: never take it for the end.
        raise Retriable("response without page_details.prev_url")
    return body


def _check_transcript(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise Retriable("response that is not a transcript")
    return body


def _check_part(body: Any, part: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(part), list):
        raise Retriable(f"response without a list of {part}")
    return body


def _check_text(body: str) -> str:
    return body  # any text is subtitles: a transcript without words has empty ones


def _text(content: bytes) -> str:
    """A text/plain answer (subtitles): UTF-8, as the API sends; UnicodeDecodeError is a ValueError."""
    return content.decode("utf-8")


def _transcript_path(transcript_id: str) -> str:
    try:
        return f"/v2/transcript/{quote(transcript_id, safe='')}"
    except UnicodeEncodeError:  # a lone surrogate: no URL can carry it, so the API cannot be asked
        raise ApiError("its id holds a character that is not valid Unicode, which no URL can carry") from None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit alone takes "²", which float() does not
        return float(value)
    when = _http_date(value)
    return None if when is None else max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _http_date(value: str | None) -> datetime | None:
    """An HTTP date header's time (UTC); None when absent or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


class _TooSlow(Exception):
    """The response did not arrive within the request deadline."""


def _read_until(response: requests.Response, deadline: float) -> bytes:
    """The whole body, or _TooSlow once the deadline passes: the read timeout bounds each socket read, this
    bounds the response, which a server sending a byte at a time could otherwise stretch without end."""
    chunks = []
    while chunk := response.raw.read1(READ_SIZE, decode_content=True):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise _TooSlow
    return b"".join(chunks)


def _error_message(content: bytes, reason: str | None) -> str:
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        body = None
    message = body["error"] if isinstance(body, dict) and isinstance(body.get("error"), str) else reason
    return message or "no error message"


def _capped(message: str) -> str:
    """A message of megabytes would otherwise be printed and stored whole."""
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return f"{message[:MAX_ERROR_CHARS]}... ({len(message):,} characters in all)"


def _connection_problem(exc: BaseException, host: str) -> str:
    # requests nests urllib3 errors several levels deep; the innermost says what happened.
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host} (DNS lookup failed)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {host} refused"
    if isinstance(exc, ConnectionResetError):
        return f"connection to {host} reset"
    return f"connection to {host} failed: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
