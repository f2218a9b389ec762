"""The migrations build exactly the schema the code describes, both ways, on both databases."""

from __future__ import annotations

import signal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import cli_env, run_cli, spawn, sync, wait_until
from sqlalchemy import create_engine, inspect, text

from etl.errors import SchemaTooNew
from etl.store import migrate
from etl.store.engine import make_engine
from etl.store.schema import metadata


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "head")
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []


def test_the_code_knows_the_newest_migration():
    assert migrate.HEAD == migrate.script_head()


def test_upgrade_downgrade_upgrade(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "head")
        migrate.downgrade(conn, "base")
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(conn, "head")
        assert {"transcripts", "sync_cursors", "sync_runs"} <= set(inspect(conn).get_table_names())
        assert migrate.current_revision(conn) == migrate.head_revision()


def test_sync_creates_the_schema_on_an_empty_database(database_url, fake):
    fake.add(3)
    result = sync(fake, database_url)
    assert result.exit_code == 0, result.output
    assert f"upgrading the database schema from empty to {migrate.head_revision()}" in result.stderr


def test_schema_newer_than_the_code_is_refused(database_url, fake):
    fake.add(3)
    assert sync(fake, database_url).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    result = sync(fake, database_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "aai-etl: error: the database schema is at revision f00dfeed9999, which this aai-etl does not know: "
        f"it was written by a newer version (this one knows up to {migrate.head_revision()}); upgrade aai-etl"
    )
    with make_engine(database_url).connect() as conn, pytest.raises(SchemaTooNew):
        migrate.upgrade(conn, "head")


def test_db_commands(database_url, fake):
    env = cli_env(fake, database_url)
    assert run_cli(["db", "current"], env).stdout.strip() == f"none (head is {migrate.head_revision()})"
    assert run_cli(["db", "upgrade"], env).stdout.strip() == f"schema at {migrate.head_revision()}"
    assert run_cli(["db", "current"], env).stdout.strip() == f"{migrate.head_revision()} (head)"
    assert run_cli(["db", "downgrade", "base"], env).stdout.strip() == "schema at base"


def test_a_migration_that_fails_halfway_leaves_nothing_behind(sqlite_url):
    """A first migration cut short (a kill, a failure) must not leave tables without a version, on SQLite too:
    here a table in the way of migration 0003 makes it fail after 0001 and 0002 have created theirs."""
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE change_counter (blocker INTEGER)"))
        conn.commit()
        with pytest.raises(Exception, match="already exists"):
            migrate.ensure_schema(conn)
        conn.rollback()
        assert set(inspect(conn).get_table_names()) == {"change_counter"}
        conn.execute(text("DROP TABLE change_counter"))
        conn.commit()
        migrate.ensure_schema(conn)
        assert migrate.current_revision(conn) == migrate.HEAD
    engine.dispose()


def test_change_numbers_continue_across_0007_both_ways(database_url):
    """PostgreSQL's numbers move from change_counter's row to the sequence and back; none is handed out twice."""
    from etl.store.changes import next_change_seq

    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "0006")
        conn.execute(text("UPDATE change_counter SET value = 41"))
        conn.commit()
        migrate.upgrade(conn, "head")
        assert next_change_seq(conn) == 42
        conn.commit()
        postgres = conn.dialect.name == "postgresql"
        # On PostgreSQL the row is gone: an older aai-etl still running fails rather than take a number.
        assert conn.execute(text("SELECT count(*) FROM change_counter")).scalar() == (0 if postgres else 1)
        migrate.downgrade(conn, "0006")
        assert conn.execute(text("SELECT value FROM change_counter")).scalar() == 42
        migrate.upgrade(conn, "head")
        assert next_change_seq(conn) == 43
        conn.commit()
    engine.dispose()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_signal_while_a_migration_copies_a_table_is_one_line(database_url, fake, signum):
    """The signal's KeyboardInterrupt, raised inside the statement, invalidated the connection; Alembic's batch
    mode (0002 recreates transcripts both ways) then dropped its copy of the table on that connection, and the
    PendingRollbackError of that replaced the interrupt: a traceback and exit 1. The signal is sent while the
    copy (INSERT INTO _alembic_tmp_transcripts ... SELECT) runs, as pg_stat_activity shows."""
    fake.add(2000)
    assert sync(fake, database_url, "--no-hydrate").exit_code == 0
    env = cli_env(fake, database_url)
    assert run_cli(["db", "downgrade", "0002"], env).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as conn:  # more rows: a copy of seconds, long enough to be caught in the act
        names = [column["name"] for column in inspect(conn).get_columns("transcripts")]
        copied = ", ".join("s.id || 'x' || g" if name == "id" else f"s.{name}" for name in names)
        conn.execute(text(
            f"INSERT INTO transcripts ({', '.join(names)}) SELECT {copied} FROM transcripts s, generate_series(1, 150) g"
        ))

    def copying() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'INSERT INTO _alembic_tmp_transcripts%'"
            )).scalar())

    process = spawn(["db", "downgrade", "0001"], env)
    wait_until(copying, timeout=60)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    engine.dispose()
    assert (process.returncode, err) == (130, "aai-etl: error: interrupted; everything committed so far is kept\n")
    assert run_cli(["db", "current"], env).stdout.startswith("0002 ")  # the migration rolled back whole
