"""One run: extract -> load, one transaction per page, the run record."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, insert, select, update

from etl import lock, migrate
from etl.client import ApiClient
from etl.db import connect
from etl.errors import EtlError, SyncAlreadyRunning
from etl.extract import Boundary, walk_back
from etl.load import Cursor, PageResult, oldest_pending, read_cursor, save_cursor, upsert_page
from etl.schema import sync_runs

log = logging.getLogger(__name__)

# The API lists the last 90 days; a pending transcript older than that can no longer be re-checked.
LISTING_WINDOW = timedelta(days=90)


@dataclass
class RunStats:
    pages: int = 0
    requests: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_values: int = 0
    seconds: float = 0.0

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.bad_values += len(page.bad_values)


ProgressCallback = Callable[[RunStats], None]


def run_sync(engine: Engine, client: ApiClient, account: str, on_page: ProgressCallback | None = None) -> RunStats:
    """Bring the account's transcripts up to date; raise SyncAlreadyRunning if another run holds its lock."""
    started = time.monotonic()
    with connect(engine) as conn:
        migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                stats = _recorded_run(conn, client, account, started, on_page or (lambda stats: None))
        except lock.LockBusy:
            raise SyncAlreadyRunning(_already_running(conn, account)) from None
    return stats


def _recorded_run(conn: Connection, client: ApiClient, account: str, started: float, on_page: ProgressCallback) -> RunStats:
    run_id = _start_run(conn, account)
    stats = RunStats()
    try:
        _walk_until_current(conn, client, account, run_id, stats, on_page)
    except BaseException as exc:
        conn.rollback()  # the page in flight; every committed page stays
        error = str(exc) if isinstance(exc, EtlError) else f"{type(exc).__name__}: {exc}"
        _finish_run(conn, run_id, stats, client, started, "failed", error)
        raise
    _finish_run(conn, run_id, stats, client, started, "succeeded", None)
    return stats


def _walk_until_current(
    conn: Connection, client: ApiClient, account: str, run_id: int, stats: RunStats, on_page: ProgressCallback
) -> None:
    """Finish an interrupted walk if there is one, then walk from the newest page down to the floor."""
    while True:
        cursor = read_cursor(conn, account)
        resuming = cursor.walking
        if not resuming:
            pending = oldest_pending(conn, _utcnow() - LISTING_WINDOW)
            cursor = Cursor(high_water=cursor.high_water, walk_floor=_older(cursor.high_water, pending))
        for page in walk_back(client, before_id=cursor.walk_before_id, floor=cursor.walk_floor):
            now = _utcnow()
            result = upsert_page(conn, page.items, now)
            if cursor.walk_top is None:
                cursor = replace(cursor, walk_top=page.newest)
            if page.resume_before_id is None:
                # Walk done: everything from its top down to the floor is stored.
                cursor = Cursor(high_water=cursor.walk_top or cursor.high_water)
            else:
                cursor = replace(cursor, walk_before_id=page.resume_before_id)
            save_cursor(conn, account, cursor, now)
            stats.add(result)
            stats.requests = client.requests_made
            conn.execute(update(sync_runs).where(sync_runs.c.id == run_id).values(**_counters(stats)))
            conn.commit()  # the page's rows, the cursor they imply and the run's counters, together
            _warn_bad_values(result)
            on_page(stats)
        if not resuming:
            return


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


def _finish_run(
    conn: Connection, run_id: int, stats: RunStats, client: ApiClient, started: float, outcome: str, error: str | None
) -> None:
    stats.requests = client.requests_made
    stats.seconds = time.monotonic() - started
    try:
        conn.execute(
            update(sync_runs)
            .where(sync_runs.c.id == run_id)
            .values(outcome=outcome, finished_at=_utcnow(), error=error, **_counters(stats))
        )
        conn.commit()
    except Exception:
        # The database itself may be what failed; the original error is the one to report.
        log.debug("could not record the end of run %s", run_id, exc_info=True)


def _counters(stats: RunStats) -> dict[str, int]:
    return {
        "pages": stats.pages,
        "requests": stats.requests,
        "inserted": stats.inserted,
        "updated": stats.updated,
        "unchanged": stats.unchanged,
        "bad_values": stats.bad_values,
    }


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
