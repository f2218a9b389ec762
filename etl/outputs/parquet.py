"""The change feed as Parquet: for each table, the rows of the transcripts changed after a watermark, typed.

The feed follows transcripts' change_seq, as the JSON Lines export does. A transcript's rows in every other
table (its status changes, the audio intelligence tables, its sentences, paragraphs and subtitles) travel
with it: they are exported whenever the transcript is, all of them, each carrying the transcript's
change_seq. So a loader replaces, for each transcript in an export, all its rows in a table with the rows
the export holds for it; a transcript whose rows are gone (deleted through the API: its transcripts row
has deleted_at set) has none, which deletes them.

pyarrow is imported only here, and only when a Parquet export runs: it is an install extra.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Boolean, Connection, Float, Integer, Table, Text, cast, func, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from etl.errors import ConfigError, install_hint
from etl.store.changes import settled
from etl.store.schema import DERIVED_TABLES, EXTRA_DETAIL_TABLES, RawJSON, UTCDateTime, transcript_status_changes, transcripts

if TYPE_CHECKING:
    import pyarrow

TABLES: dict[str, Table] = {
    "transcripts": transcripts,
    "transcript_status_changes": transcript_status_changes,
    **{table.name: table for table in DERIVED_TABLES.values()},
    **{table.name: table for table in EXTRA_DETAIL_TABLES.values()},
}
BATCH_ROWS = 10_000  # rows read, converted and written at a time: memory stays flat however many changed


def require_pyarrow() -> None:
    """One clear line, before anything is read, when the extra is not installed."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigError(f"the Parquet export needs pyarrow: {install_hint('parquet')}") from None


def export(conn: Connection, since: int | None, directory: Path, account: str | None = None) -> tuple[dict[str, int], int]:
    """Write DIRECTORY/<table>/<from>-<to>.parquet for every table with rows in the window after `since`;
    return (rows per table written, the next watermark). Every file appears whole or not at all."""
    import pyarrow.parquet as pq

    bound = settled(conn)  # taken before the snapshot begins: see etl.store.changes
    if bound is None or bound <= (since or 0):
        return {}, since or 0
    _snapshot(conn)  # every table read as of one instant: a transcript and its rows always agree
    changed = (transcripts.c.change_seq > (since or 0)) & (transcripts.c.change_seq <= bound)
    if account is not None:
        changed = changed & (transcripts.c.account == account)
    watermark = conn.execute(select(func.max(transcripts.c.change_seq)).where(changed)).scalar()
    if watermark is None:
        conn.rollback()
        return {}, since or 0
    window = changed & (transcripts.c.change_seq <= watermark)
    name = f"{(since or 0) + 1:020d}-{watermark:020d}.parquet"  # zero-padded: file names sort in change order
    directory.mkdir(parents=True, exist_ok=True)
    _sweep_staging(directory)
    staging = directory / f".staging-{os.getpid()}"
    staging.mkdir(exist_ok=True)
    written: dict[str, int] = {}
    try:
        for table_name, table in TABLES.items():
            schema = arrow_schema(table)
            writer = None
            for batch in _batches(conn, table, window, schema):
                if writer is None:
                    writer = pq.ParquetWriter(staging / table_name, schema, compression="zstd")
                writer.write_batch(batch)
                written[table_name] = written.get(table_name, 0) + batch.num_rows
            if writer is not None:
                writer.close()
        conn.rollback()
        # Each file renamed into place whole, only once every table is written.
        for table_name in written:
            (directory / table_name).mkdir(exist_ok=True)
            os.replace(staging / table_name, directory / table_name / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written, watermark


_STAGING_ABANDONED = 3600  # seconds unwritten: an export at work writes its staging files batch by batch


def _sweep_staging(directory: Path) -> None:
    """Remove the staging directories of exports killed before their `finally` (kill -9, the OOM killer): each
    holds a partial copy of its export. One written within the hour may be another export's, still at work."""
    for staging in directory.glob(".staging-*"):
        try:
            written = max([staging.stat().st_mtime, *(part.stat().st_mtime for part in staging.iterdir())])
        except OSError:
            continue  # gone meanwhile: its export finished
        if time.time() - written > _STAGING_ABANDONED:
            shutil.rmtree(staging, ignore_errors=True)


def _snapshot(conn: Connection) -> None:
    """Begin a transaction whose reads all see the database as of its first one."""
    conn.rollback()
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    else:
        # Python's sqlite3 begins transactions only for writes; an explicit BEGIN makes the reads one snapshot.
        conn.exec_driver_sql("BEGIN")


def arrow_schema(table: Table) -> pyarrow.Schema:
    """The table's columns as Arrow types (timestamps as UTC timestamps, JSON as its text); a table other
    than transcripts gets its transcript's change_seq as the last column."""
    import pyarrow as pa

    fields = [pa.field(column.name, _arrow_type(column.type), nullable=column.nullable) for column in table.columns]
    if table is not transcripts:
        fields.append(pa.field("change_seq", pa.int64(), nullable=False))
    return pa.schema(fields)


def _arrow_type(kind: Any) -> pyarrow.DataType:
    import pyarrow as pa

    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    for sql_type, arrow in ((BigInteger, pa.int64()), (Integer, pa.int32()), (Float, pa.float64()),
                            (Boolean, pa.bool_()), (JSON, pa.string()), (Text, pa.string())):
        if isinstance(kind, sql_type) or isinstance(getattr(kind, "impl", None), sql_type):
            return arrow
    raise TypeError(f"no Arrow type for {kind!r}")


def _batches(conn: Connection, table: Table, window: ColumnElement[bool], schema: pyarrow.Schema) -> Iterator[pyarrow.RecordBatch]:
    import pyarrow as pa

    postgres = conn.dialect.name == "postgresql"
    columns = [_readable(column, postgres) for column in table.columns]
    if table is transcripts:
        query = select(*columns).where(window).order_by(table.c.change_seq, table.c.account, table.c.id)
    else:
        # Not sorted: a loader replaces a transcript's rows as a set, and sorting costs a quarter of the read.
        joined = table.join(transcripts, (transcripts.c.id == table.c.transcript_id) & (transcripts.c.account == table.c.account))
        query = select(*columns, transcripts.c.change_seq).select_from(joined).where(window)
    result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(query)
    for rows in result.partitions():
        values = list(zip(*rows, strict=True))
        yield pa.record_batch([_array(values[i], field.type) for i, field in enumerate(schema)], schema=schema)


def _readable(column: Any, postgres: bool) -> ColumnElement[Any]:
    """The column as the driver's plain values, without SQLAlchemy's per-value conversions (the slow part):
    timestamps as microseconds since the epoch (PostgreSQL) or UTC text (SQLite), JSON as its text."""
    if isinstance(column.type, UTCDateTime):
        if postgres:
            return cast(func.extract("epoch", column) * 1_000_000, BigInteger).label(column.name)
        return type_coerce(column, Text).label(column.name)
    if isinstance(column.type, RawJSON):
        return (cast(column, Text) if postgres else type_coerce(column, Text)).label(column.name)
    return column


def _array(values: tuple[Any, ...], kind: pyarrow.DataType) -> pyarrow.Array:
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        first = next((value for value in values if value is not None), None)
        if isinstance(first, str):  # SQLite: UTC wall time as text
            return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(kind)
        return pa.array(values, pa.int64()).cast(kind)
    if pa.types.is_boolean(kind):  # SQLite stores booleans as 0 and 1
        return pa.array([None if value is None else bool(value) for value in values], kind)
    return pa.array(values, kind)
