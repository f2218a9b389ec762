"""A simulated AssemblyAI API, served over real HTTP on loopback.

For the tests, the benchmarks and `aai-etl demo`: the sync never imports it. It is an independent
implementation of `GET /v2/transcript`, `GET /v2/transcript/{id}` and its sentences, paragraphs and
subtitles (`/sentences`, `/paragraphs`, `/srt`, `/vtt`) as AssemblyAI's API reference describes them.
It can serve either reading of the undocumented `after_id` (docs/concepts/after-id.md). It can script the
faults a real network service produces (rate limits, proxies' HTML pages, resets, truncated bodies,
stalls).

What the API leaves undocumented can be chosen. `after_id_mode` picks a reading of `after_id`.
`rate_limit` is a server limit in requests per second, answered with 429 beyond it. `limit_rate` changes
it mid-run, and whether its 429s say Retry-After. `ignore_status_filter` makes the server ignore the `status`
filter. `created_on_mode` (one of CREATED_ON_MODES) is how the server reads `created_on`. `page_maximum`
is a page maximum below the one asked for, which the page and its `page_details.limit` show (no 400).
`dated_prev_url=False` leaves `prev_url` out of every dated page.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

REAL_BASE = "https://api.assemblyai.com"  # resource_url points at the real host, as the service does
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # UTC without an offset, like the real `created`
STATUSES = ("queued", "processing", "completed", "error")
FINAL_STATUSES = ("completed", "error")
DELETED_URL = "http://deleted_by_user"
AUTH_ERROR = "Authentication error, API token missing/invalid"
ORDER_ERROR = "'after_id' must be a newer transcript than 'before_id'"
DOWNLOAD_ERROR = "Download error, unable to download the audio file."
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
LIST_PATH = "/v2/transcript"
# GET /v2/transcript/{id}/<part>: JSON objects holding a list named after the part, or subtitles as text.
PARTS = ("sentences", "paragraphs", "srt", "vtt")
NOT_COMPLETED_ERROR = "Transcript is not completed"
CURSOR_DATE_ERROR = "'created_on' cannot be combined with 'before_id' or 'after_id'"
# How a server may read created_on, every one plausible since none is documented: applied with the
# cursors; dropped once a cursor is given; refused (400) with a cursor; a day counted in another zone;
# applied, but the cursor dropped (every page is the day's newest).
CREATED_ON_MODES = ("honoured", "ignored_with_cursor", "refused_with_cursor", "other_timezone", "cursor_ignored")
OTHER_TIMEZONE = timedelta(hours=-8)  # "other_timezone": days run from 08:00 UTC to 08:00 UTC


@dataclass(frozen=True)
class JsonText:
    """A value served as this JSON text, verbatim: what json.dumps cannot write (a number of 5,000 digits,
    1e23 as written, nesting 10,000 deep)."""

    text: str


@dataclass(frozen=True)
class Fault:
    """One scripted response that replaces normal handling of one request."""

    kind: str
    code: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
        """An HTTP status with a JSON body, by default `{"error": <reason phrase>}`."""
        if body is None:
            body = {"error": _phrase(code)}
        return cls("status", code, body, dict(headers or {}))

    @classmethod
    def none(cls) -> Fault:
        """Answer normally: a placeholder, so later faults in the queue hit later requests."""
        return cls("none")

    @classmethod
    def html(cls, code: int = 502) -> Fault:
        """An HTML error page, as a proxy or load balancer in front of the API sends."""
        return cls("html", code)

    @classmethod
    def truncated(cls) -> Fault:
        """Status 200 and the first half of the normal body's bytes."""
        return cls("truncated")

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection with a TCP reset instead of answering."""
        return cls("reset")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after `seconds`, to trip a client's read timeout."""
        return cls("slow", seconds=seconds)

    @classmethod
    def wrong_shape(cls, body: Any) -> Fault:
        """Status 200 with an arbitrary JSON body."""
        return cls("wrong_shape", 200, body)

    @classmethod
    def mangled(cls, change: Callable[[dict], Any]) -> Fault:
        """Status 200 with the normal JSON body as `change` rewrites it (given a copy, returns the new body)."""
        return cls("mangled", 200, change)

    @classmethod
    def drip(cls, seconds: float) -> Fault:
        """The normal answer, its body one byte every `seconds`: each read is quick, the response endless."""
        return cls("drip", seconds=seconds)

    @classmethod
    def echo_auth(cls, code: int = 400) -> Fault:
        """An error whose message echoes the request's Authorization header, as some proxies' do."""
        return cls("echo_auth", code)


class FakeAssemblyAI:
    """The transcript list of one AssemblyAI account, served on 127.0.0.1."""

    def __init__(
        self,
        api_key: str = "test-key",
        after_id_mode: str = "oldest",
        max_limit: int = 200,
        latency: float = 0.0,
        seed: int = 0,
        fault_rate: float = 0.0,
        rate_limit: float | None = None,
        ignore_status_filter: bool = False,
        created_on_mode: str = "honoured",
        page_maximum: int | None = None,
        dated_prev_url: bool = True,
    ) -> None:
        if after_id_mode not in ("oldest", "newest"):
            raise ValueError(f"after_id_mode must be 'oldest' or 'newest', not {after_id_mode!r}")
        if created_on_mode not in CREATED_ON_MODES:
            raise ValueError(f"created_on_mode must be one of {', '.join(CREATED_ON_MODES)}, not {created_on_mode!r}")
        self.api_key = api_key
        self.after_id_mode = after_id_mode
        self.max_limit = max_limit
        self.latency = latency  # seconds before every answer, each request in its own thread
        # Seconds more before each list page asked without created_on: a listing slow to walk serially
        # while its days answer at `latency`, so that `partitions = "auto"` goes on by days in a quick test.
        self.serial_latency = 0.0
        self.ignore_status_filter = ignore_status_filter
        self.created_on_mode = created_on_mode
        self.page_maximum = page_maximum  # a larger limit is answered with this many items, and says so
        self.dated_prev_url = dated_prev_url  # False: a created_on listing's pages never carry prev_url
        self.rate_limited = 0  # requests answered 429 by the rate limit (scripted faults not counted)
        self.base_url = ""
        # True: every list page holds its transcripts in random order (the API promises newest first).
        self.scramble_pages = False
        # False: bodies of the "malformed" profile are served whole (the demo shows clean data).
        self.malformed_bodies = True
        # How far the server's clock (its Date header) is ahead of the client's; set `clock` to match, so
        # that the transcripts it lists are created by its own clock.
        self.clock_offset = timedelta(0)
        self.requests: list[dict] = []
        self.most_in_flight = 0  # the most requests arrived and not yet answered at one moment
        self.held = threading.Event()
        # Time of the last `created`: midnight 30 days ago, so 100k items stay inside the 90-day
        # window and a small test's items share one date (for created_on).
        today = datetime.now(timezone.utc).replace(tzinfo=None)
        self.clock = datetime.combine(today.date(), datetime.min.time()) - timedelta(days=30)
        self._rng = random.Random(seed)
        self.fault_rate = fault_rate  # share of requests answered with a random fault (aai-etl simulate)
        self._fault_rng = random.Random(seed + 1)
        self._lock = threading.Lock()
        self._items: list[Any] = []  # listed item dicts, oldest -> newest; None = expired, not yet compacted
        self._index: dict[str, int] = {}  # id -> position in _items: O(1) cursor lookup
        self._all: dict[str, dict] = {}  # every item ever added: GET /{id} outlives the 90-day listing
        self._deleted: set[str] = set()
        self._broken: dict[str, Fault] = {}
        self._dirty = False
        self._faults: deque[Fault] = deque()
        self._list_count = 0
        self._arrived = 0  # requests of every path that arrived, answered or not
        self._hold_at: int | None = None
        self._release = threading.Event()
        self._added = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._limit: tuple[_TokenBucket | None, bool] = (None, True)  # the rate limit and whether its 429s say Retry-After
        self._limits: deque[tuple[int, tuple[_TokenBucket | None, bool]]] = deque()  # (from request, limit) to come
        self._limited = 0  # requests the rate limit has counted
        # The rate limit's clock: a test may stop it, to count a burst against the limit without racing real time.
        self.rate_clock: Callable[[], float] = time.monotonic
        self.limit_rate(rate_limit)

    # -- lifecycle -------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeAssemblyAI:
        """Bind the port (by default a free one) and serve from a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((host, port), handler)
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; a held request is released first so it cannot hang the test."""
        if self._server is None or self._thread is None:
            return
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeAssemblyAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------

    def add(self, n: int = 1, status: str = "completed", spread: timedelta | None = None, **overrides: Any) -> list[dict]:
        """Append `n` transcripts, each newer than all others (a few seconds apart, or about `spread` in all
        from the clock on); return copies of them."""
        created = []
        step = (1.0, 5.0) if spread is None else (spread.total_seconds() / n * 0.5, spread.total_seconds() / n * 1.5)
        with self._lock:
            for _ in range(n):
                self.clock += timedelta(seconds=self._rng.uniform(*step))
                tid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
                self._added += 1
                item = {
                    "id": tid,
                    "resource_url": f"{REAL_BASE}/v2/transcript/{tid}",
                    "status": status,
                    "created": self.clock.strftime(TS_FORMAT),
                    "audio_url": f"https://example.com/audio/{self._added}.mp3",
                    "completed": self._auto_completed(self.clock, status),
                    "error": DOWNLOAD_ERROR if status == "error" else None,
                }
                item.update(overrides)
                self._append(item)
                created.append(dict(item))
        return created

    def end_at(self, moment: datetime) -> None:
        """Move every transcript's times by one offset, so that the newest was created at `moment` (naive UTC)."""
        with self._lock:
            offset = moment - self.clock
            for item in self._all.values():
                for key in ("created", "completed"):
                    if (when := _parse_ts(item.get(key))) is not None:
                        item[key] = (when + offset).strftime(TS_FORMAT)
            self.clock = moment

    def add_raw(self, item: dict) -> None:
        """Append `item` verbatim as the newest; it must have an "id" for cursors."""
        with self._lock:
            self._append(dict(item))

    def set_status(
        self, transcript_id: str, status: str, completed: str | None = "auto", error: str | None = None
    ) -> None:
        """Move a transcript to `status`; "auto" gives final statuses a completion time."""
        with self._lock:
            item = self._all[transcript_id]
            if completed == "auto":
                start = _parse_ts(item.get("created")) or self.clock
                completed = self._auto_completed(start, status)
            if status == "error" and error is None:
                error = DOWNLOAD_ERROR
            item.update(status=status, completed=completed, error=error)

    def delete(self, transcript_id: str) -> None:
        """Delete as the real API does: the item stays listed with a tombstone audio_url."""
        with self._lock:
            self._all[transcript_id]["audio_url"] = DELETED_URL
            self._deleted.add(transcript_id)

    def expire(self, transcript_id: str) -> None:
        """Drop a transcript from the listing, as when it ages past 90 days."""
        with self._lock:
            # Compacting lazily keeps a burst of expiries O(n) in total, not O(n) each.
            self._items[self._index.pop(transcript_id)] = None
            self._dirty = True

    def listing(self) -> list[dict]:
        """Every listed item, newest first: what a perfect sync holds."""
        with self._lock:
            self._compact()
            return [dict(item) for item in reversed(self._items)]

    def fail_next(self, *responses: Fault) -> None:
        """Queue faults; each is used, in order, by one incoming request."""
        with self._lock:
            self._faults.extend(responses)

    def break_transcript(self, transcript_id: str, fault: Fault | None, part: str | None = None) -> None:
        """Answer every GET /v2/transcript/{id} for this transcript, or every GET of one `part` of it
        (/v2/transcript/{id}/sentences), with `fault` (None: mend it)."""
        key = transcript_id if part is None else f"{transcript_id}/{part}"
        with self._lock:
            if fault is None:
                self._broken.pop(key, None)
            else:
                self._broken[key] = fault

    def clear_faults(self) -> None:
        """Drop queued faults that no request has used."""
        with self._lock:
            self._faults.clear()

    def limit_rate(self, requests_per_second: float | None, *, retry_after: bool = True, after_requests: int = 0) -> None:
        """Answer 429 to requests beyond this rate, saying Retry-After (whole seconds) unless `retry_after` is
        False; None: no limit. The limit applies once `after_requests` more requests have arrived, so that a
        run meets it mid-way."""
        limit = (_TokenBucket(requests_per_second) if requests_per_second else None, retry_after)
        with self._lock:
            self._limits.append((self._limited + after_requests, limit))

    def hold(self, after_requests: int) -> threading.Event:
        """Block the (after_requests+1)-th list request from now until the returned event is set."""
        with self._lock:
            self._hold_at = self._list_count + after_requests + 1
            self._release = threading.Event()
            self.held.clear()
            return self._release

    def answered(self) -> bool:
        """Whether every request that has arrived has been answered (or reset): none is in flight."""
        with self._lock:
            return self._arrived == len(self.requests)

    def in_flight(self) -> int:
        """How many requests have arrived and are not answered yet: held, or waiting out latency or a slow fault."""
        with self._lock:
            return self._arrived - len(self.requests)

    def _append(self, item: dict) -> None:
        tid = item["id"]
        if tid in self._all:
            raise ValueError(f"duplicate transcript id {tid!r}")
        self._index[tid] = len(self._items)
        self._items.append(item)
        self._all[tid] = item

    def _compact(self) -> None:
        if self._dirty:
            self._items = [item for item in self._items if item is not None]
            self._index = {item["id"]: pos for pos, item in enumerate(self._items)}
            self._dirty = False

    def _auto_completed(self, created: datetime, status: str) -> str | None:
        if status not in FINAL_STATUSES:
            return None
        return (created + timedelta(seconds=self._rng.uniform(2, 10))).strftime(TS_FORMAT)

    # -- request handling (called from server threads) -------------------------------

    def _arrive(self, path: str) -> tuple[Fault | None, threading.Event | None]:
        """Take this request's fault, and the event to wait on if it is the held one."""
        is_list = path == LIST_PATH
        with self._lock:
            self._arrived += 1
            self.most_in_flight = max(self.most_in_flight, self._arrived - len(self.requests))
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self.fault_rate and self._fault_rng.random() < self.fault_rate:
                fault = self._fault_rng.choice(RANDOM_FAULTS)
            if not is_list:
                return fault or self._broken.get(path.removeprefix(LIST_PATH + "/")), None
            self._list_count += 1
            if self._list_count != self._hold_at:
                return fault, None
            self._hold_at = None
            return fault, self._release

    def _over_limit(self) -> dict[str, str] | None:
        """The headers of a 429 if the rate limit refuses this request now; None when it passes."""
        with self._lock:
            while self._limits and self._limits[0][0] <= self._limited:
                self._limit = self._limits.popleft()[1]
            self._limited += 1
            bucket, retry_after = self._limit
        if bucket is None:
            return None
        wait = bucket.take(self.rate_clock())
        if wait is None:
            return None
        with self._lock:
            self.rate_limited += 1
        return {"Retry-After": str(max(1, math.ceil(wait)))} if retry_after else {}

    def _log(self, path: str, params: dict[str, str], status: int) -> None:
        with self._lock:
            self.requests.append({"path": path, "params": params, "status": status})

    def _reply(self, auth: str | None, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        if auth != self.api_key:
            return _json(401, {"error": AUTH_ERROR})
        if path.rstrip("/") == LIST_PATH:
            return self._list_page(params)
        if path.startswith(LIST_PATH + "/"):
            tid, _, part = path[len(LIST_PATH) + 1 :].partition("/")
            return self._part(tid, part) if part else self._transcript(tid)
        return _json(404, {"error": "Not found"})

    def _list_page(self, params: dict[str, str]) -> tuple[int, bytes]:
        try:
            limit = int(params.get("limit", "10"))
        except ValueError:
            return _json(400, {"error": "'limit' must be an integer"})
        if not 1 <= limit <= self.max_limit:
            return _json(400, {"error": f"'limit' must be between 1 and {self.max_limit}"})
        status, created_on = params.get("status"), params.get("created_on")
        if status is not None and status not in STATUSES:
            return _json(400, {"error": f"'status' must be one of {', '.join(STATUSES)}"})
        if created_on is not None and not DATE_RE.match(created_on):
            return _json(400, {"error": "'created_on' must be a date like 2023-11-03"})
        before_id, after_id = params.get("before_id"), params.get("after_id")
        if created_on is not None and (before_id or after_id):
            if self.created_on_mode == "refused_with_cursor":
                return _json(400, {"error": CURSOR_DATE_ERROR})
            if self.created_on_mode == "ignored_with_cursor":
                created_on = None
            if self.created_on_mode == "cursor_ignored":
                before_id = after_id = None
        if self.page_maximum is not None:
            limit = min(limit, self.page_maximum)
        offset = OTHER_TIMEZONE if self.created_on_mode == "other_timezone" else timedelta(0)
        match = _matcher(None if self.ignore_status_filter else status, created_on, offset)

        # Everything from here reads shared state, and the body is encoded under the lock
        # so the page is one consistent snapshot even while a test mutates the fake.
        with self._lock:
            self._compact()
            items = self._items
            for name, tid in (("before_id", before_id), ("after_id", after_id)):
                if tid is not None and tid not in self._index:
                    return _json(400, {"error": f"Transcript {tid!r} given as '{name}' was not found"})
            lo = self._index[after_id] + 1 if after_id is not None else 0
            hi = self._index[before_id] if before_id is not None else len(items)
            if lo > hi:
                return _json(400, {"error": ORDER_ERROR})
            if after_id is not None and self.after_id_mode == "oldest":
                page = _pick(items, range(lo, hi), match, limit)[::-1]
            else:
                page = _pick(items, range(hi - 1, lo - 1, -1), match, limit)

            prev_url = next_url = None
            if page:
                # "Older" ignores the after_id bound: prev_url is how a client walks back to it.
                if _pick(items, range(page[-1] - 1, -1, -1), match, 1) and (created_on is None or self.dated_prev_url):
                    prev_url = self._url(limit, before_id=items[page[-1]]["id"])
                next_url = self._url(limit, after_id=items[page[0]]["id"])
            else:
                next_url = self._url(limit, after_id=after_id)
            current = {k: params[k] for k in ("before_id", "after_id", "status", "created_on") if k in params}
            listed = [items[pos] for pos in page]
            if self.scramble_pages:
                self._rng.shuffle(listed)
            return _json(200, {
                "page_details": {
                    "limit": limit,
                    "result_count": len(page),
                    "current_url": self._url(limit, **current),
                    "prev_url": prev_url,
                    "next_url": next_url,
                },
                "transcripts": listed,
            })

    def _transcript(self, tid: str) -> tuple[int, bytes]:
        with self._lock:
            item = self._all.get(tid)
            if item is None:
                return _json(404, {"error": "Transcript not found"})
            deleted = tid in self._deleted
            done = item.get("status") == "completed" and not deleted
            words = _words(tid) if done else None
            return _json(200, _intelligence(tid, words, self.malformed_bodies) | {
                "id": tid,
                "status": item.get("status"),
                "audio_url": item.get("audio_url"),
                "webhook_url": DELETED_URL if deleted else None,
                "error": item.get("error"),
                "text": "Deleted by user." if deleted else (" ".join(w["text"] for w in words or []) if done else None),
                # The spec says integer, the Go SDK float: serve both.
                "audio_duration": _audio_duration(tid) if done else None,
                "confidence": 0.93 if done else None,
                "language_code": "en_us" if done else None,
                "language_confidence": 0.98 if done else None,
                "audio_channels": 1 if done else None,
                "speech_model": None,
                "speech_models": ["universal-3-pro", "universal-2"],
                "speech_model_used": "universal-2" if done else None,
                "throttled": False,
                "words": words,
            })

    def _part(self, tid: str, part: str) -> tuple[int, bytes]:
        """Sentences, paragraphs or subtitles, made from the same words as the transcript's body."""
        with self._lock:
            item = self._all.get(tid)
            if item is None or part not in PARTS:
                return _json(404, {"error": "Transcript not found" if part in PARTS else "Not found"})
            if item.get("status") != "completed" or tid in self._deleted:
                return _json(400, {"error": NOT_COMPLETED_ERROR})
        served = transcript_part(tid, part)
        return (200, served.encode()) if isinstance(served, str) else _json(200, served)

    def _url(self, limit: int, **query: str | None) -> str:
        pairs = {"limit": limit, **{k: v for k, v in query.items() if v is not None}}
        return f"{self.base_url}{LIST_PATH}?{urlencode(pairs)}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks may open many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up is expected here, not a bug in the fake.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so requests.Session reuses connections
    disable_nagle_algorithm = True  # headers and body go in separate writes; avoid the 40 ms stall
    fake: FakeAssemblyAI

    def do_GET(self) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        fault, release = fake._arrive(url.path.rstrip("/"))
        if release is not None:
            fake.held.set()
            release.wait()
        refusal = None if fault else fake._over_limit()  # counted on arrival, answered after the latency
        delay = fake.latency + (fake.serial_latency if url.path.rstrip("/") == LIST_PATH and "created_on" not in params else 0)
        if delay:
            time.sleep(delay)
        if refusal is not None:
            fault = Fault.status(429, {"error": "Too Many Requests"}, refusal)
        fault = fault or Fault.none()
        kind = fault.kind
        if kind == "reset":
            fake._log(url.path, params, 0)
            self._reset()
            return
        content_type, headers = "application/json", dict[str, str]()
        if kind == "html":
            page = f"<html><body><h1>{fault.code} {_phrase(fault.code)}</h1></body></html>"
            code, body, content_type = fault.code, page.encode(), "text/html"
        elif kind in ("status", "wrong_shape"):
            code, body, headers = fault.code, json.dumps(fault.body).encode(), fault.headers
        elif kind == "echo_auth":
            echoed = f"invalid request; received headers: Authorization: {self.headers.get('Authorization')}"
            code, body = fault.code, json.dumps({"error": echoed}).encode()
        else:
            if kind == "slow":
                time.sleep(fault.seconds)
            code, body = fake._reply(self.headers.get("Authorization"), url.path, params)
            if code == 200 and url.path.rsplit("/", 1)[-1] in ("srt", "vtt"):
                content_type = "text/plain; charset=utf-8"  # subtitles are text, not JSON
            if kind == "truncated":
                code, body = 200, body[: len(body) // 2]
            elif kind == "mangled" and code == 200:
                body = _json(code, fault.body(json.loads(body)))[1]
        # Logged before sending, so a client that has its answer also sees the entry.
        fake._log(url.path, params, code)
        self._send(code, body, content_type, headers, fault.seconds if kind == "drip" else 0.0)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, by the server's own clock (see clock_offset)."""
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.fake.clock_offset.total_seconds())

    def _send(self, code: int, body: bytes, content_type: str, headers: dict[str, str], drip: float = 0.0) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not drip:
            self.wfile.write(body)
            return
        for offset in range(len(body)):
            self.wfile.write(body[offset : offset + 1])
            self.wfile.flush()
            time.sleep(drip)

    def _reset(self) -> None:
        # Linger 0 makes close() send RST; detaching closes the fd despite rfile/wfile references.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one stderr line per request would drown test and benchmark output


def transcript_part(tid: str, part: str) -> dict[str, Any] | str:
    """What GET /v2/transcript/{id}/<part> answers for a completed transcript: its words, grouped into
    sentences of one to four words and those into paragraphs of one to three sentences, each as AssemblyAI's
    API reference shapes them; srt and vtt give each sentence a caption."""
    rng = random.Random(f"parts:{tid}")
    sentences = _groups(_words(tid), lambda: rng.randint(1, 4))
    paragraphs = [[word for sentence in group for word in sentence] for group in _groups(sentences, lambda: rng.randint(1, 3))]
    if part in ("srt", "vtt"):
        return _subtitles([_segment(sentence) for sentence in sentences], part)
    segments = [_segment(group) for group in (sentences if part == "sentences" else paragraphs)]
    return {"id": tid, "confidence": 0.93, "audio_duration": _audio_duration(tid), part: segments}


def _groups(elements: list, size: Callable[[], int]) -> list[list]:
    """The elements in order, cut into groups of `size()` each (the last may be shorter)."""
    groups, done = [], 0
    while done < len(elements):
        step = size()
        groups.append(elements[done : done + step])
        done += step
    return groups


def _segment(words: list[dict]) -> dict[str, Any]:
    return {
        "text": " ".join(word["text"] for word in words), "start": words[0]["start"], "end": words[-1]["end"],
        "confidence": round(sum(word["confidence"] for word in words) / len(words), 4), "words": words,
        "speaker": words[0]["speaker"], "channel": None,
    }


def _subtitles(segments: list[dict[str, Any]], kind: str) -> str:
    """SubRip (numbered, 00:00:01,500) or WebVTT (a header, 00:01.500) captions, one per segment."""
    def at(ms: int) -> str:
        hours, rest = divmod(ms, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds, millis = divmod(rest, 1000)
        if kind == "srt":
            return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"
        return f"{hours * 60 + minutes:02d}:{seconds:02d}.{millis:03d}"

    cues = [f"{at(segment['start'])} --> {at(segment['end'])}\n{segment['text']}" for segment in segments]
    if kind == "srt":
        return "\n\n".join(f"{number}\n{cue}" for number, cue in enumerate(cues, start=1)) + "\n"
    return "\n\n".join(["WEBVTT", *cues]) + "\n"


def _words(tid: str) -> list[dict]:
    """A few words with timings and speakers, the same for the same id."""
    rng = random.Random(tid)
    words, clock = [], 0
    for _ in range(rng.randint(3, 12)):
        start = clock + rng.randint(50, 400)
        clock = start + rng.randint(120, 700)
        words.append({
            "text": rng.choice(["hello", "world", "the", "meeting", "starts", "now", "thanks", "everyone"]),
            "start": start, "end": clock, "confidence": round(rng.uniform(0.6, 1.0), 4),
            "speaker": rng.choice(["A", "B"]), "channel": None,
        })
    return words


FEATURES = (
    "speaker_labels", "sentiment_analysis", "entity_detection", "auto_highlights", "iab_categories", "content_safety",
    "auto_chapters", "summarization", "redact_pii", "multichannel",
)
ENTITY_TYPES = ("person_name", "location", "organization", "date", "phone_number")
TOPIC_LABELS = ("Business>Sales", "Technology&Computing>Computing", "Education", "Healthy Living", "Sports>Soccer")
SAFETY_LABELS = ("profanity", "health_issues", "financial")


def intelligence_profile(tid: str) -> str:
    """What a completed transcript was requested with, fixed by its id: "none" (a quarter), "all" (a
    quarter), "some" (a quarter: speaker labels, sentiment and topics), or "malformed" (all requested,
    and some parts of the wrong shape, as the API's shapes drift)."""
    return ("none", "all", "some", "malformed")[zlib.crc32(f"profile:{tid}".encode()) % 4]


def _intelligence(tid: str, words: list[dict] | None, malformed: bool = True) -> dict[str, Any]:
    """The request flags and audio intelligence parts of a body, shaped as in AssemblyAI's API reference."""
    profile = intelligence_profile(tid) if words else "none"
    if profile == "malformed" and not malformed:
        profile = "all"
    wanted = {
        "none": set(), "all": set(FEATURES) - {"multichannel", "redact_pii"},
        "some": {"speaker_labels", "sentiment_analysis", "iab_categories"}, "malformed": set(FEATURES) - {"multichannel"},
    }[profile]
    body: dict[str, Any] = {flag: flag in wanted for flag in FEATURES}
    body.update(utterances=None, sentiment_analysis_results=None, entities=None, auto_highlights_result=None,
                iab_categories_result=None, content_safety_labels=None, chapters=None, summary=None)
    if not wanted or not words:
        return body
    rng = random.Random(f"intelligence:{tid}")
    utterances: list[dict] = []
    for word in words:
        if utterances and utterances[-1]["speaker"] == word["speaker"]:
            turn = utterances[-1]
            turn.update(end=word["end"], text=f"{turn['text']} {word['text']}", words=[*turn["words"], word])
        else:
            utterances.append({"speaker": word["speaker"], "channel": None, "start": word["start"], "end": word["end"],
                               "confidence": word["confidence"], "text": word["text"], "words": [word]})
    body["utterances"] = utterances
    body["sentiment_analysis_results"] = [
        {"text": turn["text"], "start": turn["start"], "end": turn["end"],
         "sentiment": rng.choice(("POSITIVE", "NEUTRAL", "NEGATIVE")), "confidence": round(rng.uniform(0.5, 1), 4),
         "speaker": turn["speaker"], "channel": None}
        for turn in utterances
    ]
    chosen = rng.sample(words, min(len(words), rng.randint(0, 3)))
    body["entities"] = [
        {"entity_type": rng.choice(ENTITY_TYPES), "text": word["text"], "start": word["start"], "end": word["end"]}
        for word in chosen
    ]
    body["auto_highlights_result"] = {"status": "success", "results": [
        {"count": rng.randint(1, 3), "rank": round(rng.uniform(0.01, 0.2), 2), "text": word["text"],
         "timestamps": [{"start": word["start"], "end": word["end"]}]}
        for word in chosen
    ]}
    labels = rng.sample(TOPIC_LABELS, rng.randint(1, 3))
    relevance = {label: round(rng.uniform(0.1, 1), 6) for label in labels}
    body["iab_categories_result"] = {"status": "success", "summary": relevance, "results": [
        {"text": " ".join(w["text"] for w in words), "labels": [{"label": label, "relevance": r} for label, r in relevance.items()],
         "timestamp": {"start": words[0]["start"], "end": words[-1]["end"]}}
    ]}
    safety = rng.sample(SAFETY_LABELS, rng.randint(0, 2))
    body["content_safety_labels"] = {
        "status": "success", "results": [],
        "summary": {label: round(rng.uniform(0.5, 1), 4) for label in safety},
        "severity_score_summary": {label: {"low": 0.5, "medium": 0.3, "high": 0.2} for label in safety},
    }
    body["chapters"] = [{"gist": "Greetings", "headline": "The meeting starts", "summary": "They greet each other.",
                         "start": words[0]["start"], "end": words[-1]["end"]}]
    body["summary"] = "- They greet each other."
    for part, flag in (("utterances", "speaker_labels"), ("sentiment_analysis_results", "sentiment_analysis"),
                       ("entities", "entity_detection"), ("auto_highlights_result", "auto_highlights"),
                       ("iab_categories_result", "iab_categories"), ("content_safety_labels", "content_safety"),
                       ("chapters", "auto_chapters"), ("summary", "summarization")):
        if flag not in wanted:
            body[part] = None
    if profile == "malformed":
        body["entities"] = "unavailable"  # not a list: nothing stored for it
        for highlight in body["auto_highlights_result"]["results"]:
            del highlight["rank"]  # the drift the Python SDK's users hit: stored with rank NULL
        body["sentiment_analysis_results"][0]["confidence"] = "high"  # one unreadable value: NULL
        body["iab_categories_result"] = None  # requested, yet missing
        body["content_safety_labels"]["severity_score_summary"] = ["low"]  # not an object: severities NULL
        body["chapters"] = [["Greetings", 0, 1000]]  # elements not objects: nothing stored for it
    return body


def _audio_duration(tid: str) -> int | float:
    seconds = zlib.crc32(str(tid).encode()) % 600 + 1
    return seconds if seconds % 2 else seconds + 0.5


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def _json(code: int, body: Any) -> tuple[int, bytes]:
    # default=str: items added raw may hold values JSON cannot encode; serve them anyway.
    verbatim: list[str] = []
    text = json.dumps(body, default=lambda value: _verbatim(value, verbatim))
    for piece in verbatim:
        text = text.replace(json.dumps(_VERBATIM), piece, 1)
    return code, text.encode()


_VERBATIM = "\x00simulator: JSON text\x00"


def _verbatim(value: Any, verbatim: list[str]) -> str:
    if isinstance(value, JsonText):
        verbatim.append(value.text)
        return _VERBATIM
    return str(value)


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.strptime(value, TS_FORMAT)
    except (TypeError, ValueError):
        return None


def _matcher(status: str | None, created_on: str | None, offset: timedelta) -> Callable[[dict], bool] | None:
    """A filter predicate for the status/created_on params, or None when unfiltered; `offset` shifts the
    UTC `created` into the time zone whose days created_on counts."""
    if status is None and created_on is None:
        return None

    def on_day(created: Any) -> bool:
        if not offset:
            return isinstance(created, str) and created[:10] == created_on
        parsed = _parse_ts(created)
        return parsed is not None and (parsed + offset).strftime("%Y-%m-%d") == created_on

    def match(item: dict) -> bool:
        return (status is None or item.get("status") == status) and (created_on is None or on_day(item.get("created")))

    return match


class _TokenBucket:
    """A server's rate limit: `rate` requests a second, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self, now: float) -> float | None:
        """Take a token: None if one was there, else the seconds until one will be."""
        with self.lock:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return None
            return (1 - self.tokens) / self.rate


def _pick(items: list, positions: range, match: Callable[[dict], bool] | None, limit: int) -> list[int]:
    """The first `limit` positions, in `positions` order, whose items match."""
    if match is None:
        return list(islice(positions, limit))  # unfiltered: O(limit), whatever the list size
    return list(islice((pos for pos in positions if match(items[pos])), limit))


# What `fault_rate` draws from: the faults a real network service produces most.
RANDOM_FAULTS = (
    Fault.status(429, headers={"Retry-After": "1"}),
    Fault.status(500),
    Fault.status(503),
    Fault.html(502),
    Fault.reset(),
)


def serve(
    host: str,
    port: int,
    *,
    transcripts: int,
    latency: float,
    faults: float,
    api_key: str,
    seed: int,
    say: Callable[[str], None],
    duration: float | None = None,
    tick_seconds: float = 10.0,
) -> None:
    """`aai-etl simulate`: an account with `transcripts` transcripts, served until Ctrl-C or SIGTERM.

    Every `tick_seconds` a transcript arrives and the pending ones move on (queued -> processing ->
    completed), so scheduled syncs, metrics and dashboards see a living account. `duration`: stop after
    that many seconds (a scripted rehearsal), instead of at Ctrl-C."""
    rng = random.Random(seed)
    api = FakeAssemblyAI(api_key=api_key, latency=latency, seed=seed, fault_rate=faults)
    statuses = rng.choices(STATUSES, weights=(1, 1, 90, 8), k=transcripts)
    for status in statuses:
        api.add(1, status=status)
    # The account ends as the simulator starts, as a live one does: `stats` and dashboards show today.
    api.end_at(datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1))
    api.start(host, port)
    say(
        f"simulated AssemblyAI API listening on {api.base_url}: {transcripts:,} transcripts, {latency:g}s latency, "
        f"{faults:.0%} faults; stop it with Ctrl-C\n"
        f"  ASSEMBLYAI_BASE_URL={api.base_url} ASSEMBLYAI_API_KEY={api_key} aai-etl sync"
    )
    sys.stdout.flush()
    stop_at = None if duration is None else time.monotonic() + duration
    try:
        while stop_at is None or time.monotonic() < stop_at:
            time.sleep(tick_seconds if stop_at is None else max(0.0, min(tick_seconds, stop_at - time.monotonic())))
            for item in api.listing():
                if item["status"] in ("queued", "processing"):
                    api.set_status(item["id"], "processing" if item["status"] == "queued" else "completed")
            api.add(1, status="queued")
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
