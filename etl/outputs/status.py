"""Where the sync stands: cursor, pending transcripts, counts by status, the last runs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from etl.outputs.progress import duration
from etl.outputs.report import plural
from etl.store import migrate
from etl.store.engine import masked
from etl.store.positions import read_cursor
from etl.store.schema import NEEDS_DETAILS, NOT_FINAL, sync_run_writers, sync_runs, transcripts


def gather(conn: Connection, accounts: list[str], last_runs: int = 5) -> dict[str, Any]:
    """Everything `aai-etl status` shows, as plain data (also its --json output)."""
    current, head = migrate.current_revision(conn), migrate.head_revision()
    report: dict[str, Any] = {"database": masked(conn.engine.url), "schema": current, "schema_head": head}
    if current == head:
        report["accounts"] = [_account(conn, account, last_runs) for account in accounts]
    else:  # an older schema lacks columns the figures need: render() says what to run
        migrate.refuse_unknown(current)  # a newer one: the error says to upgrade aai-etl
    return report


def health(conn: Connection, accounts: list[str]) -> dict[str, dict[str, Any]]:
    """What the metrics publish of each account; empty when the schema is not at the code's head.

    Every figure is read through an index over only the rows it counts (etl/store/schema.py), so the metrics
    of an idle run cost the same at any table size: unlike gather(), nothing here counts the whole table."""
    current = migrate.current_revision(conn)
    if current != migrate.head_revision():
        migrate.refuse_unknown(current)  # a newer schema: the error says to upgrade aai-etl
        return {}
    return {account: _health(conn, account) for account in accounts}


def _health(conn: Connection, account: str) -> dict[str, Any]:
    mine = transcripts.c.account == account
    # Pending as the sync re-checks it (etl.store.schema.NOT_FINAL): an unknown status is still to be settled.
    pending, oldest_pending = conn.execute(select(func.count(), func.min(transcripts.c.created)).where(mine, NOT_FINAL)).one()
    waiting, failing = conn.execute(
        select(
            func.count().filter(transcripts.c.hydrate_attempts == 0), func.count().filter(transcripts.c.hydrate_attempts > 0)
        ).where(mine, NEEDS_DETAILS)
    ).one()
    last_success = conn.execute(
        select(func.max(sync_runs.c.finished_at)).where(sync_runs.c.account == account, sync_runs.c.outcome == "succeeded")
    ).scalar()
    return {
        "pending": pending,
        "oldest_pending_created": oldest_pending,
        "waiting": waiting,
        "failing": failing,
        "last_success": _iso(last_success),
    }


def _account(conn: Connection, account: str, last_runs: int) -> dict[str, Any]:
    cursor = read_cursor(conn, account)
    figures = _health(conn, account)
    mine = transcripts.c.account == account
    by_status: dict[Any, int] = dict(conn.execute(select(transcripts.c.status, func.count()).where(mine).group_by(transcripts.c.status)).all())
    deleted, unlisted, hydrated = conn.execute(
        select(func.count(transcripts.c.deleted_at), func.count(transcripts.c.unlisted_at), func.count(transcripts.c.hydrated_at)).where(mine)
    ).one()
    last_failure = conn.execute(
        select(transcripts.c.id, transcripts.c.hydrate_attempts, transcripts.c.hydrate_after, transcripts.c.hydrate_error)
        .where(mine, NEEDS_DETAILS, transcripts.c.hydrate_attempts > 0)
        .order_by(transcripts.c.hydrate_after.desc())
        .limit(1)
    ).mappings().first()
    runs = _with_writers(conn, [dict(run) for run in conn.execute(
        select(sync_runs).where(sync_runs.c.account == account).order_by(sync_runs.c.id.desc()).limit(last_runs)
    ).mappings()])
    last_finished = conn.execute(
        select(sync_runs.c.id, sync_runs.c.outcome, sync_runs.c.finished_at, sync_runs.c.error)
        .where(sync_runs.c.account == account, sync_runs.c.outcome != "running")
        .order_by(sync_runs.c.id.desc())
        .limit(1)
    ).mappings().first()
    return {
        "account": account,
        "high_water": _boundary(cursor.high_water),
        "interrupted_walk": cursor.walking
        and {"before_id": cursor.walk_before_id, "floor": _boundary(cursor.walk_floor), "full": cursor.walk_full},
        "transcripts": sum(by_status.values()),
        "by_status": {str(status): count for status, count in sorted(by_status.items(), key=lambda kv: str(kv[0]))},
        "pending": figures["pending"],
        "oldest_pending_created": _iso(figures["oldest_pending_created"]),
        "deleted": deleted,
        "unlisted": unlisted,
        "details": {
            "hydrated": hydrated,
            "waiting": figures["waiting"],
            "failing": figures["failing"],
            "last_failure": last_failure and {key: _iso(value) for key, value in last_failure.items()},
        },
        "last_runs": [{key: _iso(value) for key, value in run.items()} for run in runs],
        "last_success": figures["last_success"],
        "last_finished": last_finished and {key: _iso(value) for key, value in last_finished.items()},
    }


def _with_writers(conn: Connection, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run still marked running counts the pages its writer connections committed, which reach its row
    in sync_runs only when its walk by days ends (or the next run finds it abandoned)."""
    running = [run["id"] for run in runs if run["outcome"] == "running"]
    if not running:
        return runs
    names = [column.name for column in sync_run_writers.columns if column.name not in ("sync_run", "writer")]
    sums = {
        row[0]: row[1:]
        for row in conn.execute(
            select(sync_run_writers.c.sync_run, *(func.sum(sync_run_writers.c[name]) for name in names))
            .where(sync_run_writers.c.sync_run.in_(running)).group_by(sync_run_writers.c.sync_run)
        )
    }
    for run in runs:
        for name, value in zip(names, sums.get(run["id"], ()), strict=False):
            run[name] += int(value)
    return runs


def render(report: dict[str, Any]) -> str:
    lines = [f"database     {report['database']}"]
    if report["schema"] is None:
        lines.append("schema       none yet: `aai-etl sync` or `aai-etl db upgrade` creates it")
        return "\n".join(lines)
    if report["schema"] != report["schema_head"]:
        lines.append(f"schema       {report['schema']}, not {report['schema_head']}: `aai-etl sync` or `aai-etl db upgrade` brings it up to date")
        return "\n".join(lines)
    lines.append(f"schema       {report['schema']} (up to date)")
    for account in report["accounts"]:
        lines.extend(["", *_render_account(account)])
    return "\n".join(lines)


def _render_account(report: dict[str, Any]) -> list[str]:
    lines = [f"account      {report['account']}"]
    high_water = report["high_water"]
    lines.append(f"high water   {high_water['id']} (created {_when(high_water['created'])})" if high_water else "high water   none: no sync has finished yet")
    walk = report["interrupted_walk"]
    if walk:
        floor = walk["floor"]["id"] if walk["floor"] else "the end of the listing"
        kind = "full walk" if walk["full"] else "walk"
        lines.append(f"resuming     an interrupted {kind}, from before {walk['before_id']} down to {floor}")
    pending_since = f", oldest created {_when(report['oldest_pending_created'])}" if report["pending"] else ""
    lines.append(f"pending      {report['pending']:,} not yet completed or error{pending_since}")
    counts = ", ".join(f"{count:,} {status}" for status, count in report["by_status"].items())
    lines.append(f"transcripts  {report['transcripts']:,}" + (f" ({counts})" if counts else ""))
    lines.append(f"             {report['deleted']:,} deleted by the user, {report['unlisted']:,} no longer listed")
    details = report["details"]
    lines.append(
        f"details      {details['hydrated']:,} fetched, {details['waiting']:,} waiting, {details['failing']:,} failing"
    )
    failure = details["last_failure"]
    if failure:
        lines.append(
            f"             e.g. {failure['id']}: {failure['hydrate_error']} "
            f"({plural(failure['hydrate_attempts'], 'attempt')}; next not before {_when(failure['hydrate_after'])})"
        )
    lines.append("last runs" if report["last_runs"] else "last runs    none")
    for run in report["last_runs"]:
        notes = "; ".join(_first_line(note) for note in (run["error"], run["warning"]) if note)
        lines.append(
            f"  #{run['id']} {_when(run['started_at'])} {run['outcome']}: {run['inserted']:,} new, {run['updated']:,} updated, "
            f"{run['unchanged']:,} unchanged, {run['deleted']:,} deleted, {run['hydrated']:,} details, "
            f"{plural(run['bad_values'], 'bad value')}, {plural(run['pages'], 'page')}, {plural(run['requests'], 'request')}"
            + (f"; {notes}" if notes else "")
        )
    return lines


def _boundary(boundary) -> dict[str, str] | None:
    return {"id": boundary.id, "created": _iso(boundary.created)} if boundary else None


def _iso(value: Any) -> Any:
    """Timestamps in ISO 8601, as `aai-etl export` writes them."""
    return value.isoformat() if isinstance(value, datetime) else value


def _when(iso: str | None) -> str | None:
    """An ISO timestamp for people: to the second, UTC."""
    return iso and f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S}"


def parse_duration(text: str) -> timedelta:
    """'90m', '2h', '1d', '30s', or several run together ('1h30m'): for `status --max-age`."""
    parts = _DURATION_PART.findall(text.strip().lower())
    if not parts or "".join(number + unit for number, unit in parts) != text.strip().lower():
        raise ValueError(f"'{text}' is not a duration: use a number with s, m, h or d, like 90m, 2h or 1d")
    return sum((timedelta(seconds=int(number) * _UNIT_SECONDS[unit]) for number, unit in parts), timedelta())


_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _first_line(note: str) -> str:
    """A stored note as one line: aai-etl 0.1.0 stored a database error with SQLAlchemy's statement and link
    on lines of their own, and the probe's line and each run's line must stay one line."""
    return note.strip().split("\n", 1)[0]


def problems(report: dict[str, Any], max_age: timedelta, now: datetime) -> list[str]:
    """Why a probe should fail: a last run that failed, or no success within max_age (each account)."""
    if report["schema"] != report["schema_head"]:
        return [f"the database schema is at {report['schema'] or 'nothing yet'}, not {report['schema_head']}: no sync has run with this version"]
    found = []
    for account in report["accounts"]:
        name, last, success = account["account"], account["last_finished"], account["last_success"]
        if last and last["outcome"] != "succeeded":
            why = f": {_first_line(last['error'])}" if last["error"] else ""
            found.append(f"account '{name}': the last run (#{last['id']}, {last['finished_at']}) {last['outcome']}{why}")
        if success is None:
            found.append(f"account '{name}': no sync has succeeded yet")
        elif now - datetime.fromisoformat(success) > max_age:
            ago = duration((now - datetime.fromisoformat(success)).total_seconds())
            found.append(f"account '{name}': the last success was {ago} ago ({success}), more than {duration(max_age.total_seconds())}")
    return found
