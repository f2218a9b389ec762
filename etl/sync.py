"""One run: extract -> load, one transaction per page, the run record."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, insert, select, text, update

from etl import derive, interrupt, lock, migrate
from etl.client import ApiClient
from etl.db import connect
from etl.errors import CursorRejected, EtlError, SyncAlreadyRunning
from etl.extract import Boundary, Page, reaches, walk_back
from etl.hydrate import HydrateOptions, hydrate
from etl.load import (
    Cursor,
    PageResult,
    created_of,
    has_rows,
    mark_unlisted,
    oldest_pending,
    read_cursor,
    save_cursor,
    upsert_page,
)
from etl.schema import sync_runs

log = logging.getLogger(__name__)

# The API lists the last 90 days; a pending transcript older than that can no longer be re-checked.
LISTING_WINDOW = timedelta(days=90)
# PostgreSQL plans a table it has no statistics for as if it were tiny: a first sync's page lookups then
# scan the whole table, each page longer than the last. So a run that inserts many rows analyzes the table
# itself, at 1,000 new rows and at every four times as many since: cheap, and long before autovacuum would.
ANALYZE_FIRST, ANALYZE_GROWTH = 1_000, 4


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

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.deleted += page.deleted
        self.bad_values += len(page.bad_values)


ProgressCallback = Callable[[RunStats], None]


def run_sync(
    engine: Engine,
    client: ApiClient,
    account: str,
    on_progress: ProgressCallback | None = None,
    *,
    full: bool = False,
    listing: bool = True,
    hydration: HydrateOptions | None = None,
) -> RunStats:
    """Bring the account's transcripts up to date; raise SyncAlreadyRunning if another run holds its lock.

    `listing` syncs the list (`full`: the whole of it, which catches deletions of older transcripts and
    marks rows that have left the 90-day window); `hydration` then fetches the details of final ones.
    """
    started = time.monotonic()
    with connect(engine) as conn:
        with interrupt.writing():
            migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                run = _Run(conn, client, account, on_progress or (lambda stats: None))
                run.record(started, lambda: run.work(listing, full, hydration))
        except lock.LockBusy:
            raise SyncAlreadyRunning(_already_running(conn, account)) from None
    return run.stats


class _Run:
    """One account's run: its connection, its API client, its counters."""

    def __init__(self, conn: Connection, client: ApiClient, account: str, on_page: ProgressCallback) -> None:
        self.conn, self.client, self.account, self.on_page = conn, client, account, on_page
        self.stats = RunStats()
        self.run_id = 0
        self.analyze_at = ANALYZE_FIRST if conn.dialect.name == "postgresql" else None

    def record(self, started: float, work: Callable[[], None]) -> None:
        """Do the work inside a sync_runs row that says how it went, whatever happens."""
        with interrupt.writing():
            self.run_id = _start_run(self.conn, self.account)
        try:
            work()
        except BaseException as exc:
            with interrupt.writing():
                self.conn.rollback()  # the page in flight; every committed page stays
                error = str(exc) if isinstance(exc, EtlError) else f"{type(exc).__name__}: {exc}"
                self._finish(started, "failed", error)
            raise
        with interrupt.writing():
            self._finish(started, "succeeded", None)

    def work(self, listing: bool, full: bool, hydration: HydrateOptions | None) -> None:
        if listing:
            self.until_current(full)
        if hydration is not None:
            hydrate(self.conn, self.client, self.account, hydration, self._hydrated)

    def _hydrated(self, hydrated: int, failed: int) -> None:
        """After each hydration batch, in its transaction: the run's counters."""
        self.stats.hydrated, self.stats.hydrate_failures = hydrated, failed
        self._save_counters()

    def _save_counters(self) -> None:
        self.stats.requests = self.client.requests_made
        self.conn.execute(update(sync_runs).where(sync_runs.c.id == self.run_id).values(**_counters(self.stats)))
        self.on_page(self.stats)

    def until_current(self, full: bool) -> None:
        """Finish an interrupted walk if there is one, then walk from the newest page down to the floor."""
        cursor = read_cursor(self.conn, self.account)
        if cursor.walking:
            full = full and not cursor.walk_full  # an interrupted full walk, finished, is the reconcile asked for
            self._walk(cursor)
            cursor = read_cursor(self.conn, self.account)
        if full:
            self._walk(Cursor(high_water=cursor.high_water, walk_full=True))
        else:
            pending = oldest_pending(self.conn, self.account, _utcnow() - LISTING_WINDOW)
            self._walk(Cursor(high_water=cursor.high_water, walk_floor=_older(cursor.high_water, pending)))

    def _walk(self, cursor: Cursor) -> None:
        try:
            # Into an account with no rows yet, every page of the walk is new: each is older than the last.
            self._pages(cursor, all_new=not cursor.walk_full and not has_rows(self.conn, self.account))
        except CursorRejected as rejected:
            # The walk's position has left the listing (it aged out while the job was down, most likely).
            # Walk again from the newest page to the same floor, once: re-read pages are unchanged, so cheap.
            self.conn.rollback()
            log.warning("%s; walking again from the newest transcript down to the stored boundary", rejected)
            self._pages(replace(cursor, walk_top=None, walk_before_id=None), all_new=False)

    def _pages(self, cursor: Cursor, all_new: bool) -> None:
        oldest = None
        if cursor.walk_before_id is not None:
            created = created_of(self.conn, self.account, cursor.walk_before_id)
            oldest = Boundary(cursor.walk_before_id, created) if created else None
        for page in walk_back(self.client, before_id=cursor.walk_before_id, floor=cursor.walk_floor):
            with interrupt.writing():
                cursor, oldest = self._store(page, cursor, oldest, all_new)

    def _store(self, page: Page, cursor: Cursor, oldest: Boundary | None, all_new: bool) -> tuple[Cursor, Boundary | None]:
        """One page: its rows, the cursor they imply and the run's counters, in one transaction."""
        now = _utcnow()
        result = upsert_page(self.conn, self.account, page.items, now, all_new=all_new)
        oldest = page.oldest or oldest
        if cursor.walk_top is None:
            cursor = replace(cursor, walk_top=page.newest)
        if page.resume_before_id is None:
            self._end_walk(cursor, page, oldest, now)
            cursor = Cursor(high_water=cursor.walk_top or cursor.high_water)
        else:
            cursor = replace(cursor, walk_before_id=page.resume_before_id)
        save_cursor(self.conn, self.account, cursor, now)
        self.stats.add(result)
        self._save_counters()
        self.conn.commit()
        _warn_bad_values(result)
        if self.analyze_at is not None and self.stats.inserted >= self.analyze_at:
            self.conn.execute(text("ANALYZE transcripts"))
            self.conn.commit()
            self.analyze_at *= ANALYZE_GROWTH
        return cursor, oldest

    def _end_walk(self, cursor: Cursor, last_page: Page, oldest: Boundary | None, now: datetime) -> None:
        high_water = cursor.high_water
        if high_water is not None and not reaches(last_page.items, high_water):
            # The listing ends above the stored high water mark: it left the 90-day window during an outage,
            # and transcripts created between it and the oldest still listed may have aged out unseen.
            listed_from = f"{oldest.created:%Y-%m-%d %H:%M:%S}" if oldest else "now"
            self.stats.warning = (
                f"the stored cursor (transcript {high_water.id}, created {high_water.created:%Y-%m-%d %H:%M:%S} UTC) "
                f"is no longer listed: transcripts created between then and {listed_from} UTC may have been missed "
                "while the job was down (the API lists only the last 90 days)"
            )
            log.warning("%s", self.stats.warning)
        if cursor.walk_full:
            self.stats.unlisted += mark_unlisted(self.conn, self.account, oldest.created if oldest else None, now)

    def _finish(self, started: float, outcome: str, error: str | None) -> None:
        self.stats.requests = self.client.requests_made
        self.stats.seconds = time.monotonic() - started
        try:
            self.conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == self.run_id)
                .values(outcome=outcome, finished_at=_utcnow(), error=error, warning=self.stats.warning, **_counters(self.stats))
            )
            self.conn.commit()
        except Exception:
            # The database itself may be what failed; the original error is the one to report.
            log.debug("could not record the end of run %s", self.run_id, exc_info=True)


def _older(high_water: Boundary | None, pending: Boundary | None) -> Boundary | None:
    """The floor of a new walk: no high water means no floor (walk the whole listing)."""
    if high_water is None or pending is None:
        return high_water
    return pending if pending.created < high_water.created else high_water


def _warn_bad_values(result: PageResult) -> None:
    for transcript_id, name, value in result.bad_values:
        if transcript_id is None:
            log.warning("skipped a list item without a usable id: %.200r", value)
        else:
            log.warning("transcript %s: unreadable %s %.100r stored as NULL (raw keeps it)", transcript_id, name, value)


def _start_run(conn: Connection, account: str) -> int:
    now = _utcnow()
    # We hold the account's lock, so any run still marked running died without finishing.
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.account == account, sync_runs.c.outcome == "running")
        .values(outcome="abandoned", finished_at=now)
    )
    run_id = conn.execute(
        insert(sync_runs).values(
            account=account, started_at=now, outcome="running", pid=os.getpid(), hostname=socket.gethostname()
        )
    ).inserted_primary_key[0]
    conn.commit()
    return run_id


def _counters(stats: RunStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in _COUNTERS}


_COUNTERS = (
    "pages", "requests", "inserted", "updated", "unchanged", "deleted", "unlisted", "hydrated", "hydrate_failures", "bad_values",
)


def derive_from_bodies(
    engine: Engine, account: str, tables: tuple[str, ...], *, again: bool = False, refetch: bool = False
) -> tuple[int, int]:
    """Fill the derived tables from stored bodies, for transcripts hydrated before they existed (no API
    requests); return (transcripts derived, transcripts left without a stored body). With `refetch`, queue
    those without a body for the next hydration instead; return (transcripts queued, 0). Holds the
    account's run lock, like a sync."""
    with connect(engine) as conn:
        with interrupt.writing():
            migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                if refetch:
                    return derive.refetch_without_bodies(conn, account), 0
                derived = derive.backfill(conn, account, derive.Deriver(tables), _utcnow(), again)
                return derived, derive.without_bodies(conn, account)
        except lock.LockBusy:
            raise SyncAlreadyRunning(_already_running(conn, account)) from None


def _already_running(conn: Connection, account: str) -> str:
    row = conn.execute(
        select(sync_runs.c.started_at, sync_runs.c.pid, sync_runs.c.hostname)
        .where(sync_runs.c.account == account, sync_runs.c.outcome == "running")
        .order_by(sync_runs.c.started_at.desc())
        .limit(1)
    ).first()
    since = f" since {row.started_at:%Y-%m-%d %H:%M:%S} UTC (pid {row.pid} on {row.hostname})" if row else ""
    return f"a sync of account '{account}' is already running{since}; this run did nothing, the next one will catch up"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
