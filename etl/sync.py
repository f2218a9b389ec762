"""One run: extract -> load, one transaction per page, the run record."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from etl.api.client import ApiClient
from etl.details import derive
from etl.details.hydrate import HydrateOptions, hydrate, hydration_backlog
from etl.errors import CursorRejected, EtlError, SyncAlreadyRunning
from etl.model.items import Item
from etl.model.position import Boundary, newer
from etl.model.storable import escape
from etl.store import interrupt, lock, migrate
from etl.store.engine import connect, first_line
from etl.store.positions import (
    Cursor,
    DayPosition,
    end_partitions,
    partitions_refused,
    read_cursor,
    read_partitions,
    refuse_partitions,
    save_cursor,
    save_partitions,
    start_partitions,
)
from etl.store.reads import StoredRows, created_of, has_rows, is_pending
from etl.store.schema import sync_run_writers, sync_runs
from etl.store.writers import WriterPool
from etl.store.writes import PageResult, mark_unlisted, upsert_page
from etl.walk import days, stragglers
from etl.walk.backwards import LISTING_WINDOW, Page, Plausible, newer_than, reaches, walk_back

log = logging.getLogger(__name__)

# PostgreSQL plans a table it has no statistics for as if it were tiny: a first sync's page lookups then
# scan the whole table, each page longer than the last. So a run that inserts many rows analyzes the table
# itself, at 1,000 new rows and at every four times as many since: cheap, and long before autovacuum would.
ANALYZE_FIRST, ANALYZE_GROWTH = 1_000, 4
# `partitions = "auto"`: a first backfill or full walk starts serially and goes on by days once its first
# SWITCH_PAGES pages, all full, span less than a day each (200 or more transcripts a day): the rest of the
# 90-day window then holds many pages (about 90 if that rate holds), which the ~93 day requests, walked in
# parallel, repay. A smaller walk ends before it decides anything, at no cost.
SWITCH_PAGES = 8
DENSE_SPAN = timedelta(days=1)


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

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.deleted += page.deleted
        self.bad_values += len(page.bad_values) + len(page.refused)


# Called with an event name and the run's counters so far: run_started; phase (listing or hydrating
# begins); progress (after each committed page or batch); run_finished or run_failed. The callee decides
# what to show or record; the sync knows nothing of output formats.
EventCallback = Callable[[str, RunStats], None]


def run_sync(
    engine: Engine,
    client: ApiClient,
    account: str,
    on_event: EventCallback | None = None,
    *,
    full: bool = False,
    listing: bool = True,
    hydration: HydrateOptions | None = None,
    keep_presigned_credentials: bool = False,
    partitions: str = "auto",
    partition_days: int = 32,
    partition_writers: int = 1,
) -> RunStats:
    """Bring the account's transcripts up to date; raise SyncAlreadyRunning if another run holds its lock.

    `listing` syncs the list (`full`: the whole of it, which catches deletions of older transcripts and
    marks rows that have left the 90-day window); `hydration` then fetches the details of final ones.
    `partitions` says how a first backfill or full walk goes: "auto" (serially, then by days once its
    pages show they pay: see SWITCH_PAGES), "days" or "serial"; `partition_days` days at once;
    `partition_writers`: connections that store a walk by days at once (PostgreSQL; SQLite has one writer).
    """
    started = time.monotonic()
    with connect(engine) as conn:
        with interrupt.writing():
            migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                run = _Run(
                    conn, client, account, on_event or (lambda event, stats: None), keep_presigned_credentials, partitions,
                    partition_days, partition_writers,
                )
                run.record(started, lambda: run.work(listing, full, hydration))
        except lock.LockBusy:
            raise SyncAlreadyRunning(_already_running(conn, account)) from None
    return run.stats


class _Run:
    """One account's run: its connection, its API client, its counters."""

    def __init__(
        self, conn: Connection, client: ApiClient, account: str, on_event: EventCallback, keep_presigned_credentials: bool,
        partitions: str, partition_days: int, partition_writers: int = 1,
    ) -> None:
        self.conn, self.client, self.account, self.on_event = conn, client, account, on_event
        self.keep_presigned_credentials = keep_presigned_credentials
        self.partitions = partitions  # how a first backfill or full walk goes: auto, days or serial
        self.partition_days = partition_days  # UTC days walked at once by a partitioned walk
        # Connections storing those days' pages at once. SQLite has one writer at a time: the run's own.
        self.partition_writers = partition_writers if conn.dialect.name == "postgresql" else 1
        # Whether a serial walk may still go on by days (`partitions = "auto"`, and they have not fallen back),
        # and whether the last one did.
        self.may_switch = partitions == "auto"
        self.days: dict[date, DayPosition] = {}  # a walk by days as committed, for the progress
        self.switched = self.switched_all_new = False
        self.stats = RunStats(account=account)
        self.analyze_at = ANALYZE_FIRST if conn.dialect.name == "postgresql" else None

    def record(self, started: float, work: Callable[[], None]) -> None:
        """Do the work inside a sync_runs row that says how it went, whatever happens."""
        with interrupt.writing():
            self.stats.sync_run = _start_run(self.conn, self.account)
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

    def work(self, listing: bool, full: bool, hydration: HydrateOptions | None) -> None:
        if listing:
            self.on_event("phase", self.stats)
            self.until_current(full)
        if hydration is not None:
            self.stats.phase, self.stats.hydrate_total = "hydrating", hydration_backlog(self.conn, self.account)
            requests = self.stats.hydrate_total * (1 + len(hydration.extra_details))  # each extra detail is one more
            self.stats.hydrate_estimate = math.ceil(requests / self.client.pacer.budget)
            self.on_event("phase", self.stats)
            hydrate(self.conn, self.client, self.account, hydration, self._hydrated)
            if self.analyze_at is not None and self.stats.hydrated >= ANALYZE_FIRST:
                # Hydration rewrites many rows too: without fresh statistics the next run's queue query
                # scans the `created` index (over a second at 300,000 rows instead of 150 ms).
                self.conn.execute(text("ANALYZE transcripts"))
                self.conn.commit()

    def _hydrated(self, hydrated: int, failed: int) -> None:
        """After each hydration batch, in its transaction: the run's counters, then the commit."""
        self._commit(replace(self.stats, hydrated=hydrated, hydrate_failures=failed))

    def _commit(self, stats: RunStats, *, fold: bool = False) -> None:
        """Commit the transaction with the counters it brings the run to: they count only what committed.
        `fold`: the stats hold the pages of the writer connections, whose own rows go in the same commit."""
        _client_counters(stats, self.client)
        self.conn.execute(_COUNT, {"run": stats.sync_run, **_counters(stats)})
        if fold:
            self.conn.execute(delete(sync_run_writers).where(sync_run_writers.c.sync_run == stats.sync_run))
        self.conn.commit()
        self.stats = stats
        self.on_event("progress", stats)

    def until_current(self, full: bool) -> None:
        """Finish an interrupted walk if there is one, then walk from the newest page down to the floor.

        A first backfill or a full walk goes by day partitions (from the start with `partitions = "days"`;
        with "auto" once its first pages show they pay, see `_switch`) unless the account's API has been found
        to misread `created_on`; the plain run that follows catches what arrived."""
        positions, partitions_full = read_partitions(self.conn, self.account)
        fell_back = False  # a walk by days that fell back is not tried again in this run
        if positions and self.partitions == "serial":
            # Told to walk serially: the stored days are dropped, and the serial walk covers them.
            with interrupt.writing():
                end_partitions(self.conn, self.account)
                self.conn.commit()
            fell_back, full = True, full or partitions_full
        elif positions:
            # An interrupted full walk, finished, is the reconcile asked for; one that fell back is still owed.
            fell_back = not self._partitioned(positions, partitions_full)
            full = (full or partitions_full) if fell_back else (full and not partitions_full)
        refused = partitions_refused(self.conn, self.account) is not None
        self.may_switch = self.may_switch and not fell_back and not refused
        cursor = read_cursor(self.conn, self.account)
        if cursor.walking:
            full = full and not cursor.walk_full
            self._walk(cursor)
            cursor = read_cursor(self.conn, self.account)
            refused = partitions_refused(self.conn, self.account) is not None
        if (full or cursor.high_water is None) and self.partitions == "days" and not fell_back and not refused:
            now = _utcnow()
            with interrupt.writing():
                start_partitions(self.conn, self.account, days.days(now), full, now)
                self.conn.commit()
            if self._partitioned(*read_partitions(self.conn, self.account)):
                full = False
                cursor = read_cursor(self.conn, self.account)
        if full:
            self._walk(Cursor(high_water=cursor.high_water, walk_full=True))
        else:
            # Pending transcripts below the high water mark are re-checked apart; only those that are better
            # walked to lower the walk's floor.
            check = stragglers.recheck(
                StoredRows(self.conn, self.account), self.client, cursor.high_water, _utcnow() - LISTING_WINDOW, self.keep_presigned_credentials
            )
            for items in check:
                with interrupt.writing():
                    self._store_items(items)
            deepest = min((s.boundary for s in check.walk_to), key=lambda b: b.created, default=None)
            # With no straggler left to the walk and the mark itself final, nothing at or below the mark is
            # re-read by a plain run: one `after_id` request may bring all that is newer.
            high_water = cursor.high_water
            if (
                deepest is None and high_water is not None
                and not is_pending(self.conn, self.account, high_water.id)
                and self._newer_than(high_water)
            ):
                return
            self._walk(Cursor(high_water=cursor.high_water, walk_floor=_older(cursor.high_water, deepest)))

    def _partitioned(self, positions: dict[date, DayPosition], full: bool, all_new: bool | None = None) -> bool:
        """Walk the days still to do, each page committed with its day's position; at the end, in one
        transaction, the high water mark (the newest transcript listed) and, for a full walk, what is no
        longer listed. False when `created_on` proved misread: said once, remembered, and the caller walks
        serially (the rows stored so far are list items as listed, so they stay)."""
        now = _utcnow()
        # Into an account with no rows, no page holds a stored id: the days are disjoint (and from a serial
        # walk into one that went on by days, disjoint from what it stored: `all_new` says so).
        if all_new is None:
            all_new = not full and not has_rows(self.conn, self.account)
        todo = {day: position.before_id for day, position in positions.items() if not position.done}
        self.days = dict(positions)  # as committed: what the progress says of the walk
        _days_walked(self.stats, self.days)
        # When each stored position was created: a page of its day above it shows the cursor ignored.
        created = {cursor: created_of(self.conn, self.account, cursor) for cursor in todo.values() if cursor is not None}
        pages = days.walk_days(
            self.client, todo, workers=self.partition_days, now=now, keep_presigned_credentials=self.keep_presigned_credentials,
            created={cursor: moment for cursor, moment in created.items() if moment is not None},
        )
        try:
            if self.partition_writers > 1:
                self._store_days_at_once(pages, positions, all_new)
            else:
                for batch in pages:
                    with interrupt.writing():
                        self._store_days(batch, positions, all_new)
        except days.Unpartitionable as refused:
            pages.close()
            self.conn.rollback()
            if refused.misread:
                reason = f"{refused}: walked the listing serially instead, as every later run of this account will"
                log.warning("%s", reason)
                self.stats.warning = reason if self.stats.warning is None else f"{self.stats.warning}; {reason}"
            else:
                log.warning("%s: walked the listing serially instead", refused)
            with interrupt.writing():
                end_partitions(self.conn, self.account)
                if refused.misread:
                    refuse_partitions(self.conn, self.account, str(refused), now)
                self._commit(replace(self.stats), fold=True)
            return False
        with interrupt.writing():
            self._end_partitions(positions, full)
        return True

    def _store_days(self, batch: list[days.DayPage], positions: dict[date, DayPosition], all_new: bool) -> None:
        """Pages of one or more days, as they arrived: their rows (one upsert), their days' positions and the
        run's counters, in one transaction. `positions` is brought up to date once it has committed."""
        now = _utcnow()
        result = upsert_page(self.conn, self.account, [item for page in batch for item in page.items], now, all_new=all_new)
        stats = replace(self.stats)
        stats.add(result)
        stats.pages += len(batch) - 1
        moved: dict[date, DayPosition] = {}
        for page in batch:
            moved[page.day] = _advance(moved.get(page.day, positions[page.day]), page)
        save_partitions(self.conn, self.account, moved, now)
        self.days.update(moved)
        _days_walked(stats, self.days)
        self._commit(stats)
        positions.update(moved)
        _warn_bad_values(result)
        self._analyze_if_grown()

    def _store_days_at_once(self, pages: Iterator[list[days.DayPage]], positions: dict[date, DayPosition], all_new: bool) -> None:
        """Store the pages on `partition_writers` connections at once: each day's pages on one of them, in
        order, each page one transaction with its day's position and its writer's counters (rows of their
        own in sync_run_writers, so that writers do not queue on the run's row)."""
        count = self.partition_writers
        with interrupt.writing():
            self.conn.execute(
                insert(sync_run_writers),
                [{"sync_run": self.stats.sync_run, "writer": writer, **dict.fromkeys(_WRITER_COUNTERS, 0)} for writer in range(1, count + 1)],
            )
            self.conn.commit()
        run = self.stats.sync_run
        pool = WriterPool(self.conn.engine, count, lambda conn, writer, job: self._write_day(conn, run, writer, job, all_new), self._day_written)
        finished = False
        try:
            for batch in pages:
                for page in batch:
                    positions[page.day] = _advance(positions[page.day], page)
                    pool.submit(page.day.toordinal(), (page, positions[page.day]))
            finished = True
        finally:
            with interrupt.writing():
                error = pool.close(finish=finished)  # every page a writer committed is counted in self.stats
            if error is not None and finished:
                raise error
            if error is not None:
                log.debug("a writer failed too, while the run stopped", exc_info=error)

    def _write_day(
        self, conn: Connection, run: int, writer: int, job: tuple[days.DayPage, DayPosition], all_new: bool,
    ) -> tuple[PageResult, date, DayPosition]:
        """On a writer's connection, in its thread: one page, its day's position and the writer's counters."""
        page, position = job
        now = _utcnow()
        result = upsert_page(conn, self.account, page.items, now, all_new=all_new)
        save_partitions(conn, self.account, {page.day: position}, now)
        mine = (sync_run_writers.c.sync_run == run) & (sync_run_writers.c.writer == writer)
        conn.execute(update(sync_run_writers).where(mine).values(
            **{name: sync_run_writers.c[name] + value for name, value in _page_counters(result).items()}
        ))
        conn.commit()
        return result, page.day, position

    def _day_written(self, written: tuple[PageResult, date, DayPosition]) -> None:
        """In the run's thread, for each page a writer committed: the run's counters, then the progress."""
        result, day, position = written
        stats = replace(self.stats)
        stats.add(result)
        self.days[day] = position
        _days_walked(stats, self.days)
        _client_counters(stats, self.client)
        self.stats = stats
        self.on_event("progress", stats)
        _warn_bad_values(result)
        self._analyze_if_grown()

    def _end_partitions(self, positions: dict[date, DayPosition], full: bool) -> None:
        now = _utcnow()
        stats = replace(self.stats)
        newest = oldest = None
        for position in positions.values():
            newest = newer(newest, position.newest)
            if position.oldest is not None and (oldest is None or position.oldest.created < oldest.created):
                oldest = position.oldest
        cursor = read_cursor(self.conn, self.account)
        if newest is not None:
            save_cursor(self.conn, self.account, Cursor(high_water=newer(cursor.high_water, newest)), now)
        if full:
            # Every day walked to its end, every item checked against its day: the whole listing was seen.
            latest = Plausible(now, self.client.clock_ahead).latest
            stats.unlisted += mark_unlisted(
                self.conn, self.account, oldest.created if oldest else None, latest, set(), now, unplaced=False
            )
        end_partitions(self.conn, self.account)
        self._commit(stats, fold=True)

    def _newer_than(self, high_water: Boundary) -> bool:
        """Store what is newer than the high water mark from one `after_id` request, if that is exact; the
        items, the mark moved to the newest of them and the run's counters in one transaction."""
        now = _utcnow()
        items = newer_than(self.client, high_water, now=now, keep_presigned_credentials=self.keep_presigned_credentials)
        if items is None:
            return False
        with interrupt.writing():
            result = upsert_page(self.conn, self.account, items, now)
            stats = replace(self.stats)
            stats.add(result)
            newest = Plausible(now, self.client.clock_ahead).boundaries(items)
            if newest:
                save_cursor(self.conn, self.account, Cursor(high_water=newest[0]), now)
            self._commit(stats)
        _warn_bad_values(result)
        return True

    def _walk(self, cursor: Cursor) -> None:
        """Walk from the cursor; a walk that went on by days (`_switch`) finishes them, or, if they fell back,
        walks again serially from the newest page."""
        self._walk_serially(cursor)
        if self.switched:
            self.switched = False
            full = cursor.walk_full
            # Days have no one place in the listing to report: the progress says rows, not how far back.
            self.stats.listed_back_to = self.stats.walking_down_to = None
            if not self._partitioned(*read_partitions(self.conn, self.account), all_new=self.switched_all_new):
                self.may_switch = False
                self._walk_serially(Cursor(high_water=read_cursor(self.conn, self.account).high_water, walk_full=full))

    def _walk_serially(self, cursor: Cursor) -> None:
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
        walk = _Walk(Plausible(_utcnow(), self.client.clock_ahead))
        if cursor.walk_before_id is not None:
            created = created_of(self.conn, self.account, cursor.walk_before_id)
            walk.oldest = Boundary(cursor.walk_before_id, created) if created else None
        pages = walk_back(
            self.client, before_id=cursor.walk_before_id, floor=cursor.walk_floor, now=walk.plausible.now,
            keep_presigned_credentials=self.keep_presigned_credentials,
        )
        try:
            for page in pages:
                with interrupt.writing():
                    cursor = self._store(page, cursor, walk, all_new)
                    if page.resume_before_id is not None and self._switch(page, cursor, walk, all_new):
                        return
        finally:
            close = getattr(pages, "close", None)  # a walk left for days stops its download thread
            if close is not None:
                close()

    def _switch(self, page: Page, cursor: Cursor, walk: _Walk, all_new: bool) -> bool:
        """Go on by days if this first backfill or full walk shows they pay (SWITCH_PAGES full pages, each
        spanning under DENSE_SPAN): in one transaction, the days still to walk (the oldest day reached from
        where the walk stopped, within it) and the cursor without its walk. The walk's newest and oldest
        go with that day, for the high water mark and the unlisted rows at the end."""
        if not self.may_switch or cursor.walk_floor is not None or not (cursor.walk_full or cursor.high_water is None):
            return False
        if walk.pages < SWITCH_PAGES or walk.full_pages < SWITCH_PAGES or walk.gap:
            return False
        if walk.newest is None or walk.oldest is None or walk.newest.created - walk.oldest.created >= walk.pages * DENSE_SPAN:
            return False
        if page.oldest is None or page.oldest.id != page.resume_before_id:
            return False  # the walk goes on from an item whose day is not known
        self.may_switch = False  # decided once a walk
        now = _utcnow()
        reached = page.oldest.created.date()
        older = [day for day in days.days(now) if day <= reached]
        start_partitions(self.conn, self.account, older, cursor.walk_full, now)
        position = DayPosition(page.resume_before_id, False, newer(walk.newest, cursor.walk_top), walk.oldest)
        save_partitions(self.conn, self.account, {reached: position}, now)
        save_cursor(self.conn, self.account, Cursor(high_water=cursor.high_water), now)
        self.conn.commit()
        log.info(
            "%d pages of %s to %s: many transcripts a day; walking the older days at once (partitions = auto)",
            walk.pages, _minute(walk.oldest.created), _minute(walk.newest.created),
        )
        self.switched, self.switched_all_new = True, all_new
        return True

    def _store(self, page: Page, cursor: Cursor, walk: _Walk, all_new: bool) -> Cursor:
        """One page: its rows, the cursor they imply and the run's counters, in one transaction."""
        now = _utcnow()
        result = upsert_page(self.conn, self.account, page.items, now, all_new=all_new)
        stats = replace(self.stats)
        stats.add(result)
        walk.add(page)
        # After a gap (a page that hid its transcripts) the walk's top starts again below it, so the high
        # water mark it leaves is below the gap: the next run walks that stretch again and finds them.
        cursor = replace(cursor, walk_top=None if page.gap else newer(cursor.walk_top, page.newest))
        floor = cursor.walk_floor.created if cursor.walk_floor is not None else now - LISTING_WINDOW
        stats.listed_back_to = _minute(walk.oldest.created) if walk.oldest else None
        stats.walking_down_to = _minute(floor)
        if page.resume_before_id is None:
            self._end_walk(cursor, page, walk, now, stats)
            cursor = Cursor(high_water=cursor.walk_top or cursor.high_water)
        else:
            cursor = replace(cursor, walk_before_id=page.resume_before_id)
        save_cursor(self.conn, self.account, cursor, now)
        self._commit(stats)
        _warn_bad_values(result)
        self._analyze_if_grown()
        return cursor

    def _analyze_if_grown(self) -> None:
        """On PostgreSQL, ANALYZE the table once this run has inserted ANALYZE_FIRST rows, then at every
        ANALYZE_GROWTH times as many: a page's lookups must not be planned as for an empty table."""
        if self.analyze_at is not None and self.stats.inserted >= self.analyze_at:
            self.conn.execute(text("ANALYZE transcripts"))
            self.conn.commit()
            self.analyze_at *= ANALYZE_GROWTH

    def _store_items(self, items: list[Item]) -> None:
        """Re-read list items outside the walk: their rows and the run's counters, in one transaction."""
        result = upsert_page(self.conn, self.account, items, _utcnow())
        stats = replace(self.stats)
        stats.add(result)
        self._commit(stats)
        _warn_bad_values(result)

    def _end_walk(self, cursor: Cursor, last_page: Page, walk: _Walk, now: datetime, stats: RunStats) -> None:
        high_water, oldest = cursor.high_water, walk.oldest
        if high_water is not None and not reaches(last_page.items, high_water, walk.plausible):
            # The listing ends above the stored high water mark: it left the 90-day window during an outage,
            # and transcripts created between it and the oldest still listed may have aged out unseen.
            listed_from = f"{oldest.created:%Y-%m-%d %H:%M:%S}" if oldest else "now"
            stats.warning = (
                f"the stored cursor (transcript {high_water.id}, created {high_water.created:%Y-%m-%d %H:%M:%S} UTC) "
                f"is no longer listed: transcripts created between then and {listed_from} UTC may have been missed "
                "while the job was down (the API lists only the last 90 days)"
            )
            log.warning("%s", stats.warning)
        if cursor.walk_full and last_page.reached_end and not walk.gap:
            # Only a walk that saw the whole listing, to its end, knows what is no longer listed.
            stats.unlisted += mark_unlisted(
                self.conn, self.account, oldest.created if oldest else None, walk.plausible.latest, walk.odd_ids, now
            )

    def _finish(self, started: float, outcome: str, error: str | None) -> None:
        _client_counters(self.stats, self.client)
        self.stats.seconds = time.monotonic() - started
        try:
            self.conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == self.stats.sync_run)
                .values(
                    outcome=outcome, finished_at=_utcnow(), error=error and escape(error),
                    warning=self.stats.warning and escape(self.stats.warning), **_counters(self.stats),
                )
            )
            # self.stats holds every page the writer connections committed: their rows are folded in.
            self.conn.execute(delete(sync_run_writers).where(sync_run_writers.c.sync_run == self.stats.sync_run))
            self.conn.commit()
        except Exception:
            if outcome == "succeeded":
                raise  # no other error to report: a run whose end cannot be recorded did not succeed
            # The database itself may be what failed; the original error is the one to report.
            log.debug("could not record the end of run %s", self.stats.sync_run, exc_info=True)


class _Walk:
    """What a walk has seen so far: its oldest plausible item, the listed items with an odd `created`, and
    whether a page hid its transcripts."""

    def __init__(self, plausible: Plausible) -> None:
        self.plausible = plausible
        self.oldest: Boundary | None = None
        self.newest: Boundary | None = None
        self.odd_ids: set[str] = set()
        self.gap = False  # a page hid its transcripts
        self.pages = self.full_pages = 0

    def add(self, page: Page) -> None:
        self.pages += 1
        self.full_pages += page.full
        self.newest = newer(self.newest, page.newest)
        if page.oldest is not None and (self.oldest is None or page.oldest.created < self.oldest.created):
            self.oldest = page.oldest
        self.odd_ids |= page.odd_ids
        self.gap = self.gap or page.gap


def _advance(position: DayPosition, page: days.DayPage) -> DayPosition:
    """A day's position once this page of it is stored."""
    oldest = position.oldest
    if page.oldest is not None and (oldest is None or (page.oldest.created, page.oldest.id) < (oldest.created, oldest.id)):
        oldest = page.oldest
    return DayPosition(page.resume_before_id, page.resume_before_id is None, newer(position.newest, page.newest), oldest)


def _days_walked(stats: RunStats, days: dict[date, DayPosition]) -> None:
    """Where a walk by days is: days done of days to do, and the oldest day a page has come from."""
    reached = [day for day, position in days.items() if position.done or position.before_id is not None or position.oldest is not None]
    stats.days_done, stats.days_total = sum(position.done for position in days.values()), len(days)
    stats.oldest_day = min(reached).isoformat() if reached else None


def _client_counters(stats: RunStats, client: ApiClient) -> None:
    stats.requests = client.requests_made
    stats.retries, stats.rate_limited = client.retries, client.rate_limited


def _minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


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


def _older(high_water: Boundary | None, pending: Boundary | None) -> Boundary | None:
    """The floor of a new walk: no high water means no floor (walk the whole listing); a straggler left to
    the walk lowers it."""
    if high_water is None or pending is None:
        return high_water
    return pending if pending.created < high_water.created else high_water


def _warn_bad_values(result: PageResult) -> None:
    for transcript_id, name, value in result.bad_values:
        if transcript_id is None:
            log.warning("skipped a list item without a usable id (missing, not text, or too long to be a key): %.200r", value)
        elif name == "status" and isinstance(value, str):
            log.warning("transcript %s: unknown status %.100r stored as received; re-checked until it is final", transcript_id, value)
        else:
            log.warning("transcript %s: unreadable %s %.100r stored as NULL (raw keeps it)", transcript_id, name, value)
    for transcript_id, reason in result.refused:
        log.warning("transcript %s: not stored, %.300s", transcript_id, reason)


def _start_run(conn: Connection, account: str) -> int:
    now = _utcnow()
    # We hold the account's lock, so any run still marked running died without finishing. The pages its
    # writer connections committed are added to its counters.
    # Through the (account, outcome, finished_at) index: an idle run does not read the account's history.
    dead = conn.execute(select(sync_runs.c.id).where(sync_runs.c.account == account, sync_runs.c.outcome == "running")).scalars().all()
    if dead:
        conn.execute(
            update(sync_runs)
            .where(sync_runs.c.id.in_(dead))
            .values(outcome="abandoned", finished_at=now, **{
                name: sync_runs.c[name] + func.coalesce(
                    select(func.sum(sync_run_writers.c[name])).where(sync_run_writers.c.sync_run == sync_runs.c.id).scalar_subquery(), 0
                )
                for name in _WRITER_COUNTERS
            })
        )
        conn.execute(delete(sync_run_writers).where(sync_run_writers.c.sync_run.in_(dead)))
    run_id = conn.execute(
        insert(sync_runs).values(
            account=account, started_at=now, outcome="running", pid=os.getpid(), hostname=socket.gethostname()
        ).returning(sync_runs.c.id)
    ).scalar_one()
    conn.commit()
    return run_id


def _counters(stats: RunStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in _COUNTERS}


_COUNTERS = (
    "pages", "requests", "inserted", "updated", "unchanged", "deleted", "unlisted", "hydrated", "hydrate_failures", "bad_values",
)
# Built once, run with every page: the counters come as parameters.
_COUNT = update(sync_runs).where(sync_runs.c.id == bindparam("run"))
# What a writer connection counts of the pages it commits (sync_run_writers).
_WRITER_COUNTERS = ("pages", "inserted", "updated", "unchanged", "deleted", "bad_values")


def _page_counters(page: PageResult) -> dict[str, int]:
    stats = RunStats()
    stats.add(page)
    return {name: getattr(stats, name) for name in _WRITER_COUNTERS}


def derive_from_bodies(
    engine: Engine, account: str, tables: tuple[str, ...], *, again: bool = False, refetch: bool = False
) -> tuple[int, int, int]:
    """Fill the derived tables from stored bodies, for transcripts hydrated before they existed (no API
    requests); return (transcripts derived, transcripts left without a stored body, transcripts whose body
    had a trouble: said as warnings the first time they are derived, only counted `again`). With `refetch`,
    queue those without a body for the next hydration instead; return (transcripts queued, 0, 0). Holds the
    account's run lock, like a sync."""
    with connect(engine) as conn:
        with interrupt.writing():
            migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                if refetch:
                    return derive.refetch_without_bodies(conn, account), 0, 0
                deriver = derive.Deriver(tables)
                try:
                    derived = derive.backfill(conn, account, deriver, _utcnow(), again)
                finally:
                    troubled = deriver.tell(say=not again)
                return derived, derive.without_bodies(conn, account), troubled
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
