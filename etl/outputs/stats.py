"""Daily analytics from the views the migrations create: counts, audio hours, error rate, turnaround; and,
from the audio intelligence tables, sentiment shares, talk time per speaker, entity types and topics."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from etl.model.items import FINAL_STATUSES
from etl.outputs.report import text_table

if TYPE_CHECKING:
    from sqlalchemy import Connection

COLUMNS = (
    "day", "account", "transcripts", "completed", "error", "pending",
    "error_rate", "audio_hours", "median_seconds", "p95_seconds",
)
FORMATS = ("table", "json", "csv")
# --view name -> (view, its columns, the columns ranking rows within a day, highest first).
VIEWS = {
    "sentiment": ("daily_sentiment", ("day", "account", "sentiment", "results", "share"), ("results",)),
    "talk-time": (
        "daily_talk_time", ("day", "account", "speaker", "transcripts", "utterances", "talk_seconds", "talk_ratio"),
        ("talk_seconds",),
    ),
    "entity-types": ("daily_entity_types", ("day", "account", "entity_type", "mentions", "transcripts"), ("mentions",)),
    "topics": ("daily_topics", ("day", "account", "label", "transcripts"), ("transcripts",)),
}
_FRACTIONS = ("error_rate", "share", "talk_ratio")


def daily(conn: Connection, since: date, until: date, accounts: list[str]) -> list[dict[str, Any]]:
    """One row per account and UTC day of `created`, from `since` to `until` inclusive, newest first."""
    # Imported here, as in view(): the CLI reads FORMATS and VIEWS for every command's start-up.
    from sqlalchemy import bindparam, text

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


def view(conn: Connection, name: str, since: date, until: date, accounts: list[str]) -> list[dict[str, Any]]:
    """The rows of one audio intelligence view (a key of VIEWS) from `since` to `until`: newest day first,
    then by account, then the largest first. Sorted here, not in SQL, where the databases order NULLs apart."""
    from sqlalchemy import bindparam, text

    source, columns, rank = VIEWS[name]
    statement = text(
        f"SELECT {', '.join(columns)} FROM {source} WHERE day >= :since AND day <= :until AND account IN :accounts"
    ).bindparams(bindparam("accounts", expanding=True))
    bounds = {"since": since.isoformat(), "until": until.isoformat(), "accounts": tuple(accounts)}
    rows = [
        {column: _plain(record[column]) for column in columns}
        for record in conn.execute(statement, bounds).mappings()
    ]
    label = columns[2]
    return sorted(
        sorted(rows, key=lambda row: (row["account"], tuple(-(row[c] or 0) for c in rank), row[label] or "")),
        key=lambda row: row["day"], reverse=True,
    )


def render(rows: list[dict[str, Any]], fmt: str, columns: tuple[str, ...] = COLUMNS) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if not rows:
        return "no transcripts created in that period" if columns == COLUMNS else "no rows in that period"
    return text_table(columns, [[_cell(row[name], name) for name in columns] for row in rows], right_from=3 if columns != COLUMNS else 2)


def _empty(day: str, account: str) -> dict[str, Any]:
    return {"day": day, "account": account, "transcripts": 0, "completed": 0, "error": 0, "pending": 0,
            "error_rate": None, "audio_hours": None, "median_seconds": None, "p95_seconds": None}


def _add_status(row: dict[str, Any], record) -> None:
    count = record["transcripts"]
    row["transcripts"] += count
    status = record["status"]
    if status in FINAL_STATUSES:
        row[status] += count
    else:  # pending as the sync re-checks it: queued, processing, or a status unknown or unreadable
        row["pending"] += count


def _cell(value: Any, name: str) -> str:
    if value is None:
        return "-"
    if name in _FRACTIONS:
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plain(value: Any) -> Any:
    """A view's value as JSON can hold it, the same from both databases: days as text, numbers as int or float."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)

