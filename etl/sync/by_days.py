"""A walk by UTC days, from the positions stored for it: the days fetched at once, each page stored with
its day's position, and at the end the high water mark; or, when the days cannot be trusted, a fall
back that the caller follows with a serial walk."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

from sqlalchemy import Connection

from etl.api.client import ApiClient
from etl.model.position import DayPosition
from etl.store.positions import end_partitions, refuse_partitions
from etl.store.reads import created_of, has_rows
from etl.sync.pages import DaysProgress, PageStore
from etl.sync.record import RunRecord
from etl.walk import days, planner

log = logging.getLogger(__name__)


class ByDays:
    """Walks one account's listing by days on the run's connection (and, on PostgreSQL, writer connections)."""

    def __init__(
        self, conn: Connection, client: ApiClient, account: str, record: RunRecord, store: PageStore, *, days_at_once: int,
        writers: int, keep_presigned_credentials: bool,
    ) -> None:
        self.conn, self.client, self.account, self.record, self.store = conn, client, account, record, store
        self.days_at_once, self.writers, self.keep_presigned_credentials = days_at_once, writers, keep_presigned_credentials

    def walk(self, positions: dict[date, DayPosition], full: bool, all_new: bool | None = None) -> bool:
        """Walk the days still to do, each page committed with its day's position; at the end, in one
        transaction, the high water mark and, for a full walk, what is no longer listed. False when the days
        fell back (`created_on` proved misread, or a malformed page): the caller walks serially (the rows
        stored so far are list items as listed, so they stay). `all_new`: no page holds a stored id (from a
        serial walk into an empty account that went on by days, disjoint from what it stored)."""
        now = _utcnow()
        if all_new is None:
            all_new = planner.all_new(full, has_rows(self.conn, self.account))
        todo = {day: position.before_id for day, position in positions.items() if not position.done}
        progress = DaysProgress(positions, self.record.stats)
        # When each stored position was created: a page of its day above it shows the cursor ignored.
        created = {cursor: created_of(self.conn, self.account, cursor) for cursor in todo.values() if cursor is not None}
        pages = days.walk_days(
            self.client, todo, at_once=self._at_once, now=now,
            keep_presigned_credentials=self.keep_presigned_credentials,
            created={cursor: moment for cursor, moment in created.items() if moment is not None},
        )
        try:
            if self.writers > 1:
                self.store.days_at_once(pages, positions, all_new, self.writers, progress)
            else:
                for batch in pages:
                    self.store.day_batch(batch, positions, all_new, progress)
        except days.Unpartitionable as refused:
            pages.close()
            self.conn.rollback()
            self._fall_back(refused, now)
            return False
        self.store.end_days(positions, full)
        return True

    def _at_once(self) -> int:
        return planner.days_in_flight(self.client.pacer.rate, self.client.round_trip(), self.days_at_once)

    def _fall_back(self, refused: days.Unpartitionable, now: datetime) -> None:
        """Drop the days; when `created_on` is at fault, say so once and remember it for the account."""
        if refused.misread:
            reason = f"{refused}: walked the listing serially instead, as every later run of this account will"
            log.warning("%s", reason)
            self.record.stats.warn(reason)
        else:
            log.warning("%s: walked the listing serially instead", refused)
        with self.record.transaction(fold=True):
            end_partitions(self.conn, self.account)
            if refused.misread:
                refuse_partitions(self.conn, self.account, str(refused), now)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
