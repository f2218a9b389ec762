"""The dbt project in dbt/, built for real: on DuckDB over the Parquet feed of a synced database, and on the
PostgreSQL database the sync wrote; and its tests seen to fail on a corrupted feed.

dbt lives in a virtual environment of its own (dbt-duckdb and dbt-postgres); AAI_ETL_DBT names its `dbt`
executable. `.ci/run` installs it and sets AAI_ETL_REQUIRE_DBT=1, so that a missing dbt fails these tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from conftest import POSTGRES_URL, cli_env, empty_database, required, run_cli
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "dbt"
DBT = os.environ.get("AAI_ETL_DBT")


def _dbt() -> str:
    found = DBT if DBT and Path(DBT).is_file() else None
    return required(found, f"no dbt at AAI_ETL_DBT={DBT!r}: install dbt-duckdb and dbt-postgres in a virtual environment and set it", "AAI_ETL_REQUIRE_DBT")


def dbt(command: str, target: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`dbt COMMAND` on the project, its target/ and logs/ kept under tmp_path."""
    arguments = [
        _dbt(), command, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target", target,
        "--target-path", str(tmp_path / "dbt-target"), "--log-path", str(tmp_path / "dbt-logs"),
    ]
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("AAI_ETL_", "PG", "DBT_"))}
    return subprocess.run(arguments, env={**clean, **env}, capture_output=True, text=True, timeout=600)


def _synced(fake, database_url: str) -> None:
    fake.add(150)
    fake.add(20, status="queued")
    fake.add(6, status="error")
    done = run_cli(["sync"], cli_env(fake, database_url))
    assert done.exit_code == 0, done.output


def test_dbt_build_on_duckdb_over_the_parquet_feed_and_its_tests_bite(fake, tmp_path):
    database_url = empty_database("sqlite", tmp_path)
    _synced(fake, database_url)
    feed = tmp_path / "feed"
    exported = run_cli(["export", "--format", "parquet", "--output-dir", str(feed)], cli_env(fake, database_url))
    assert exported.exit_code == 0, exported.output
    # A second export, as a loader sees them: new transcripts, and changed ones carried again.
    fake.add(30)
    for item in fake.listing():
        if item["status"] == "queued":
            fake.set_status(item["id"], "completed")
    assert run_cli(["sync"], cli_env(fake, database_url)).exit_code == 0
    since = exported.stdout.strip()
    assert run_cli(["export", "--format", "parquet", "--output-dir", str(feed), "--since", since], cli_env(fake, database_url)).exit_code == 0

    warehouse = tmp_path / "warehouse.duckdb"
    env = {"AAI_ETL_FEED": str(feed), "AAI_ETL_DUCKDB_PATH": str(warehouse)}
    built = dbt("build", "duckdb", tmp_path, **env)
    assert built.returncode == 0, built.stdout[-4000:]

    engine = create_engine(database_url)
    with engine.connect() as conn:
        expected = dict(conn.execute(text("SELECT status, count(*) FROM transcripts GROUP BY status")).all())
        talk = conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT account, transcript_id, speaker FROM transcript_utterances) s")).scalar()
    engine.dispose()
    with duckdb.connect(str(warehouse), read_only=True) as warehouse_db:
        volume = dict(warehouse_db.execute("SELECT status, sum(transcripts) FROM daily_volume GROUP BY status").fetchall())
        speakers = warehouse_db.execute("SELECT count(*) FROM speaker_talk_time").fetchone()[0]
    assert volume == expected and talk > 0 and speakers == talk

    # The same change of a transcript twice in the feed: the uniqueness test of the source fails the build.
    first = sorted((feed / "transcripts").glob("*.parquet"))[0]
    table = pq.read_table(first)
    pq.write_table(table.slice(0, 1), feed / "transcripts" / "zz-duplicate.parquet")
    tested = dbt("test", "duckdb", tmp_path, **env)
    assert tested.returncode == 1, tested.stdout[-4000:]
    assert "FAIL 1 source_unique_combination_aai_etl_transcripts" in tested.stdout, tested.stdout[-4000:]


def test_dbt_build_on_the_postgresql_database_the_sync_wrote(fake, tmp_path):
    database_url = empty_database("postgresql", tmp_path)
    _synced(fake, database_url)
    url = make_url(POSTGRES_URL)
    env = {
        "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432), "PGUSER": url.username or "postgres",
        "PGPASSWORD": url.password or "", "PGDATABASE": url.database or "postgres", "AAI_ETL_DBT_SCHEMA": "analytics",
    }
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS analytics CASCADE"))
    built = dbt("build", "postgres", tmp_path, **env)
    assert built.returncode == 0, built.stdout[-4000:]
    with engine.connect() as conn:
        expected = dict(conn.execute(text("SELECT status, count(*) FROM transcripts GROUP BY status")).all())
        volume = dict(conn.execute(text("SELECT status, sum(transcripts) FROM analytics.daily_volume GROUP BY status")).all())
        speakers = conn.execute(text("SELECT count(*) FROM analytics.speaker_talk_time")).scalar()
        talk = conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT account, transcript_id, speaker FROM transcript_utterances) s")).scalar()
        conn.execute(text("DROP SCHEMA analytics CASCADE"))
        conn.commit()
    engine.dispose()
    assert volume == expected and talk > 0 and speakers == talk
