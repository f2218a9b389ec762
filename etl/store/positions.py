"""Where the walk has got to, as stored: the cursor (the high water mark and an interrupted walk) and the
positions of a walk by days. The caller owns the transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from etl.model.position import Boundary, Cursor, DayPosition
from etl.model.storable import escape, unescape
from etl.store.schema import sync_cursors, sync_partitions


def read_cursor(conn: Connection, account: str) -> Cursor:
    row = conn.execute(select(sync_cursors).where(sync_cursors.c.account == account)).mappings().first()
    if row is None:
        return Cursor()
    return Cursor(
        high_water=_boundary(row, "high_water"),
        walk_top=_boundary(row, "walk_top"),
        walk_before_id=None if row["walk_before_id"] is None else unescape(row["walk_before_id"]),
        walk_floor=_boundary(row, "walk_floor"),
        walk_full=row["walk_full"],
    )


def save_cursor(conn: Connection, account: str, cursor: Cursor, now: datetime) -> None:
    values: dict[str, Any] = {
        # walk_before_id is the API's own id, sent back as it came; the boundaries are stored ids already.
        "account": account, "walk_before_id": cursor.walk_before_id and escape(cursor.walk_before_id),
        "walk_full": cursor.walk_full, "updated_at": now,
    }
    for prefix in ("high_water", "walk_top", "walk_floor"):
        boundary: Boundary | None = getattr(cursor, prefix)
        values[f"{prefix}_id"] = boundary.id if boundary else None
        values[f"{prefix}_created"] = boundary.created if boundary else None
    conn.execute(_cursor_upsert(conn.dialect.name), values)


_CURSOR_COLUMNS = (
    "walk_before_id", "walk_full", "updated_at", "high_water_id", "high_water_created", "walk_top_id", "walk_top_created",
    "walk_floor_id", "walk_floor_created",
)
_cursor_upserts: dict[str, Any] = {}


def _cursor_upsert(dialect: str) -> Any:
    """The cursor's upsert, built once: it runs with every page, and building it cost more than running it."""
    if dialect not in _cursor_upserts:
        statement = _upsert_insert(dialect)(sync_cursors)
        _cursor_upserts[dialect] = statement.on_conflict_do_update(
            index_elements=[sync_cursors.c.account], set_={name: statement.excluded[name] for name in _CURSOR_COLUMNS}
        )
    return _cursor_upserts[dialect]


def _upsert_insert(dialect: str) -> Any:
    """The dialect's own insert(), which has ON CONFLICT: imported when used, so that a run on SQLite never
    loads the PostgreSQL dialect (a tenth of an idle run's start-up)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def read_partitions(conn: Connection, account: str) -> tuple[dict[date, DayPosition], bool]:
    """The account's partitioned walk in progress (no days: none) and whether it is a full one."""
    rows = conn.execute(select(sync_partitions).where(sync_partitions.c.account == account)).mappings().all()
    positions = {
        row["day"]: DayPosition(
            None if row["before_id"] is None else unescape(row["before_id"]), row["done"],
            _boundary(row, "newest"), _boundary(row, "oldest"),
        )
        for row in rows
    }
    return positions, any(row["walk_full"] for row in rows)


def start_partitions(conn: Connection, account: str, days: list[date], walk_full: bool, now: datetime) -> None:
    conn.execute(
        insert(sync_partitions),
        [{"account": account, "day": day, "done": False, "walk_full": walk_full, "updated_at": now} for day in days],
    )


def save_partitions(conn: Connection, account: str, positions: dict[date, DayPosition], now: datetime) -> None:
    """Where these days have got to: one statement for all of them (compiled once, run as executemany)."""
    rows: list[dict[str, Any]] = []
    for day, position in positions.items():
        row: dict[str, Any] = {
            "b_account": account, "b_day": day, "before_id": position.before_id and escape(position.before_id),
            "done": position.done, "updated_at": now,
        }
        for prefix in ("newest", "oldest"):
            boundary: Boundary | None = getattr(position, prefix)
            row[f"{prefix}_id"] = boundary.id if boundary else None
            row[f"{prefix}_created"] = boundary.created if boundary else None
        rows.append(row)
    if rows:
        conn.execute(_SAVE_PARTITION, rows)


_SAVE_PARTITION = update(sync_partitions).where(
    sync_partitions.c.account == bindparam("b_account"), sync_partitions.c.day == bindparam("b_day")
)


def end_partitions(conn: Connection, account: str) -> None:
    conn.execute(delete(sync_partitions).where(sync_partitions.c.account == account))


def partitions_refused(conn: Connection, account: str) -> str | None:
    """Why this account's API is walked serially, once a partitioned walk found `created_on` misread."""
    return conn.execute(select(sync_cursors.c.partitions_refused).where(sync_cursors.c.account == account)).scalar()


def refuse_partitions(conn: Connection, account: str, reason: str, now: datetime) -> None:
    values = {"account": account, "partitions_refused": escape(reason), "walk_full": False, "updated_at": now}
    statement = _upsert_insert(conn.dialect.name)(sync_cursors).values(values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[sync_cursors.c.account], set_={"partitions_refused": values["partitions_refused"]}
    ))


def _boundary(row: Any, prefix: str) -> Boundary | None:
    transcript_id, created = row[f"{prefix}_id"], row[f"{prefix}_created"]
    return Boundary(transcript_id, created) if transcript_id is not None and created is not None else None
