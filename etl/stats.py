"""Daily analytics from the views the migrations create: counts, audio hours, error rate, turnaround."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, text

from etl.items import FINAL_STATUSES, PENDING_STATUSES
from etl.report import text_table

COLUMNS = (
    "day", "account", "transcripts", "completed", "error", "pending",
    "error_rate", "audio_hours", "median_seconds", "p95_seconds",
)
FORMATS = ("table", "json", "csv")


def daily(conn: Connection, since: date, until: date, accounts: list[str]) -> list[dict[str, Any]]:
    """One row per account and UTC day of `created`, from `since` to `until` inclusive, newest first."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def merge(sql: str, fill) -> None:
        bounds = {"since": since.isoformat(), "until": until.isoformat(), "accounts": tuple(accounts)}
        statement = text(f"{sql} WHERE day >= :since AND day <= :until AND account IN :accounts").bindparams(
            bindparam("accounts", expanding=True)
        )
        for record in conn.execute(statement, bounds).mappings():
            key = (str(record["day"]), record["account"])
            fill(rows.setdefault(key, _empty(*key)), record)

    merge("SELECT day, account, status, transcripts FROM daily_status_counts", _add_status)
    merge("SELECT day, account, error_rate FROM daily_error_rate", lambda row, r: row.update(error_rate=_float(r["error_rate"])))
    merge("SELECT day, account, audio_hours FROM daily_audio_hours", lambda row, r: row.update(audio_hours=_float(r["audio_hours"])))
    merge(
        "SELECT day, account, median_seconds, p95_seconds FROM daily_turnaround",
        lambda row, r: row.update(median_seconds=_float(r["median_seconds"]), p95_seconds=_float(r["p95_seconds"])),
    )
    return [rows[key] for key in sorted(rows, reverse=True)]


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if not rows:
        return "no transcripts created in that period"
    return text_table(COLUMNS, [[_cell(row[name], name) for name in COLUMNS] for row in rows], right_from=2)


def _empty(day: str, account: str) -> dict[str, Any]:
    return {"day": day, "account": account, "transcripts": 0, "completed": 0, "error": 0, "pending": 0,
            "error_rate": None, "audio_hours": None, "median_seconds": None, "p95_seconds": None}


def _add_status(row: dict[str, Any], record) -> None:
    count = record["transcripts"]
    row["transcripts"] += count
    status = record["status"]
    if status in FINAL_STATUSES:
        row[status] += count
    elif status in PENDING_STATUSES:
        row["pending"] += count


def _cell(value: Any, name: str) -> str:
    if value is None:
        return "-"
    if name == "error_rate":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)

