"""The run record: each run's row in sync_runs (its outcome and counters) and the rows its writer
connections count their pages in (sync_run_writers) until the run folds them into its own."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from etl.errors import SyncAlreadyRunning
from etl.model.storable import escape
from etl.store import interrupt, lock, migrate
from etl.store.engine import connect
from etl.store.schema import sync_run_writers, sync_runs

# What a run counts in sync_runs, and what a writer connection counts of the pages it commits.
COUNTERS = (
    "pages", "requests", "inserted", "updated", "unchanged", "deleted", "unlisted", "hydrated", "hydrate_failures", "bad_values",
)
WRITER_COUNTERS = ("pages", "inserted", "updated", "unchanged", "deleted", "bad_values")

# Built once, run with every page: the counters come as parameters.
_COUNT = update(sync_runs).where(sync_runs.c.id == bindparam("run"))


def start(conn: Connection, account: str) -> int:
    """Open a run of the account (its caller holds the account's lock) and commit; return its id. Any run
    still marked running died without finishing: it is marked abandoned, with the pages its writer
    connections committed added to its counters."""
    now = _utcnow()
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
                for name in WRITER_COUNTERS
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


def count(conn: Connection, run: int, counters: dict[str, int]) -> None:
    """The run's counters as of the transaction in progress."""
    conn.execute(_COUNT, {"run": run, **counters})


def fold_writers(conn: Connection, run: int) -> None:
    """Drop the writers' rows: the run's own counters now hold what they counted."""
    conn.execute(delete(sync_run_writers).where(sync_run_writers.c.sync_run == run))


def add_writers(conn: Connection, run: int, writers: int) -> None:
    """One row of counters for each writer connection, numbered from 1, so writers do not queue on the run's row."""
    conn.execute(
        insert(sync_run_writers),
        [{"sync_run": run, "writer": writer, **dict.fromkeys(WRITER_COUNTERS, 0)} for writer in range(1, writers + 1)],
    )


def writer_counted(conn: Connection, run: int, writer: int, counters: dict[str, int]) -> None:
    """Add what one page a writer stores brings to that writer's counters."""
    mine = (sync_run_writers.c.sync_run == run) & (sync_run_writers.c.writer == writer)
    conn.execute(update(sync_run_writers).where(mine).values(**{name: sync_run_writers.c[name] + counters[name] for name in WRITER_COUNTERS}))


def finish(conn: Connection, run: int, outcome: str, error: str | None, warning: str | None, counters: dict[str, int]) -> None:
    """Close the run with its outcome, what went wrong and its final counters, the writers' rows folded in; commit."""
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.id == run)
        .values(outcome=outcome, finished_at=_utcnow(), error=error and escape(error), warning=warning and escape(warning), **counters)
    )
    fold_writers(conn, run)
    conn.commit()


def already_running(conn: Connection, account: str) -> str:
    """The line for a run that found another run of the account holding its lock."""
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


@contextmanager
def locked(engine: Engine, account: str) -> Iterator[Connection]:
    """A connection to an up-to-date schema that holds the account's run lock while the block runs; raise
    SyncAlreadyRunning, saying since when and where, if another run holds it."""
    with connect(engine) as conn:
        with interrupt.writing():
            migrate.ensure_schema(conn)
        try:
            with lock.hold(conn, f"sync-{account}", wait=False):
                yield conn
        except lock.LockBusy:
            raise SyncAlreadyRunning(already_running(conn, account)) from None
