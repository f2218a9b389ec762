"""Where a run is: per-phase counters, rate and ETA, shown as bars on a terminal or as periodic log events.

The sync publishes events with its counters (etl.sync.record). This module turns them into what a person
or a log collector needs to tell a long run from a hung one. tqdm is imported only when stderr is a terminal.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import IO, Any


class RunProgress:
    """Counters, rate and ETA of one account's run, the rate measured from the start of its current phase."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # updated by the sync's thread, read by the ticker's
        self._fields: dict[str, Any] = {}
        self._phase_started = clock()
        self._count_at_start = 0

    def update(self, event: str, stats: Any) -> dict[str, Any]:
        """Take the run's latest counters; return the fields as of now."""
        fields: dict[str, Any] = {"account": stats.account, "phase": stats.phase}
        if stats.phase == "listing":
            fields.update(
                pages=stats.pages,
                rows=stats.inserted + stats.updated + stats.unchanged,
                listed_back_to=stats.listed_back_to,
                walking_down_to=stats.walking_down_to,
                days_done=stats.days_done,
                days_total=stats.days_total,
                oldest_day=stats.oldest_day,
            )
        else:
            fields.update(
                done=stats.hydrated + stats.hydrate_failures, total=stats.hydrate_total, failed=stats.hydrate_failures,
                estimate_seconds=stats.hydrate_estimate,
            )
        fields.update(requests=stats.requests, retries=stats.retries, rate_limited=stats.rate_limited)
        with self._lock:
            if event in ("run_started", "phase"):
                self._phase_started, self._count_at_start = self._clock(), _count(fields)
            self._fields = fields
        return self.fields()

    def fields(self) -> dict[str, Any]:
        """The latest counters with the rate recomputed now, so a stalled run shows its rate falling."""
        with self._lock:
            fields, started, at_start = dict(self._fields), self._phase_started, self._count_at_start
        if not fields:
            return fields
        count = _count(fields)
        fields["rate"] = round((count - at_start) / max(self._clock() - started, 1e-6), 1)
        if fields["phase"] == "hydrating":
            remaining = max(fields["total"] - count, 0)
            # Until a rate is measured, the backlog at the request budget says how long it takes at best.
            estimate = fields.pop("estimate_seconds")
            fields["eta_seconds"] = math.ceil(remaining / fields["rate"]) if fields["rate"] > 0 else estimate
        return fields


def _count(fields: dict[str, Any]) -> int:
    return fields["rows"] if fields["phase"] == "listing" else fields["done"]


def describe(fields: dict[str, Any]) -> str:
    """One progress line for a text log."""
    if fields["phase"] == "listing":
        where = f"listing: {fields['rows']:,} transcripts read in {fields['pages']:,} pages, {fields['rate']:,.0f}/s"
        if fields["listed_back_to"]:
            where += f", back to {fields['listed_back_to']} (walking down to {fields['walking_down_to']})"
        if fields["days_total"]:
            where += f", {_days(fields)}"
    else:
        eta = fields.get("eta_seconds")
        left = f", about {duration(eta)} left" if eta is not None else ""
        failed = f" ({fields['failed']:,} failed)" if fields["failed"] else ""
        where = f"details: {fields['done']:,} of {fields['total']:,}{failed}, {fields['rate']:,.1f}/s{left}"
    retries = f"; {fields['retries']:,} retries ({fields['rate_limited']:,} after HTTP 429)" if fields["retries"] else ""
    return f"'{fields['account']}' {where}{retries}"


def _days(fields: dict[str, Any]) -> str:
    """Where a walk by days is: `12 of 91 days done, reached 2026-09-12`."""
    reached = f", reached {fields['oldest_day']}" if fields["oldest_day"] else ""
    return f"{fields['days_done']:,} of {fields['days_total']:,} days done{reached}"


def duration(seconds: float) -> str:
    """3725 -> '1h 2m', 322 -> '5m 22s', 9 -> '9s'."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


class Ticker:
    """Calls `tick` every `interval` seconds from a daemon thread until stopped: a run waiting on a slow
    API or a long Retry-After still says it is alive."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval, self._tick = interval, tick
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._tick()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


class TerminalBars:
    """A tqdm bar per phase on stderr; log lines go above it through `write`, never into it."""

    def __init__(self, stream: IO[str]) -> None:
        from tqdm import tqdm  # only on a terminal: cron and systemd runs never pay for it

        self._tqdm, self._stream = tqdm, stream
        self._bar: Any = None
        self._lock = threading.Lock()  # log lines come from the hydration threads too

    def update(self, event: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if event in ("run_finished", "run_failed"):
                self._close()
                return
            if event == "phase" or (self._bar is None and event != "run_started"):
                self._open(fields)
            if self._bar is None:
                return
            self._bar.update(_count(fields) - self._bar.n)
            self._bar.set_postfix_str(_postfix(fields), refresh=True)

    def waiting(self, seconds: float, rate_limited: bool) -> None:
        """A retry is waiting: say so on the bar until the next update replaces it."""
        with self._lock:
            if self._bar is not None:
                why = "HTTP 429" if rate_limited else "an error"
                self._bar.set_postfix_str(f"waiting {seconds:.0f}s after {why}", refresh=True)

    def write(self, line: str) -> None:
        with self._lock:
            self._tqdm.write(line, file=self._stream)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self, fields: dict[str, Any]) -> None:
        self._close()
        listing = fields["phase"] == "listing"
        self._bar = self._tqdm(
            desc=f"{fields['account']}: {'listing' if listing else 'details'}",
            total=None if listing else fields["total"],
            unit=" transcripts",
            unit_scale=False,
            file=self._stream,
            leave=False,
            **_width(self._stream),
        )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _width(stream: IO[str]) -> dict[str, Any]:
    """Follow the terminal's size as it is resized; a terminal that reports none (0 x 0, as a fresh pty or
    some container consoles do) gets 100 x 24, since tqdm would draw nothing at all."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        size = os.terminal_size((0, 0))
    return {"dynamic_ncols": True} if size.columns and size.lines else {"ncols": 100, "nrows": 24}


def _postfix(fields: dict[str, Any]) -> str:
    parts = [f"{fields['pages']:,} pages"] if fields["phase"] == "listing" else []
    if fields["phase"] == "listing" and fields["listed_back_to"]:
        parts.append(f"reached {fields['listed_back_to'][:10]}, walking down to {fields['walking_down_to'][:10]}")
    if fields["phase"] == "listing" and fields["days_total"]:
        parts.append(_days(fields))
    if fields["phase"] != "listing" and fields["failed"]:
        parts.append(f"{fields['failed']:,} failed")
    if fields["retries"]:
        parts.append(f"retries {fields['retries']:,} ({fields['rate_limited']:,} after HTTP 429)")
    return ", ".join(parts)
