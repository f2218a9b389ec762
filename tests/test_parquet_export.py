"""The Parquet feed: typed files per table, read back by DuckDB equal to the database, and a loader that
follows the documented contract ends with the database's rows, deletions included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import cli_env, run_cli
from sqlalchemy import create_engine, func, select, update

from etl.errors import hint_for, install_hint
from etl.outputs.parquet import TABLES, arrow_schema
from etl.store.schema import RawJSON, transcripts
from etl.tools.simulator import Fault

ROOT = Path(__file__).resolve().parent.parent


def export(fake, database_url, directory: Path, *args) -> int:
    result = run_cli(["export", "--format", "parquet", "--output-dir", str(directory), *args], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    return int(result.stdout.strip())


def key_of(name: str) -> tuple[str, ...]:
    if name == "transcripts":
        return ("account", "id")
    if name == "transcript_subtitles":
        return ("account", "transcript_id", "format")
    return ("account", "id") if name == "transcript_status_changes" else ("account", "transcript_id", "position")


def database_rows(database_url: str, name: str) -> list[dict]:
    """The table's rows as SQLAlchemy reads them (aware UTC datetimes, parsed JSON), with each row's
    transcript change_seq: what the Parquet files must hold."""
    table = TABLES[name]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        if table is transcripts:
            query = select(table)
        else:
            query = select(table, transcripts.c.change_seq).join(
                transcripts, (transcripts.c.id == table.c.transcript_id) & (transcripts.c.account == table.c.account))
        rows = [dict(row) for row in conn.execute(query).mappings()]
    engine.dispose()
    return sorted(rows, key=lambda row: tuple(row[k] for k in key_of(name)))


def duckdb_rows(con, files: list[Path] | str, name: str) -> list[dict]:
    relation = con.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]!r})" if isinstance(files, list) else files)
    return normalised(name, [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()])


def normalised(name: str, rows: list[dict]) -> list[dict]:
    json_columns = [column.name for column in TABLES[name].columns if isinstance(column.type, RawJSON)]
    for row in rows:
        for column in json_columns:
            row[column] = None if row[column] is None else json.loads(row[column])
    return sorted(rows, key=lambda row: tuple(row[k] for k in key_of(name)))


@pytest.fixture
def duck():
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    yield con
    con.close()


def synced(fake, database_url, *args):
    """A sync that fills every table the feed carries: sentences, paragraphs and subtitles too."""
    result = run_cli(["sync", *args], cli_env(fake, database_url, AAI_ETL_EXTRA_DETAILS="sentences,paragraphs,srt,vtt"))
    assert result.exit_code == 0, result.output


def test_duckdb_reads_back_exactly_the_database(database_url, fake, tmp_path, duck):
    items = fake.add(24, status="processing")
    synced(fake, database_url)
    for item in items[:20]:
        fake.set_status(item["id"], "completed")
    fake.set_status(items[20]["id"], "error")
    synced(fake, database_url)
    watermark = export(fake, database_url, tmp_path)

    for name in TABLES:
        files = sorted((tmp_path / name).glob("*.parquet"))
        assert [f.name for f in files] == [f"{1:020d}-{watermark:020d}.parquet"], name
        expected = database_rows(database_url, name)
        assert expected, f"{name} is empty: the test would prove nothing"
        assert duckdb_rows(duck, files, name) == expected, name
    schema = pq.read_schema(next((tmp_path / "transcripts").glob("*.parquet")))
    assert schema.field("created").type == pa.timestamp("us", tz="UTC")
    assert schema.field("speaker_labels").type == pa.bool_() and schema.field("change_seq").type == pa.int64()
    assert pq.read_schema(next((tmp_path / "transcript_utterances").glob("*.parquet"))).field("start_ms").type == pa.int32()
    assert [p.name for p in tmp_path.iterdir()] and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def load(duck, directory: Path, since: int, watermark: int) -> None:
    """A loader following the contract of the Parquet docs page: upsert transcripts by key; for every transcript in the
    export, replace its rows in each other table with the rows the export holds."""
    name = f"{since + 1:020d}-{watermark:020d}.parquet"
    exported = directory / "transcripts" / name
    for table in TABLES:
        path = directory / table / name
        if table == "transcripts":
            duck.sql(f"DELETE FROM transcripts WHERE (account, id) IN (SELECT account, id FROM read_parquet('{path}'))")
        else:
            duck.sql(f"DELETE FROM {table} WHERE (account, transcript_id) IN "
                     f"(SELECT account, id FROM read_parquet('{exported}'))")
        if path.exists():
            duck.sql(f"INSERT INTO {table} SELECT * FROM read_parquet('{path}')")


def test_a_loader_following_the_feed_ends_with_the_database(database_url, fake, tmp_path, duck):
    items = fake.add(16)
    synced(fake, database_url)
    first = export(fake, database_url, tmp_path)
    for table in TABLES:  # the warehouse's tables, typed as the files are
        empty = arrow_schema(TABLES[table]).empty_table()  # noqa: F841 (DuckDB reads the local by name)
        duck.sql(f"CREATE TABLE {table} AS SELECT * FROM empty")
    load(duck, tmp_path, 0, first)

    assert export(fake, database_url, tmp_path, "--since", str(first)) == first  # nothing changed, nothing written
    assert len(list((tmp_path / "transcripts").iterdir())) == 1

    for item in items[:4]:
        fake.delete(item["id"])
    fake.add(3, status="queued")
    synced(fake, database_url, "--full")  # a deletion of a final transcript is found by a full walk
    second = export(fake, database_url, tmp_path, "--since", str(first))
    assert second > first
    changed = duckdb_rows(duck, sorted((tmp_path / "transcripts").glob(f"{first + 1:020d}-*.parquet")), "transcripts")
    assert {row["id"] for row in changed} == {i["id"] for i in items[:4]} | {i["id"] for i in fake.listing()[:3]}
    assert all(row["deleted_at"] is not None and row["text"] is None for row in changed if row["id"] in {i["id"] for i in items[:4]})
    load(duck, tmp_path, first, second)

    for table in TABLES:
        assert duckdb_rows(duck, f"SELECT * FROM {table}", table) == database_rows(database_url, table), table
    deleted = {i["id"] for i in items[:4]}
    utterances = duckdb_rows(duck, "SELECT * FROM transcript_utterances", "transcript_utterances")
    assert utterances and not any(row["transcript_id"] in deleted for row in utterances)


def test_without_pyarrow_one_line_says_what_to_install(fake, sqlite_url, tmp_path, monkeypatch):
    assert run_cli(["db", "upgrade"], cli_env(fake, sqlite_url)).exit_code == 0
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what `import pyarrow` meets when it is not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = run_cli(["export", "--format", "parquet", "--output-dir", str(tmp_path / "out")], cli_env(fake, sqlite_url))
    assert result.exit_code == 2
    # The hint names the extra as this aai-etl was installed: here, from the checkout the tests run in.
    assert result.stderr.strip() == f"aai-etl: error: the Parquet export needs pyarrow: {install_hint('parquet')}"
    assert install_hint("parquet") == ("pip install -e '.[parquet]'" if Path.cwd() == ROOT else f"pip install -e '{ROOT}[parquet]'")
    assert not (tmp_path / "out").exists()


def test_parquet_needs_a_directory(fake, sqlite_url, tmp_path):
    result = run_cli(["export", "--format", "parquet"], cli_env(fake, sqlite_url))
    assert result.exit_code == 2 and "--output-dir" in result.stderr


def test_what_a_killed_export_leaves_is_swept_by_a_later_one(database_url, fake, tmp_path):
    """An export killed before its `finally` (kill -9, the OOM killer) left DIR/.staging-<pid>, a partial copy of
    the export, for good. A later export removes it once it is an hour unwritten; a younger one may be another
    export's, still at work, and stays."""
    import os
    import time

    from conftest import kill_when, spawn, sync

    fake.add(3000)
    assert sync(fake, database_url, "--no-hydrate").exit_code == 0
    out = tmp_path / "feed"
    for _ in range(10):  # the staging directory lives a moment: a loaded machine may not poll in time
        process = spawn(["export", "--format", "parquet", "--output-dir", str(out)], cli_env(fake, database_url))
        staging = out / f".staging-{process.pid}"
        kill_when(process, lambda staging=staging: any(staging.glob("*")))  # a table's file begun in it
        if staging.exists():
            break
    assert staging.exists()
    export(fake, database_url, out)
    assert staging.exists()
    hour_ago = time.time() - 3700
    for path in [staging, *staging.iterdir()]:
        os.utime(path, (hour_ago, hour_ago))
    export(fake, database_url, out)
    assert not staging.exists()


def test_install_hints_follow_where_aai_etl_came_from():
    checkout = {"url": "file:///home/me/aai-etl", "dir_info": {}}
    assert hint_for("parquet", checkout, "/home/me/aai-etl") == "pip install '.[parquet]'"
    assert hint_for("parquet", checkout, "/tmp") == "pip install '/home/me/aai-etl[parquet]'"
    editable = {"url": "file:///home/me/aai-etl", "dir_info": {"editable": True}}
    assert hint_for("postgres", editable, "/home/me/aai-etl") == "pip install -e '.[postgres]'"
    wheel = {"url": "file:///tmp/aai_etl-0.1.0-py3-none-any.whl", "archive_info": {}}
    assert hint_for("parquet", wheel, "/") == "pip install '/tmp/aai_etl-0.1.0-py3-none-any.whl[parquet]'"
    assert hint_for("parquet", {}, "/") == "pip install 'aai-etl[parquet]'"  # from an index: no direct URL


def test_a_failed_detail_fetch_moves_the_feed(database_url, fake, tmp_path, duck):
    # Its attempts, error and next try are columns of the feed: the union of the exports must hold them.
    items = fake.add(6)
    broken = items[3]["id"]
    fake.break_transcript(broken, Fault.status(404, {"error": "Transcript not found"}))
    synced(fake, database_url)
    first = export(fake, database_url, tmp_path)
    engine = create_engine(database_url)
    with engine.begin() as conn:  # let the backoff pass: the next fetch fails again
        conn.execute(update(transcripts).where(transcripts.c.id == broken).values(hydrate_after=func.current_timestamp()))
    engine.dispose()
    synced(fake, database_url)
    second = export(fake, database_url, tmp_path, "--since", str(first))
    assert second > first

    union = duckdb_rows(duck, sorted((tmp_path / "transcripts").glob("*.parquet")), "transcripts")
    latest: dict[str, dict] = {}
    for row in union:
        if row["id"] not in latest or row["change_seq"] > latest[row["id"]]["change_seq"]:
            latest[row["id"]] = row
    rows = {row["id"]: row for row in database_rows(database_url, "transcripts")}
    assert latest.keys() == rows.keys()
    for transcript_id, row in rows.items():
        assert {name: latest[transcript_id][name] for name in row} == row, transcript_id
    assert latest[broken]["hydrate_attempts"] == 2
