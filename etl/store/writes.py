"""The writes of list items: a page's upsert, the purge of a deleted transcript's content and the marking
of rows no longer listed. The caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection, delete, insert, update
from sqlalchemy.exc import DBAPIError

from etl.model.items import DELETED_AUDIO_URL, Item
from etl.model.storable import loads
from etl.store.changes import next_change_seq
from etl.store.engine import refuses_value, store_or_refuse
from etl.store.schema import (
    DERIVED_TABLES,
    DETAIL_COLUMNS,
    EXTRA_DETAIL_TABLES,
    FEATURE_COLUMNS,
    transcript_bodies,
    transcript_status_changes,
    transcript_words,
    transcripts,
)

_UPDATED_ON_CHANGE = (
    "status", "created", "completed", "audio_url", "resource_url", "error", "raw", "changed_at", "deleted_at", "unlisted_at",
    "change_seq",
)


@dataclass
class PageResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows first seen as deleted by the user in this page (their content is purged)
    # (transcript id or None, field, value as received) for every unreadable value in a row written now:
    # a bad item is reported when it first arrives or changes, not again on every run that lists it.
    bad_values: list[tuple[str | None, str, Any]] = field(default_factory=list)
    # (transcript id, why) for every item not stored: the database refused it, or it is not JSON.
    refused: list[tuple[str, str]] = field(default_factory=list)


def upsert_page(conn: Connection, account: str, items: list[Item], now: datetime, *, all_new: bool = False) -> PageResult:
    """Insert new transcripts and update changed ones in one batched statement; unchanged rows are not touched.

    `all_new`, for a walk into an account with no rows, whose pages cannot hold a stored id (each is older
    than the last): the page is inserted in bulk without looking its ids up (`COPY` on PostgreSQL). Should
    the database refuse that (an id stored after all, a value it cannot hold), nothing of it is kept and
    the page is upserted as any other, so the rows, the counts and the status history stay exact."""
    result = PageResult()
    latest: dict[str, Item] = {}
    for item in items:
        if item.id is None:
            result.bad_values.append((None, item.bad_fields[0], item.row.get("raw")))
        elif item.refused is not None:
            result.refused.append((item.id, item.refused))
        else:
            latest.setdefault(item.id, item)  # the API should not repeat an id; if it does, keep the first
    if not latest:
        return result
    sql = _PageSql.of(conn)
    if all_new and _insert_new(conn, sql, account, list(latest.values()), now, result):
        return result
    stored = sql.stored(conn, account, list(latest))
    writes: list[tuple[Item, Any]] = []
    previous_of: dict[str, _Stored | None] = {}
    for transcript_id, item in latest.items():
        # `raw` is the whole list item, so comparing it catches a change in any field, known or new; a row
        # marked unlisted that is listed again is rewritten too, which clears the mark.
        previous = stored.get(transcript_id)
        if previous is not None and previous.raw == item.row["raw"] and previous.unlisted_at is None:
            result.unchanged += 1
            continue
        deleted = item.row["audio_url"] == DELETED_AUDIO_URL
        previous_of[transcript_id] = previous
        writes.append((item, deleted and (previous.deleted_at if previous and previous.deleted else now)))
    if not writes:
        return result
    # Taken last, just before the writes: on SQLite the write lock, on PostgreSQL the number's registration
    # (etl.store.changes), is then held only until the commit.
    written = _write(conn, sql, account, writes, now, next_change_seq(conn), result)
    status_changes, newly_deleted = [], []
    for item in written:
        transcript_id = cast(str, item.id)  # items without an id were set aside above
        previous = previous_of[transcript_id]
        if previous is None:
            result.inserted += 1
        else:
            result.updated += 1
            if previous.status != item.row["status"]:
                status_changes.append(
                    {"account": account, "transcript_id": transcript_id, "old_status": previous.status,
                     "new_status": item.row["status"], "observed_at": now}
                )
        if item.row["audio_url"] == DELETED_AUDIO_URL and not (previous and previous.deleted):
            newly_deleted.append(transcript_id)
        result.bad_values.extend((transcript_id, name, item.row["raw"].get(name)) for name in item.bad_fields)
    if status_changes:
        conn.execute(insert(transcript_status_changes), status_changes)
    purge_content(conn, account, newly_deleted)
    result.deleted = len(newly_deleted)
    return result


def _insert_new(conn: Connection, sql: _PageSql, account: str, items: list[Item], now: datetime, result: PageResult) -> bool:
    """Insert a page of transcripts not stored yet in one bulk statement; False, with nothing written, if the
    database refuses it."""
    writes = [(item, now if item.row["audio_url"] == DELETED_AUDIO_URL else None) for item in items]
    # Before the savepoint, not in it: on SQLite this UPDATE is what begins the page's transaction, and a
    # savepoint begun outside one is a transaction of its own, committed by its release.
    seq = next_change_seq(conn)
    try:
        with conn.begin_nested():
            sql.insert(conn, account, writes, now, seq)
    except DBAPIError as exc:
        if not refuses_value(conn, exc):
            raise
        return False
    result.inserted = len(items)
    for item in items:
        result.bad_values.extend((item.id, name, item.row["raw"].get(name)) for name in item.bad_fields)
    newly_deleted = [cast(str, item.id) for item, deleted_at in writes if deleted_at is not None]
    purge_content(conn, account, newly_deleted)
    result.deleted = len(newly_deleted)
    return True


def _write(
    conn: Connection, sql: _PageSql, account: str, writes: list[tuple[Item, Any]], now: datetime, seq: int,
    result: PageResult,
) -> list[Item]:
    """Upsert the page in one statement; if the database refuses a value, item by item, so that only the
    refused items are lost (each named in `result.refused`), never the rest of the page."""
    refused = store_or_refuse(conn, writes, lambda part: sql.upsert(conn, account, part, now, seq))
    result.refused.extend((cast(str, item.id), f"the database refused it: {reason}") for (item, _), reason in refused)
    lost = {id(write) for write, _ in refused}
    return [write[0] for write in writes if id(write) not in lost]


@dataclass(frozen=True)
class _Stored:
    raw: Any
    status: str | None
    deleted_at: Any
    unlisted_at: Any

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


_STORED = "account, id, raw, status, deleted_at, unlisted_at"


class _PageSql:
    """The two statements of every page, sent straight to the driver in its own dialect.

    They are the hot path of a sync: through SQLAlchemy's type processing they cost about as much as
    the HTTP requests. Values are converted here exactly as etl.store.schema's types store them (UTC text on
    SQLite, timestamptz and jsonb on PostgreSQL), and tests read every column back through SQLAlchemy.
    """

    _COLUMNS = (
        "account", "id", "status", "created", "completed", "audio_url", "resource_url", "error", "raw",
        "first_seen_at", "changed_at", "deleted_at", "unlisted_at", "change_seq", "hydrate_attempts",
    )
    _cache: dict[str, _PageSql] = {}

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        marks = ["%s::jsonb" if name == "raw" else "%s" for name in self._COLUMNS] if self.postgres else ["?"] * len(self._COLUMNS)
        conflict = "ON CONFLICT (id, account) DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in _UPDATED_ON_CHANGE)
        self.insert_sql = f"INSERT INTO transcripts ({', '.join(self._COLUMNS)}) VALUES ({', '.join(marks)})"
        self.upsert_sql = f"{self.insert_sql} {conflict}"
        self.copy_sql = f"COPY transcripts ({', '.join(self._COLUMNS)}) FROM STDIN"

    @classmethod
    def of(cls, conn: Connection) -> _PageSql:
        name = conn.dialect.name
        if name not in cls._cache:
            cls._cache[name] = cls(name)
        return cls._cache[name]

    def stored(self, conn: Connection, account: str, ids: list[str]) -> dict[str, _Stored]:
        # By id alone, the account checked here: only the primary key can serve that, whereas with
        # `account = ?` PostgreSQL, before it has statistics (all through a first sync), picked an index
        # leading to account and read every stored row of it for each page.
        params: tuple[Any, ...]
        if self.postgres:
            # One array parameter: psycopg re-parses queries of more than 50 parameters on every call.
            query, params = f"SELECT {_STORED} FROM transcripts WHERE id = ANY(%s)", (ids,)
        else:
            query = f"SELECT {_STORED} FROM transcripts WHERE id IN ({', '.join('?' * len(ids))})"
            params = tuple(ids)
        rows = conn.exec_driver_sql(query, params).fetchall()
        return {
            transcript_id: _Stored(raw if self.postgres else loads(raw), status, deleted_at, unlisted_at)
            for owner, transcript_id, raw, status, deleted_at, unlisted_at in rows
            if owner == account
        }

    def upsert(self, conn: Connection, account: str, writes: list[tuple[Item, Any]], now: datetime, seq: int) -> None:
        conn.exec_driver_sql(self.upsert_sql, self._rows(account, writes, now, seq))

    def insert(self, conn: Connection, account: str, writes: list[tuple[Item, Any]], now: datetime, seq: int) -> None:
        """Rows known to be new: `COPY` on PostgreSQL (a third of an INSERT's cost to the server, which
        parses no statement per row); a plain INSERT on SQLite, the cheapest shape measured there. Either
        fails whole on an id already stored."""
        rows = self._rows(account, writes, now, seq)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.postgres:
                with cursor.copy(self.copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(self.insert_sql, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            # Wrapped as SQLAlchemy wraps every other statement's error: what handles database errors (a refused
            # value, a failed run's one line) then sees one kind.
            raise DBAPIError.instance(
                self.copy_sql if self.postgres else self.insert_sql, None, exc, conn.dialect.loaded_dbapi.Error,
                hide_parameters=True, dialect=conn.dialect,
            ) from None
        finally:
            cursor.close()

    def _rows(self, account: str, writes: list[tuple[Item, Any]], now: datetime, seq: int) -> list[tuple[Any, ...]]:
        time = self._time
        stamp = time(now)
        return [
            (
                account, item.id, item.row["status"], time(item.row["created"]), time(item.row["completed"]),
                item.row["audio_url"], item.row["resource_url"], item.row["error"], item.raw_json,
                stamp, stamp, time(deleted_at) if deleted_at else None, None, seq, 0,
            )
            for item, deleted_at in writes
        ]

    def _time(self, value: datetime | str | None) -> Any:
        # A str is a value read back from SQLite by stored(): already in storage form.
        if value is None or self.postgres or isinstance(value, str):
            return value
        # etl.store.schema.UTCDateTime on SQLite: UTC wall time as SQLAlchemy's DATETIME text. Parsed timestamps
        # are in UTC already (etl.model.items), so most need no conversion.
        if value.tzinfo is not timezone.utc:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def purge_content(conn: Connection, account: str, transcript_ids: list[str]) -> None:
    """Drop what aai-etl holds of deleted transcripts' content: text, details, words, the full body,
    everything derived from it, and its sentences, paragraphs and subtitles."""
    if not transcript_ids:
        return
    mine = (transcripts.c.account == account) & transcripts.c.id.in_(transcript_ids)
    conn.execute(update(transcripts).where(mine).values(**{name: None for name in (*DETAIL_COLUMNS, *FEATURE_COLUMNS)}))
    for table in (transcript_words, transcript_bodies, *DERIVED_TABLES.values(), *dict.fromkeys(EXTRA_DETAIL_TABLES.values())):
        conn.execute(delete(table).where(table.c.account == account, table.c.transcript_id.in_(transcript_ids)))


def mark_unlisted(
    conn: Connection, account: str, oldest_listed: datetime | None, latest: datetime, odd_listed: set[str], now: datetime,
    *, unplaced: bool = True,
) -> int:
    """After a walk of the whole listing: mark rows as no longer listed. Those created before the oldest
    listed transcript (all rows, if none is listed), and (`unplaced`) those whose `created` is missing or
    after `latest` (the walk could not place them), except `odd_listed`: the listed items with such a
    `created`. A walk by days sees no item it cannot place, so it passes `unplaced=False`. They stay in the
    table: keeping them past the window is the point."""
    statement = update(transcripts).where(transcripts.c.account == account, transcripts.c.unlisted_at.is_(None))
    created = transcripts.c.created
    if oldest_listed is not None:
        before = created < oldest_listed
        statement = statement.where(before | created.is_(None) | (created > latest) if unplaced else before)
    elif not unplaced:
        statement = statement.where(created.is_not(None), created <= latest)
    if odd_listed:
        statement = statement.where(transcripts.c.id.not_in(sorted(odd_listed)))
    return conn.execute(statement.values(unlisted_at=now, change_seq=next_change_seq(conn))).rowcount
