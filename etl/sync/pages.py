"""The storing of what the walk read: each page with the position it brings the walk to and the run's
counters, in one transaction. A serial page moves the cursor; a batch of day pages moves their days;
a walk by days on several writer connections stores each page on its day's writer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timezone

from sqlalchemy import Connection

from etl.api.client import ApiClient
from etl.model.items import Item
from etl.model.position import Cursor, DayPosition, newer
from etl.store import interrupt, runs
from etl.store.analyze import Analyzer
from etl.store.positions import end_partitions, read_cursor, save_cursor, save_partitions
from etl.store.writers import WriterPool
from etl.store.writes import PageResult, mark_unlisted, upsert_page
from etl.sync.record import RunRecord, RunStats, writer_counters
from etl.walk import planner
from etl.walk.backwards import LISTING_WINDOW, Page, Plausible, reaches
from etl.walk.days import DayPage

log = logging.getLogger(__name__)


class PageStore:
    """Stores one account's pages on the run's connection, each commit counted by the run's record."""

    def __init__(self, conn: Connection, client: ApiClient, account: str, record: RunRecord) -> None:
        self.conn, self.client, self.account, self.record = conn, client, account, record
        self.analyzer = Analyzer(conn)

    def page(self, page: Page, cursor: Cursor, seen: planner.Seen, all_new: bool) -> Cursor:
        """One page of a serial walk: its rows, the cursor it brings the walk to and the run's counters."""
        now = _utcnow()
        with self.record.transaction() as stats:
            result = upsert_page(self.conn, self.account, page.items, now, all_new=all_new)
            stats.add(result)
            seen.add(page)
            floor = cursor.walk_floor.created if cursor.walk_floor is not None else now - LISTING_WINDOW
            stats.listed_back_to = planner.minute(seen.oldest.created) if seen.oldest else None
            stats.walking_down_to = planner.minute(floor)
            if page.resume_before_id is None:
                self._end_walk(cursor, page, seen, now, stats)
            cursor = planner.after_page(cursor, page)
            save_cursor(self.conn, self.account, cursor, now)
        self._stored(result)
        return cursor

    def _end_walk(self, cursor: Cursor, last_page: Page, seen: planner.Seen, now: datetime, stats: RunStats) -> None:
        high_water = cursor.high_water
        reached = high_water is not None and reaches(last_page.items, high_water, seen.plausible)
        warning = planner.lost_listing(high_water, reached, seen.oldest)
        if warning is not None:
            stats.warning = warning
            log.warning("%s", warning)
        if planner.knows_unlisted(cursor, last_page, seen):
            stats.unlisted += mark_unlisted(
                self.conn, self.account, seen.oldest.created if seen.oldest else None, seen.plausible.latest, seen.odd_ids, now
            )

    def items(self, items: list[Item]) -> None:
        """Re-read list items outside the walk: their rows and the run's counters."""
        with self.record.transaction() as stats:
            result = upsert_page(self.conn, self.account, items, _utcnow())
            stats.add(result)
        _warn_bad_values(result)

    def newer(self, items: list[Item], now: datetime) -> None:
        """What one `after_id` request found newer than the high water mark: the items, and the mark moved to
        the newest of them."""
        with self.record.transaction() as stats:
            result = upsert_page(self.conn, self.account, items, now)
            stats.add(result)
            newest = Plausible(now, self.client.clock_ahead).boundaries(items)
            if newest:
                save_cursor(self.conn, self.account, Cursor(high_water=newest[0]), now)
        _warn_bad_values(result)

    def day_batch(self, batch: list[DayPage], positions: dict[date, DayPosition], all_new: bool, days: DaysProgress) -> None:
        """Pages of one or more days, as they arrived: their rows (one upsert), their days' positions and the
        run's counters. `positions` is brought up to date once it has committed."""
        now = _utcnow()
        with self.record.transaction() as stats:
            result = upsert_page(self.conn, self.account, [item for page in batch for item in page.items], now, all_new=all_new)
            stats.add(result, pages=len(batch))
            moved: dict[date, DayPosition] = {}
            for page in batch:
                moved[page.day] = planner.advance(moved.get(page.day, positions[page.day]), page)
            save_partitions(self.conn, self.account, moved, now)
            days.update(moved, stats)
        positions.update(moved)
        self._stored(result)

    def days_at_once(
        self, pages: Iterator[list[DayPage]], positions: dict[date, DayPosition], all_new: bool, writers: int, days: DaysProgress,
    ) -> None:
        """Store the pages on `writers` connections at once: each day's pages on one of them, in order, each
        page one transaction with its day's position and its writer's counters (rows of their own in
        sync_run_writers, so that writers do not queue on the run's row)."""
        run = self.record.stats.sync_run
        with interrupt.committed(self.conn):
            runs.add_writers(self.conn, run, writers)

        def write(conn: Connection, writer: int, job: tuple[DayPage, DayPosition]) -> tuple[PageResult, date, DayPosition]:
            """On a writer's connection, in its thread: one page, its day's position and the writer's counters."""
            page, position = job
            now = _utcnow()
            result = upsert_page(conn, self.account, page.items, now, all_new=all_new)
            save_partitions(conn, self.account, {page.day: position}, now)
            runs.writer_counted(conn, run, writer, writer_counters(result))
            conn.commit()
            return result, page.day, position

        def written(done: tuple[PageResult, date, DayPosition]) -> None:
            """In the run's thread, for each page a writer committed: the run's counters, then the progress."""
            result, day, position = done
            stats = replace(self.record.stats)
            stats.add(result)
            days.update({day: position}, stats)
            self.record.counted(stats)
            self._stored(result)

        pool = WriterPool(self.conn.engine, writers, write, written)
        finished = False
        try:
            for batch in pages:
                for page in batch:
                    positions[page.day] = planner.advance(positions[page.day], page)
                    pool.submit(page.day.toordinal(), (page, positions[page.day]))
            finished = True
        finally:
            with interrupt.writing():
                error = pool.close(finish=finished)  # every page a writer committed is counted in the record
            if error is not None and finished:
                raise error
            if error is not None:
                log.debug("a writer failed too, while the run stopped", exc_info=error)

    def end_days(self, positions: dict[date, DayPosition], full: bool) -> None:
        """A walk by days is done: the high water mark (the newest transcript it listed), for a full walk what
        is no longer listed, the days dropped and the writers' counters folded, in one transaction."""
        now = _utcnow()
        newest, oldest = planner.days_span(positions)
        with self.record.transaction(fold=True) as stats:
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

    def _stored(self, result: PageResult) -> None:
        _warn_bad_values(result)
        self.analyzer.after_inserts(self.record.stats.inserted)


class DaysProgress:
    """A walk by days as committed, for the progress: days done of days to do, and the oldest day reached."""

    def __init__(self, positions: dict[date, DayPosition], stats: RunStats) -> None:
        self.days = dict(positions)
        self.update({}, stats)

    def update(self, moved: dict[date, DayPosition], stats: RunStats) -> None:
        self.days.update(moved)
        done = planner.days_done(self.days)
        stats.days_done, stats.days_total, stats.oldest_day = done.done, done.total, done.oldest_day


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


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
