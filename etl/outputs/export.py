"""The change feed: every transcript row written after a watermark, and the watermark to ask from next.

The watermark is a change sequence, not a time. An export reads only up to the bound etl.store.changes
settles: every transaction that holds a number up to it has ended. So a row that commits while an
export runs, or after it, is above that export's watermark, never below it, however many writers
commit at once.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from etl.errors import EtlError
from etl.model.storable import dumps

if TYPE_CHECKING:
    from sqlalchemy import Connection

FORMATS = ("jsonl", "csv")


def export(conn: Connection, since: int | None, fmt: str, out: IO[str], account: str | None = None) -> tuple[int, int]:
    """Write the rows changed after `since` (all rows if None) to `out`; return (rows, next watermark)."""
    watermark, count = since or 0, 0
    from etl.store.changes import settled  # here, not at the top: see _changed

    # Every column of the table, in its order: what --format parquet writes too.
    from etl.store.schema import transcripts

    writer = _writer(fmt, out, [column.name for column in transcripts.columns])
    bound = settled(conn)
    if bound is None or bound <= watermark:
        return count, watermark
    for row in _changed(conn, since, bound, account):
        writer(row)
        count += 1
        watermark = row["change_seq"]
    return count, watermark


@contextmanager
def owner_only(private: bool) -> Iterator[None]:
    """With `private`, the files and folders created meanwhile are their owner's only (0600, 0700) whatever the
    umask: an export holds transcript text, as the database does (etl.store.engine.make_engine)."""
    previous = os.umask(0o077) if private else None
    try:
        yield
    finally:
        if previous is not None:
            os.umask(previous)


@contextmanager
def replaced_atomically(path: str) -> Iterator[IO[str]]:
    """A file that appears at `path` whole, or not at all: a loader never reads half an export."""
    temporary = f"{path}.partial"
    try:
        out = open(temporary, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None  # the file asked for, not our temporary name
    try:
        try:
            yield out
        except BaseException:
            # Closed unflushed: what is still buffered belongs to an export that is thrown away, and flushing
            # it into a pipe nobody drains would block the exit forever. Closing the file descriptor first
            # makes the buffered layers' close a no-op.
            out.buffer.raw.close()  # type: ignore[attr-defined]
            raise
        out.close()  # flushes: a full disk fails here, before the file takes the path
        os.replace(temporary, path)
    except BaseException:  # an error or an interrupt: no half export left behind
        out.close()
        os.unlink(temporary)
        raise


def _changed(conn: Connection, since: int | None, bound: int, account: str | None) -> Iterator[dict[str, Any]]:
    # Imported here: the CLI reads FORMATS for every command's start-up, which need not load SQLAlchemy.
    from sqlalchemy import select

    from etl.store.schema import transcripts

    # One statement: one consistent snapshot, streamed so memory stays flat however many rows changed.
    query = (
        select(transcripts).where(transcripts.c.change_seq <= bound)
        .order_by(transcripts.c.change_seq, transcripts.c.account, transcripts.c.id)
    )
    if since is not None:
        query = query.where(transcripts.c.change_seq > since)
    if account is not None:
        query = query.where(transcripts.c.account == account)
    for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query).mappings():
        yield dict(row)


def _writer(fmt: str, out: IO[str], columns: list[str]):
    if fmt == "jsonl":
        return lambda row: out.write(_json(row, {name: _iso(value) for name, value in row.items()}) + "\n")
    table = csv.DictWriter(out, fieldnames=columns)
    table.writeheader()
    return lambda row: table.writerow({name: _csv_value(row, value) for name, value in row.items()})


def _json(row: dict[str, Any], value: Any) -> str:
    try:
        return dumps(value)
    except ValueError:  # only a value stored before aai-etl refused NaN and Infinity: JSON has neither
        raise EtlError(f"cannot export transcript {row['id']}: it holds NaN or Infinity, which JSON cannot carry") from None


def _csv_value(row: dict[str, Any], value: Any) -> Any:
    if isinstance(value, bool):  # as JSON spells them, which every loader reads
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _json(row, value)
    return _iso(value)


def _iso(value: Any) -> Any:
    """A timestamp as ISO 8601 text; any other value as it is."""
    return value.isoformat() if isinstance(value, datetime) else value
