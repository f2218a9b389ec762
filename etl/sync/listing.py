"""The listing phase of a run: finish an interrupted walk, then bring the table up to the newest transcript,
serially, by days, or with one `after_id` request, as the walk planner decides, re-checking stragglers
on the way. What each step read is stored by the page store before the next step."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import Connection

from etl.api.client import ApiClient
from etl.errors import CursorRejected
from etl.model.position import Boundary, Cursor
from etl.store import interrupt
from etl.store.positions import (
    end_partitions,
    partitions_refused,
    read_cursor,
    read_partitions,
    save_cursor,
    save_partitions,
    start_partitions,
)
from etl.store.reads import StoredRows, created_of, has_rows, is_pending
from etl.sync.by_days import ByDays
from etl.sync.pages import PageStore
from etl.sync.record import RunRecord
from etl.walk import days, planner, stragglers
from etl.walk.backwards import LISTING_WINDOW, Page, Plausible, newer_than, walk_back

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListingOptions:
    """How the listing is walked: `partitions` (auto, days or serial) for a first backfill or full walk,
    `partition_days` days at once, `partition_writers` connections storing them (PostgreSQL)."""

    partitions: str = "auto"
    partition_days: int = 32
    partition_writers: int = 1
    keep_presigned_credentials: bool = False


class Listing:
    """One account's listing phase on the run's connection."""

    def __init__(self, conn: Connection, client: ApiClient, account: str, record: RunRecord, options: ListingOptions) -> None:
        self.conn, self.client, self.account, self.record, self.options = conn, client, account, record, options
        self.mode = options.partitions
        # SQLite has one writer at a time: the run's own.
        self.writers = options.partition_writers if conn.dialect.name == "postgresql" else 1
        self.store = PageStore(conn, client, account, record)
        self.by_days = ByDays(
            conn, client, account, record, self.store, days_at_once=options.partition_days, writers=self.writers,
            keep_presigned_credentials=options.keep_presigned_credentials,
        )

    def until_current(self, full: bool) -> None:
        """Finish an interrupted walk if there is one, then walk from the newest page down to the floor.

        A first backfill or a full walk goes by day partitions (from the start with `partitions = "days"`;
        with "auto" once its first pages show they pay) unless the account's API has been found to misread
        `created_on`; the plain run that follows catches what arrived."""
        fell_back, full = self._resume_days(full)
        may_switch = planner.days_allowed(self.mode, fell_back, self._refused())
        cursor = read_cursor(self.conn, self.account)
        if cursor.walking:
            full = full and not cursor.walk_full
            may_switch = self._walk(cursor, may_switch)
            cursor = read_cursor(self.conn, self.account)
        if planner.starts_by_days(self.mode, full, cursor, planner.days_allowed(self.mode, fell_back, self._refused())):
            now = _utcnow()
            with interrupt.committed(self.conn):
                start_partitions(self.conn, self.account, days.days(now), full, now)
            if self.by_days.walk(*read_partitions(self.conn, self.account)):
                full = False
                cursor = read_cursor(self.conn, self.account)
        if full:
            self._walk(Cursor(high_water=cursor.high_water, walk_full=True), may_switch)
        else:
            self._plain(cursor.high_water, may_switch)

    def _resume_days(self, full: bool) -> tuple[bool, bool]:
        """Finish (or, told to walk serially, drop) a walk by days an earlier run left; return whether it fell
        back to a serial walk and whether a full walk is still owed."""
        positions, days_full = read_partitions(self.conn, self.account)
        if not positions:
            return False, full
        if self.mode == "serial":
            # Told to walk serially: the stored days are dropped, and the serial walk covers them.
            with interrupt.committed(self.conn):
                end_partitions(self.conn, self.account)
            return True, full or days_full
        finished = self.by_days.walk(positions, days_full)
        return not finished, planner.still_full(full, days_full, finished)

    def _refused(self) -> bool:
        return partitions_refused(self.conn, self.account) is not None

    def _plain(self, high_water: Boundary | None, may_switch: bool) -> None:
        """A plain run: pending transcripts below the high water mark are re-checked apart; only those that
        are better walked to lower the walk's floor. With none of them left to the walk and the mark itself
        final, one `after_id` request may bring all that is newer."""
        check = stragglers.recheck(
            StoredRows(self.conn, self.account), self.client, high_water, _utcnow() - LISTING_WINDOW,
            self.options.keep_presigned_credentials,
        )
        for items in check:
            self.store.items(items)
        deepest = min((s.boundary for s in check.walk_to), key=lambda b: (b.created, b.id), default=None)
        pending = high_water is not None and is_pending(self.conn, self.account, high_water.id)
        if planner.newer_suffices(high_water, deepest, pending) and self._newer_than(high_water):
            return
        self._walk(Cursor(high_water=high_water, walk_floor=planner.walk_floor(high_water, deepest)), may_switch)

    def _newer_than(self, high_water: Boundary | None) -> bool:
        """Store what is newer than the high water mark from one `after_id` request, if that is exact."""
        assert high_water is not None  # newer_suffices checked it
        now = _utcnow()
        items = newer_than(self.client, high_water, now=now, keep_presigned_credentials=self.options.keep_presigned_credentials)
        if items is None:
            return False
        self.store.newer(items, now)
        return True

    def _walk(self, cursor: Cursor, may_switch: bool) -> bool:
        """Walk from the cursor; a walk that went on by days finishes them, or, if they fell back, walks again
        serially from the newest page. Return whether a later walk of this run may still go on by days
        (once a walk has, none may)."""
        switched = self._serially(cursor, may_switch)
        if switched is None:
            return may_switch
        # Days have no one place in the listing to report: the progress says rows, not how far back.
        self.record.stats.listed_back_to = self.record.stats.walking_down_to = None
        if not self.by_days.walk(*read_partitions(self.conn, self.account), all_new=switched.all_new):
            self._serially(Cursor(high_water=read_cursor(self.conn, self.account).high_water, walk_full=cursor.walk_full), False)
        return False

    def _serially(self, cursor: Cursor, may_switch: bool) -> _Switched | None:
        """Walk serially from the cursor; return how it went on by days, if it did."""
        try:
            # Into an account with no rows yet, every page of the walk is new: each is older than the last.
            return self._pages(cursor, may_switch, planner.all_new(cursor.walk_full, has_rows(self.conn, self.account)))
        except CursorRejected as rejected:
            # The walk's position has left the listing (it aged out while the job was down, most likely).
            # Walk again from the newest page to the same floor, once: re-read pages are unchanged, so cheap.
            self.conn.rollback()
            log.warning("%s; walking again from the newest transcript down to the stored boundary", rejected)
            return self._pages(replace(cursor, walk_top=None, walk_before_id=None), may_switch, all_new=False)

    def _pages(self, cursor: Cursor, may_switch: bool, all_new: bool) -> _Switched | None:
        seen = planner.Seen(Plausible(_utcnow(), self.client.clock_ahead))
        if cursor.walk_before_id is not None:
            created = created_of(self.conn, self.account, cursor.walk_before_id)
            seen.oldest = Boundary(cursor.walk_before_id, created) if created else None
        switching = planner.may_switch(self.mode, cursor, may_switch)
        pages = walk_back(
            self.client, before_id=cursor.walk_before_id, floor=cursor.walk_floor, now=seen.plausible.now,
            keep_presigned_credentials=self.options.keep_presigned_credentials,
        )
        walk_started, cpu_started = time.monotonic(), time.process_time()
        try:
            for page in pages:
                with interrupt.writing():
                    started = time.monotonic()
                    cursor = self.store.page(page, cursor, seen, all_new)
                    seen.work_seconds += time.monotonic() - started
                    if (
                        switching and page.resume_before_id is not None
                        and self._days_pay(seen, page, time.monotonic() - walk_started, time.process_time() - cpu_started)
                    ):
                        self._switch(page, cursor, seen)
                        return _Switched(all_new)
                    # The planner decides once, on that page: the pages after it need not be weighed.
                    switching = switching and seen.pages < planner.SWITCH_PAGES
        finally:
            close = getattr(pages, "close", None)  # a walk left for days stops its download thread
            if close is not None:
                close()
        return None

    def _days_pay(self, seen: planner.Seen, page: Page, elapsed: float, cpu: float) -> bool:
        """Whether the rest of this walk is faster by days, from what its pages took so far: `elapsed` seconds
        in all, `cpu` seconds of this process's work (every thread's)."""
        costs = planner.Costs(
            round_trip=self.client.round_trip(), page=elapsed / seen.pages, work=max(cpu, seen.work_seconds) / seen.pages,
            rate=self.client.pacer.rate, days_at_once=self.options.partition_days,
        )
        return planner.switches_to_days(seen, page, costs, days.days(_utcnow()))

    def _switch(self, page: Page, cursor: Cursor, seen: planner.Seen) -> None:
        """Go on by days: in one transaction, the days still to walk and the cursor without its walk."""
        now = _utcnow()
        older, reached, position = planner.switched_days(days.days(now), page, seen, cursor)
        start_partitions(self.conn, self.account, older, cursor.walk_full, now)
        save_partitions(self.conn, self.account, {reached: position}, now)
        save_cursor(self.conn, self.account, Cursor(high_water=cursor.high_water), now)
        self.conn.commit()
        assert seen.oldest is not None and seen.newest is not None  # switches_to_days checked both
        log.info(
            "%d pages of %s to %s at %.0f ms a request: walking the older days at once is faster (partitions = auto)",
            seen.pages, planner.minute(seen.oldest.created), planner.minute(seen.newest.created),
            1000 * (self.client.round_trip() or 0),
        )

@dataclass(frozen=True)
class _Switched:
    """A serial walk went on by days; `all_new`: it was walking into an account with no rows."""

    all_new: bool


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
