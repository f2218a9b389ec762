"""A light start: each command imports only what it needs, and a sync on a current schema reads its
version with one query. Checked in a real process, by the modules it holds when it exits (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import cli_env, stored, sync
from sqlalchemy import event

from etl.store import migrate
from etl.store.engine import make_engine

# What no plain idle sync needs: migrating, terminal bars, Parquet, metrics, and every other command's code.
NOT_FOR_AN_IDLE_SYNC = (
    "alembic", "tqdm", "pyarrow", "prometheus_client",
    "etl.tools.simulator", "etl.tools.demo", "etl.tools.check", "etl.outputs.parquet",
)


def modules_after(args: list[str], env: dict[str, str], tmp_path) -> set[str]:
    """Run `aai-etl ARGS` in a fresh interpreter (stdout and stderr not a terminal); return the modules it
    had imported when it exited."""
    report = tmp_path / "modules.json"
    program = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from etl.cli import main\n"
        f"sys.argv = ['aai-etl', *{args!r}]\n"
        "main()\n"
    )
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("ASSEMBLYAI_", "AAI_ETL_"))}
    done = subprocess.run([sys.executable, "-c", program], env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(report.read_text()))


def test_an_idle_sync_imports_only_what_it_needs(database_url, fake, tmp_path):
    fake.add(30)
    env = cli_env(fake, database_url)
    assert sync(fake, database_url).exit_code == 0  # creates the schema: the idle run below has nothing to migrate
    loaded = modules_after(["sync"], env, tmp_path)
    assert "etl.sync" in loaded
    assert sorted(loaded & set(NOT_FOR_AN_IDLE_SYNC)) == []
    if database_url.startswith("sqlite"):
        # Neither the schema's JSONB and partial indexes nor the upserts may pull in the other database's dialect.
        assert sorted(name for name in loaded if name.startswith(("sqlalchemy.dialects.postgresql", "psycopg"))) == []


@pytest.mark.parametrize("args", [["sync"], ["db", "upgrade"]])
def test_a_new_database_gets_its_schema_without_alembic(database_url, fake, tmp_path, args):
    """The first run on an empty database creates the schema at head directly (etl.store.migrate.create_head)."""
    fake.add(30)
    loaded = modules_after(args, cli_env(fake, database_url), tmp_path)
    assert "etl.store.migrate" in loaded and "alembic" not in loaded
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD
    engine.dispose()
    assert args != ["sync"] or len(stored(database_url)) == 30


def test_a_database_at_an_older_revision_is_migrated_by_alembic(database_url, fake, tmp_path):
    """The check above can see Alembic: it is imported where there is migrating to do."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "0006")
    engine.dispose()
    loaded = modules_after(["db", "upgrade"], cli_env(fake, database_url), tmp_path)
    assert "alembic" in loaded


def test_metrics_import_their_library_when_asked_for(sqlite_url, fake, tmp_path):
    """The check above can see a module that is imported: with --metrics-file, prometheus_client is."""
    fake.add(3)
    env = cli_env(fake, sqlite_url)
    assert sync(fake, sqlite_url).exit_code == 0
    loaded = modules_after(["sync", "--metrics-file", str(tmp_path / "aai_etl.prom")], env, tmp_path)
    assert "prometheus_client" in loaded
    assert (tmp_path / "aai_etl.prom").exists()


def test_help_imports_neither_sqlalchemy_nor_requests(tmp_path):
    loaded = modules_after(["--help"], {}, tmp_path)
    assert "etl.cli" in loaded
    assert sorted(name for name in loaded if name.split(".")[0] in ("sqlalchemy", "requests", "urllib3", "alembic")) == []


@pytest.mark.parametrize("args", [["stats", "--help"], ["export", "--help"], ["config", "example"]])
def test_other_light_commands_import_no_database_library(args, tmp_path):
    loaded = modules_after(args, {}, tmp_path)
    assert sorted(name for name in loaded if name.split(".")[0] in ("sqlalchemy", "requests")) == []


def test_a_current_schema_is_checked_with_one_query(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.ensure_schema(conn)
        conn.commit()
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        migrate.ensure_schema(conn)
    engine.dispose()
    assert statements == ["SELECT version_num FROM alembic_version"]


def test_a_database_without_a_schema_has_no_revision(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) is None
        migrate.ensure_schema(conn)  # the failed read left the connection usable
        assert migrate.current_revision(conn) == migrate.HEAD
    engine.dispose()
