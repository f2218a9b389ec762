"""Audio intelligence as tables: rows derived from a transcript's body, which hydration has already fetched.

Each part of a body (utterances, sentiment results, entities, ...) becomes the rows of one table, in the
body's order; a label -> score summary is ordered highest score first. The API's shapes drift, so parsing
is lenient. A part that is missing, null or not of its shape stores nothing and is named in one warning,
a single unreadable value is stored as NULL, and nothing here ever fails the run.

Hydration derives each body as it stores it. The `derive` command (from_bodies) derives the bodies stored
before, under the account's run lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, ColumnElement, Connection, Engine, Float, Integer, Table, Text, and_, bindparam, func, select, update

from etl.details import values as readers
from etl.model.storable import dumps
from etl.store import interrupt, runs
from etl.store.changes import next_change_seq
from etl.store.schema import DERIVED_TABLES, FEATURE_COLUMNS, FEATURE_FLAGS, RawJSON, transcript_bodies, transcripts

log = logging.getLogger(__name__)

ALL_TABLES = tuple(DERIVED_TABLES)
BACKFILL_BATCH = 200  # bodies a transaction when deriving from stored bodies


class _Malformed(Exception):
    """A part of the body that is not of the shape the API documents."""


class _Values:
    """One part's values, each read by the reader of its kind (etl.details.values); one present that its
    reader cannot read becomes None and is counted."""

    def __init__(self) -> None:
        self.bad = 0

    def text(self, element: dict[str, Any], name: str) -> str | None:
        return self._read(element.get(name), readers.text)

    def label(self, element: dict[str, Any], name: str) -> str | None:
        """A speaker or channel."""
        return self._read(element.get(name), readers.label)

    def number(self, value: Any) -> float | None:
        return self._read(value, readers.number)

    def integer(self, value: Any) -> int | None:
        return self._read(value, readers.integer)

    def flag(self, value: Any) -> bool | None:
        return self._read(value, readers.flag)

    def unreadable(self, value: Any) -> None:
        """A value that is present but of no usable shape: counted (it is stored as NULL)."""
        self._check(value, lambda v: False)

    def _check(self, value: Any, valid: Callable[[Any], bool]) -> Any:
        if value is None or valid(value):
            return value
        self.bad += 1
        return None

    def _read(self, value: Any, reader: Callable[[Any], Any]) -> Any:
        """`value` as `reader` reads it; one present that it cannot read is counted (and stored as NULL)."""
        read = reader(value)
        if read is None and value is not None:
            self.bad += 1
        return read


def _elements(part: Any) -> list[dict[str, Any]]:
    if not isinstance(part, list) or not all(isinstance(element, dict) for element in part):
        raise _Malformed("is not a list of objects")
    return part


def _results(part: Any) -> list[dict[str, Any]]:
    """The `results` of a feature's result object (auto_highlights_result)."""
    if not isinstance(part, dict):
        raise _Malformed("is not an object")
    return [] if part.get("results") is None and part.get("status") == "unavailable" else _elements(part.get("results"))


def _summary(part: Any) -> dict[str, Any]:
    """A label -> value mapping of a feature's result object (iab_categories_result, content_safety_labels)."""
    if not isinstance(part, dict):
        raise _Malformed("is not an object")
    summary = part.get("summary")
    if summary is None and part.get("status") == "unavailable":
        return {}
    if not isinstance(summary, dict):
        raise _Malformed("has no summary object")
    return summary


def _utterances(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for element in _elements(part):
        yield {
            "speaker": values.label(element, "speaker"), "channel": values.label(element, "channel"),
            "start_ms": values.integer(element.get("start")), "end_ms": values.integer(element.get("end")),
            "confidence": values.number(element.get("confidence")), "text": values.text(element, "text"),
        }


def _sentiments(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for element in _elements(part):
        yield {
            "sentiment": values.text(element, "sentiment"), "confidence": values.number(element.get("confidence")),
            "speaker": values.label(element, "speaker"), "channel": values.label(element, "channel"),
            "start_ms": values.integer(element.get("start")), "end_ms": values.integer(element.get("end")),
            "text": values.text(element, "text"),
        }


def _entities(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for element in _elements(part):
        yield {
            "entity_type": values.text(element, "entity_type"), "text": values.text(element, "text"),
            "start_ms": values.integer(element.get("start")), "end_ms": values.integer(element.get("end")),
        }


def _highlights(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for element in _results(part):
        spans = element.get("timestamps")
        if isinstance(spans, list) and all(isinstance(span, dict) for span in spans):
            timestamps = [[values.integer(span.get("start")), values.integer(span.get("end"))] for span in spans]
        else:
            values.unreadable(spans)
            timestamps = None
        yield {
            "text": values.text(element, "text"), "count": values.integer(element.get("count")),
            "rank": values.number(element.get("rank")),
            "first_start_ms": timestamps[0][0] if timestamps else None, "timestamps": timestamps,
        }


def _by_score(summary: dict[str, Any], values: _Values) -> list[tuple[str, float | None]]:
    """A label -> score summary, highest score first (then by label): an order that does not depend on the
    order of an object's keys, which PostgreSQL's JSONB does not keep."""
    scored = [(label, values.number(score)) for label, score in summary.items()]
    return sorted(scored, key=lambda pair: (pair[1] is None, -(pair[1] or 0.0), pair[0]))


def _topics(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for label, relevance in _by_score(_summary(part), values):
        yield {"label": label, "relevance": relevance}


def _content_safety(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    severities = part.get("severity_score_summary") if isinstance(part, dict) else None
    if not isinstance(severities, dict):
        values.unreadable(severities)
        severities = {}
    for label, confidence in _by_score(_summary(part), values):
        severity = values._check(severities.get(label), lambda v: isinstance(v, dict)) or {}
        yield {
            "label": label, "confidence": confidence,
            **{f"severity_{level}": values.number(severity.get(level)) for level in ("low", "medium", "high")},
        }


def _chapters(part: Any, values: _Values) -> Iterator[dict[str, Any]]:
    for element in _elements(part):
        yield {
            "start_ms": values.integer(element.get("start")), "end_ms": values.integer(element.get("end")),
            "gist": values.text(element, "gist"), "headline": values.text(element, "headline"),
            "summary": values.text(element, "summary"),
        }


@dataclass(frozen=True)
class _Part:
    source: str  # the body's field
    flag: str  # the request flag that asks for it
    rows: Callable[[Any, _Values], Iterator[dict[str, Any]]]


_PARTS = {
    "utterances": _Part("utterances", "speaker_labels", _utterances),
    "sentiments": _Part("sentiment_analysis_results", "sentiment_analysis", _sentiments),
    "entities": _Part("entities", "entity_detection", _entities),
    "highlights": _Part("auto_highlights_result", "auto_highlights", _highlights),
    "topics": _Part("iab_categories_result", "iab_categories", _topics),
    "content_safety": _Part("content_safety_labels", "content_safety", _content_safety),
    "chapters": _Part("chapters", "auto_chapters", _chapters),
}


def columns(body: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The feature columns of transcripts for a body (all NULL for None: a deleted transcript keeps none)."""
    if body is None:
        return {name: None for name in (*FEATURE_COLUMNS, "derived_at")}
    values = _Values()
    flags = {name: values.flag(body.get(name)) for name in FEATURE_FLAGS}
    return {
        **flags,
        "audio_channels": values.integer(body.get("audio_channels")),
        "language_confidence": values.number(body.get("language_confidence")),
        "summary": values.text(body, "summary"),
        "derived_at": now,
    }


class Deriver:
    """Fills the chosen derived tables from bodies. Each kind of trouble (a part of the wrong shape, a
    requested part missing, unreadable values in a part) is collected with the transcripts it was found in,
    and named by `tell` in one warning with how many transcripts it concerns: a shape that drifted for every
    transcript must not flood the log."""

    def __init__(self, tables: Collection[str] = ALL_TABLES) -> None:
        self.tables = tuple(tables)
        self._troubles: dict[tuple[str, str], tuple[str, set[str]]] = {}  # kind -> (first message, transcripts)

    def tell(self, say: bool = True) -> int:
        """Name each kind of trouble met since the last call in one warning, when `say` (the bodies were
        stored for the first time; a body derived again was told of then); return how many transcripts had one."""
        troubles, self._troubles = self._troubles, {}
        if say:
            for message, ids in troubles.values():
                others = len(ids) - 1
                alike = f" (and {others:,} other transcript{'' if others == 1 else 's'} alike)" if others else ""
                log.warning("%s%s", message, alike)
        return len(set().union(*(ids for _, ids in troubles.values())))

    def replace(self, conn: Connection, account: str, bodies: dict[str, dict[str, Any] | None]) -> None:
        """Replace the derived rows of these transcripts: every table emptied of them, the chosen tables
        filled again from their bodies (None: a deleted transcript, which keeps no rows)."""
        rows = {
            DERIVED_TABLES[name]: [
                {"transcript_id": transcript_id, "account": account, "position": position, **row}
                for transcript_id, body in bodies.items()
                if body is not None
                for position, row in enumerate(self.rows(transcript_id, body, name))
            ]
            for name in self.tables
        }
        _RowSql(conn.dialect.name).replace(conn, account, list(bodies), {table: new for table, new in rows.items() if new})

    def rows(self, transcript_id: str, body: dict[str, Any], table: str) -> list[dict[str, Any]]:
        """The rows of one derived table for one body, without their keys."""
        part = _PARTS[table]
        value = body.get(part.source)
        if value is None:
            if body.get(part.flag) is True:
                self._warn(part.source, "missing", transcript_id, f"transcript {transcript_id}: {part.flag} was requested but the "
                           f"body has no {part.source}; no {table} rows stored")
            return []
        values = _Values()
        try:
            found = list(part.rows(value, values))
        except _Malformed as exc:
            self._warn(part.source, str(exc), transcript_id, f"transcript {transcript_id}: {part.source} {exc}; no {table} rows stored")
            return []
        if values.bad:
            self._warn(part.source, "unreadable", transcript_id, f"transcript {transcript_id}: {values.bad} unreadable "
                       f"value{'' if values.bad == 1 else 's'} in {part.source} stored as NULL")
        return found

    def _warn(self, source: str, trouble: str, transcript_id: str, message: str) -> None:
        self._troubles.setdefault((source, trouble), (message, set()))[1].add(transcript_id)


class _RowSql:
    """The derived rows' statements, straight to the driver in its own dialect. They run in hydration's
    write path, where SQLAlchemy's per-row work and a round trip per table and statement took a third of
    a zero-latency hydration on PostgreSQL: there, one statement deletes from every table and one inserts
    into every table, a column array each. Values are plain (text, numbers, None) but for JSON, encoded here."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def replace(self, conn: Connection, account: str, ids: list[str], rows: dict[Table, list[dict[str, Any]]]) -> None:
        if self.postgres:
            # Two statements, not one: a statement's parts see the same snapshot, so an insert would meet
            # the rows its own statement deletes.
            conn.exec_driver_sql("WITH " + ", ".join(
                f"d_{table.name} AS (DELETE FROM {table.name} WHERE account = %s AND transcript_id = ANY(%s))"
                for table in DERIVED_TABLES.values()
            ) + " SELECT 1", (account, ids) * len(DERIVED_TABLES))
            if rows:
                conn.exec_driver_sql("WITH " + ", ".join(
                    f"i_{table.name} AS (INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)}) "
                    f"SELECT * FROM unnest({', '.join(f'%s::{_PG_ARRAY[_kind(c.type)]}' for c in table.columns)}))"
                    for table in rows
                ) + " SELECT 1", tuple(list(array) for table, new in rows.items() for array in zip(*_values(table, new), strict=True)))
            return
        marks = ", ".join("?" * len(ids))
        for table in DERIVED_TABLES.values():
            conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE account = ? AND transcript_id IN ({marks})", (account, *ids))
        for table, new in rows.items():
            names = [column.name for column in table.columns]
            conn.exec_driver_sql(
                f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", _values(table, new)
            )


def _values(table: Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    encoded = {column.name for column in table.columns if isinstance(column.type, RawJSON)}
    names = [column.name for column in table.columns]
    return [
        tuple(dumps(row[name]) if name in encoded and row[name] is not None else row[name] for name in names)
        for row in rows
    ]


_PG_ARRAY = {JSON: "jsonb[]", Float: "float8[]", Integer: "int[]", Text: "text[]"}


def _kind(kind: Any) -> type:
    return next(base for base in _PG_ARRAY if isinstance(kind, base) or isinstance(getattr(kind, "impl", None), base))


def backfill(
    conn: Connection, account: str, deriver: Deriver, now: datetime, again: bool = False,
    on_batch: Callable[[int], None] = lambda derived: None,
) -> int:
    """Derive the tables from the stored bodies of transcripts hydrated before (all of them if `again`),
    a batch per transaction; an interrupted backfill resumes where its last batch committed. Return how
    many transcripts were derived."""
    done, last = 0, ""
    stale: ColumnElement[bool] = transcripts.c.derived_at.is_(None)
    if again:
        stale = stale | (transcripts.c.derived_at < now)
    while True:
        # The next ids in key order, then those of them still stale (a second run skips what the first
        # one committed): each step reads one batch's rows by index, however far the backfill has come.
        ids = conn.execute(
            select(transcript_bodies.c.transcript_id)
            .where(transcript_bodies.c.transcript_id > last, transcript_bodies.c.account == account)
            .order_by(transcript_bodies.c.transcript_id)
            .limit(BACKFILL_BATCH)
        ).scalars().all()
        if not ids:
            conn.rollback()
            return done
        last = ids[-1]
        bodies = dict(conn.execute(
            select(transcript_bodies.c.transcript_id, transcript_bodies.c.body)
            .join(transcripts, (transcripts.c.id == transcript_bodies.c.transcript_id)
                  & (transcripts.c.account == transcript_bodies.c.account))
            .where(transcript_bodies.c.account == account, transcript_bodies.c.transcript_id.in_(ids),
                   transcripts.c.deleted_at.is_(None), stale)
        ).all())
        if not bodies:
            continue
        with interrupt.writing():
            seq = next_change_seq(conn)  # the transcripts' new columns and rows join the change feed
            conn.execute(
                update(transcripts)
                .where(transcripts.c.account == account, transcripts.c.id == bindparam("b_id"))
                .values({name: bindparam(f"v_{name}") for name in (*FEATURE_COLUMNS, "derived_at", "change_seq")}),
                [{"b_id": transcript_id, "v_change_seq": seq, **{f"v_{k}": v for k, v in columns(body, now).items()}}
                 for transcript_id, body in bodies.items()],
            )
            deriver.replace(conn, account, bodies)
            done += len(bodies)
            on_batch(done)
            conn.commit()


def without_bodies(conn: Connection, account: str) -> int:
    """Hydrated transcripts never derived that have no stored body (store_bodies was off): only a new
    fetch can fill their tables."""
    return conn.execute(select(func.count()).select_from(transcripts).where(_underivable(account))).scalar_one()


def refetch_without_bodies(conn: Connection, account: str) -> int:
    """Queue those transcripts for hydration again: the next `aai-etl hydrate` or sync fetches them."""
    with interrupt.writing():
        count = conn.execute(
            update(transcripts).where(_underivable(account))
            .values(hydrated_at=None, hydrate_attempts=0, hydrate_after=None, change_seq=next_change_seq(conn))
        ).rowcount
        conn.commit()
    return count


def _underivable(account: str) -> ColumnElement[bool]:
    has_body = select(transcript_bodies.c.transcript_id).where(
        transcript_bodies.c.transcript_id == transcripts.c.id, transcript_bodies.c.account == transcripts.c.account
    ).exists()
    return and_(
        transcripts.c.account == account, transcripts.c.hydrated_at.is_not(None), transcripts.c.deleted_at.is_(None),
        transcripts.c.derived_at.is_(None), ~has_body,
    )


def from_bodies(
    engine: Engine, account: str, tables: tuple[str, ...], *, again: bool = False, refetch: bool = False
) -> tuple[int, int, int]:
    """The `derive` command: fill the derived tables from stored bodies, for transcripts hydrated before they
    existed (no API requests); return (transcripts derived, transcripts left without a stored body,
    transcripts whose body had a trouble: said as warnings the first time they are derived, only counted
    `again`). With `refetch`, queue those without a body for the next hydration instead; return
    (transcripts queued, 0, 0). Holds the account's run lock, like a sync."""
    with runs.locked(engine, account) as conn:
        if refetch:
            return refetch_without_bodies(conn, account), 0, 0
        deriver = Deriver(tables)
        try:
            derived = backfill(conn, account, deriver, datetime.now(timezone.utc), again)
        finally:
            troubled = deriver.tell(say=not again)
        return derived, without_bodies(conn, account), troubled
