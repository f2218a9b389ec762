"""One run's counters and its record: the run's row in sync_runs, the events the caller is told of, and
the transaction helper every counted commit of the run goes through."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from etl.api.client import ApiClient
from etl.errors import EtlError
from etl.store import interrupt, runs
from etl.store.engine import first_line
from etl.store.writes import PageResult

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    pages: int = 0
    requests: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    unlisted: int = 0
    hydrated: int = 0
    hydrate_failures: int = 0
    bad_values: int = 0
    seconds: float = 0.0
    warning: str | None = None
    # What the progress display, the run events and the metrics need beyond the stored counters.
    account: str = ""
    sync_run: int = 0  # the run's id in sync_runs
    phase: str = "listing"  # then "hydrating"
    hydrate_total: int = 0  # the details due when hydration began
    # Where the walk is: the listing has no count, so no total or ETA; the creation time it has read back
    # to, and the one it walks down to (the floor, or the start of the 90-day window), say how far it has come.
    listed_back_to: str | None = None
    walking_down_to: str | None = None
    # A walk by days: days done of the days to do, and the oldest day any page has reached.
    days_done: int = 0
    days_total: int = 0
    oldest_day: str | None = None
    # Seconds the details backlog takes at the request budget: the ETA before a rate is measured.
    hydrate_estimate: int | None = None
    retries: int = 0
    rate_limited: int = 0

    def add(self, page: PageResult, *, pages: int = 1) -> None:
        """Count what a stored page (or `pages` pages stored as one) brought."""
        self.pages += pages
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.deleted += page.deleted
        self.bad_values += len(page.bad_values) + len(page.refused)

    def warn(self, reason: str) -> None:
        """Add a warning to the run's record (several are joined by semicolons)."""
        self.warning = reason if self.warning is None else f"{self.warning}; {reason}"

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in runs.COUNTERS}


def writer_counters(page: PageResult) -> dict[str, int]:
    """What one page a writer connection stores adds to its counters."""
    stats = RunStats()
    stats.add(page)
    return {name: getattr(stats, name) for name in runs.WRITER_COUNTERS}


# Called with an event name and the run's counters so far: run_started; phase (listing or hydrating
# begins); progress (after each committed page or batch); run_finished or run_failed. The callee decides
# what to show or record; the sync knows nothing of output formats.
EventCallback = Callable[[str, RunStats], None]


class RunRecord:
    """The run's counters, as committed, and its row in sync_runs. Every transaction that changes what the
    run counts commits through `transaction`, so the row and the counters never tell a different story."""

    def __init__(self, conn: Connection, client: ApiClient, account: str, on_event: EventCallback) -> None:
        self.conn, self.client, self.on_event = conn, client, on_event
        self.stats = RunStats(account=account)

    def around(self, started: float, work: Callable[[], None]) -> None:
        """Do the work inside a sync_runs row that says how it went, whatever happens. `started`: when the
        run began (time.monotonic()), for the seconds it took."""
        with interrupt.writing():
            self.stats.sync_run = runs.start(self.conn, self.stats.account)
        self.on_event("run_started", self.stats)
        try:
            work()
            with interrupt.writing():
                self._finish(started, "succeeded", None)  # raises if it cannot: then the run did not succeed
        except BaseException as exc:
            with interrupt.writing():
                self.conn.rollback()  # the page in flight; every committed page stays
                error = self.client.redact(_describe(exc))  # stored and shown by `status`: never the key
                self._finish(started, "failed", error)
            self.on_event("run_failed", self.stats)
            raise
        self.on_event("run_finished", self.stats)

    @contextmanager
    def transaction(self, *, fold: bool = False) -> Iterator[RunStats]:
        """One transaction of the run, which a signal does not cut: the block changes the copy of the counters
        it is given, and they are written and committed with its work, then told as progress. `fold`: the
        writer connections' counters are in them, and their rows go in the same commit."""
        with interrupt.writing():
            stats = replace(self.stats)
            yield stats
            self.commit(stats, fold=fold)

    def commit(self, stats: RunStats, *, fold: bool = False) -> None:
        """Commit the transaction in progress with the counters it brings the run to: they count only what committed."""
        self._client_counters(stats)
        runs.count(self.conn, stats.sync_run, stats.counters())
        if fold:
            runs.fold_writers(self.conn, stats.sync_run)
        self.conn.commit()
        self.counted(stats)

    def counted(self, stats: RunStats) -> None:
        """What another connection committed is now in these counters: tell it as progress."""
        self._client_counters(stats)
        self.stats = stats
        self.on_event("progress", stats)

    def phase(self) -> None:
        self.on_event("phase", self.stats)

    def _client_counters(self, stats: RunStats) -> None:
        stats.requests = self.client.requests_made
        stats.retries, stats.rate_limited = self.client.retries, self.client.rate_limited

    def _finish(self, started: float, outcome: str, error: str | None) -> None:
        self._client_counters(self.stats)
        self.stats.seconds = time.monotonic() - started
        try:
            # self.stats holds every page the writer connections committed: their rows are folded in.
            runs.finish(self.conn, self.stats.sync_run, outcome, error, self.stats.warning, self.stats.counters())
        except Exception:
            if outcome == "succeeded":
                raise  # no other error to report: a run whose end cannot be recorded did not succeed
            # The database itself may be what failed; the original error is the one to report.
            log.debug("could not record the end of run %s", self.stats.sync_run, exc_info=True)


def _describe(exc: BaseException) -> str:
    """What sync_runs.error says about why a run stopped."""
    if isinstance(exc, EtlError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by Ctrl-C or SIGTERM"
    if isinstance(exc, DBAPIError):
        # The driver's one line, as the command's error line says it: SQLAlchemy's text adds the statement, its
        # parameters (transcript values) and a link, on lines of their own, which `status` would then print.
        return f"database error: {first_line(exc)}"
    said = str(exc).strip()
    return f"{type(exc).__name__}: {said.splitlines()[0]}" if said else type(exc).__name__
