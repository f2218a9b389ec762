"""database_schema: on PostgreSQL everything aai-etl keeps lives in that schema, created if missing, never in public."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import API_KEY, cli_env, empty_database, run_cli
from sqlalchemy import create_engine, text

from etl.config import Settings
from etl.store.migrate import HEAD
from etl.tools.simulator import FakeAssemblyAI

SCHEMA = "aai_etl"


@pytest.fixture
def postgres_url(tmp_path) -> Iterator[str]:
    url = empty_database("postgresql", tmp_path)
    drop = text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(drop)
    yield url
    with engine.begin() as conn:
        conn.execute(drop)
    engine.dispose()


def relations(url: str, schema: str) -> dict[str, str]:
    """Every table, view and sequence in the schema, by kind (r, v, S)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'v', 'S', 'm', 'p')"
        ), {"schema": schema}).all()
    engine.dispose()
    return dict(rows)


def test_every_command_keeps_to_the_schema_and_public_stays_empty(postgres_url, fake, tmp_path):
    fake.add(5)
    env = cli_env(fake, postgres_url, AAI_ETL_DATABASE_SCHEMA=SCHEMA)
    assert run_cli(["sync"], env).exit_code == 0
    kept = relations(postgres_url, SCHEMA)
    assert {"transcripts", "sync_runs", "alembic_version"} <= {name for name, kind in kept.items() if kind == "r"}
    assert "daily_status_counts" in kept and kept["daily_status_counts"] == "v"
    assert kept["change_sequence"] == "S"
    assert relations(postgres_url, "public") == {}

    out = tmp_path / "changes.jsonl"
    assert run_cli(["export", "--format", "jsonl", "--output", str(out)], env).exit_code == 0
    assert len(out.read_text().splitlines()) == 5
    status = run_cli(["status", "--max-age", "1h"], env)
    assert status.exit_code == 0, status.output
    # Through Alembic too: down one revision and back up, alembic_version in the schema all along.
    assert run_cli(["db", "downgrade", "-1"], env).exit_code == 0
    assert run_cli(["db", "upgrade"], env).exit_code == 0
    current = run_cli(["db", "current"], env)
    assert current.exit_code == 0 and HEAD in current.output
    check = run_cli(["check"], env)
    assert f"schema {HEAD} (up to date)" in check.output, check.output
    assert relations(postgres_url, "public") == {}


def test_a_second_installation_in_public_keeps_apart(postgres_url, fake):
    fake.add(5)
    assert run_cli(["sync", "--no-hydrate"], cli_env(fake, postgres_url, AAI_ETL_DATABASE_SCHEMA=SCHEMA)).exit_code == 0
    with FakeAssemblyAI(api_key=API_KEY) as other:
        other.add(3)
        # The default schema: where the URL's search_path points, public here.
        assert run_cli(["sync", "--no-hydrate"], cli_env(other, postgres_url)).exit_code == 0
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        stored = {schema: conn.execute(text(f"SELECT count(*) FROM {schema}.transcripts")).scalar() for schema in ("public", SCHEMA)}
    engine.dispose()
    assert stored == {"public": 3, SCHEMA: 5}


def test_a_schema_name_that_needs_quoting_is_one_line(sqlite_url, fake):
    result = run_cli(["status"], cli_env(fake, sqlite_url, AAI_ETL_DATABASE_SCHEMA="Analytics-2"))
    assert result.exit_code == 2
    assert result.stderr == (
        "aai-etl: error: environment variable AAI_ETL_DATABASE_SCHEMA: must be a lowercase PostgreSQL name (a-z, 0-9, _; not starting with"
        " a digit), not 'Analytics-2'\n"
    )


def test_the_dbt_sources_default_to_the_setting_default():
    project = Path(__file__).resolve().parent.parent / "dbt"
    assert yaml.safe_load((project / "dbt_project.yml").read_text())["vars"]["aai_etl_schema"] == Settings().database_schema
    sources = yaml.safe_load((project / "models" / "sources.yml").read_text())["sources"]
    assert [source["schema"] for source in sources] == ["{{ var('aai_etl_schema') }}"] * len(sources)


def test_a_reader_creates_no_schema(postgres_url, fake):
    env = cli_env(fake, postgres_url, AAI_ETL_DATABASE_SCHEMA=SCHEMA)
    result = run_cli(["status"], env)
    assert result.exit_code == 0 and "none yet" in result.output
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": SCHEMA}).scalar() == 0
    engine.dispose()
