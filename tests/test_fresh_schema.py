"""A new database gets its schema at HEAD without Alembic (etl.store.migrate.create_head): exactly what the
migrations make, down to the columns' order, the index predicates, the views and the change counter; and
Alembic takes it from there, both ways."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_table_equals_api, cli_env, empty_database, run_cli, spawn, sync
from sqlalchemy import Connection, inspect, text

from etl.store import migrate, views
from etl.store.engine import make_engine

# Indexes that Alembic's rebuilds of transcripts (0002, 0003) recreate in an order of their own, not the same twice.
REBUILT = {"ix_transcripts_created", "ix_transcripts_status_created", "ix_transcripts_hydrated_at_account", "ix_transcripts_change_seq"}


def words(sql: str) -> str:
    """SQL with its spacing and quotes aside (SQLite quotes the name of a table a migration rebuilt)."""
    return " ".join(re.sub(r"([(),])", r" \1 ", sql.replace('"', "")).split())


def describe(conn: Connection) -> dict[str, object]:
    """Everything a schema is made of, as the database itself reports it, in comparable form."""
    inspector = inspect(conn)
    described: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        described[f"table {table}"] = {
            # In order: a new database's columns are in the order an upgraded one has them.
            "columns": [
                (column["name"], str(column["type"]), column["nullable"], column["default"], column.get("comment"))
                for column in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": sorted(map(repr, inspector.get_foreign_keys(table))),
            "indexes": sorted(
                (index["name"], index["column_names"], bool(index["unique"]), {k: str(v) for k, v in index.get("dialect_options", {}).items()})
                for index in inspector.get_indexes(table)
            ),
            "unique constraints": sorted(map(repr, inspector.get_unique_constraints(table))),
        }
    described["views"] = sorted(inspector.get_view_names())
    # Each table's indexes in the order they were made: a planner's tie-break (etl.store.schema.UPGRADED_INDEX_ORDER).
    made = (
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' ORDER BY rowid" if conn.dialect.name == "sqlite" else
        "SELECT indrelid::regclass::text, indexrelid::regclass::text FROM pg_index "
        "WHERE indrelid::regclass::text NOT LIKE 'pg_%' ORDER BY indexrelid::oid"
    )
    for table, index in conn.execute(text(made)):
        described.setdefault(f"index order {table}", []).append("(rebuilt by a migration)" if index in REBUILT else index)
    if conn.dialect.name == "sqlite":
        # The statements SQLite keeps, word for word: columns and their types, index predicates, view bodies.
        for kind, name, sql in conn.execute(text("SELECT type, name, sql FROM sqlite_master")):
            described[f"{kind} {name}"] = words(sql or "")
    else:
        queries = {
            "index": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
            "view": "SELECT viewname, pg_get_viewdef(viewname::regclass, true) FROM pg_views WHERE schemaname = 'public'",
            "constraint": "SELECT conrelid::regclass || '.' || conname, pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE connamespace = 'public'::regnamespace",
            "sequence": "SELECT sequencename, (data_type, start_value, min_value, max_value, increment_by, cycle, cache_size)::text "
                        "FROM pg_sequences WHERE schemaname = 'public'",
        }
        for kind, query in queries.items():
            for name, definition in conn.execute(text(query)):
                described[f"{kind} {name}"] = definition
        for (name,) in conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")):
            described[f"sequence {name} state"] = tuple(conn.execute(text(f"SELECT last_value, is_called FROM {name}")).one())
    described["change_counter rows"] = conn.execute(text("SELECT id, value FROM change_counter ORDER BY id")).all()
    described["alembic_version rows"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return described


# A first run's fast path, in an interpreter of its own: create_head gives the partial indexes their PostgreSQL
# predicate (etl.store.schema keeps it once given), which an earlier test in this process may have done.
CREATE_HEAD = """
import sys
from etl.store import migrate
from etl.store.engine import make_engine
with make_engine(sys.argv[1]).connect() as conn:
    assert migrate.is_new(conn)
    migrate.create_head(conn)
"""


def made_by(how: str, kind: str, directory: Path) -> dict[str, object]:
    url = empty_database(kind, directory)
    if how == "create_head":
        subprocess.run([sys.executable, "-c", CREATE_HEAD, url], check=True, timeout=120)
    engine = make_engine(url)
    with engine.connect() as conn:
        if how == "migrations":
            migrate.upgrade(conn, "head")  # Alembic, every migration from base
        described = describe(conn)
    engine.dispose()
    return described


def test_a_new_database_gets_what_the_migrations_make(database_url, tmp_path):
    kind = make_engine(database_url).dialect.name
    created, migrated = made_by("create_head", kind, tmp_path), made_by("migrations", kind, tmp_path)
    assert sorted(created) == sorted(migrated)
    for key, value in migrated.items():
        assert created[key] == value, key
    # What the comparison covers, so that it cannot pass by comparing nothing.
    assert set(views.VIEWS) == set(migrated["views"])
    assert "WHERE" in str(migrated["index ix_transcripts_pending"]) and "WHERE" in str(migrated["index ix_transcripts_hydration_queue"])
    assert migrated["alembic_version rows"] == [(migrate.HEAD,)]
    if kind == "postgresql":
        assert migrated["change_counter rows"] == [] and migrated["sequence change_sequence state"] == (1, True)
    else:
        assert migrated["change_counter rows"] == [(1, 1)]


def test_a_new_database_downgrades_and_upgrades_with_alembic(database_url, fake):
    env = cli_env(fake, database_url)
    fake.add(20)
    created = run_cli(["db", "upgrade"], env)
    assert created.stdout.strip() == f"schema at {migrate.HEAD}"
    assert f"upgrading the database schema from empty to {migrate.HEAD}" in created.stderr
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)
    assert run_cli(["db", "downgrade", "base", "--yes"], env).stdout.startswith("schema at base; dropped ")
    assert run_cli(["db", "upgrade"], env).stdout.strip() == f"schema at {migrate.HEAD}"  # through Alembic: alembic_version is there
    fake.add(5)
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)


def test_a_creation_that_fails_leaves_nothing_behind(database_url):
    """One transaction, on SQLite too: here a view in the way of the last views fails it after every table."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        conn.execute(text("CREATE VIEW daily_topics AS SELECT 1 AS one"))
        conn.commit()
        with pytest.raises(Exception, match="already exists"):
            migrate.ensure_schema(conn)
        conn.rollback()
        assert inspect(conn).get_table_names() == []
        conn.execute(text("DROP VIEW daily_topics"))
        conn.commit()
        migrate.ensure_schema(conn)
        assert migrate.current_revision(conn) == migrate.HEAD
    engine.dispose()


def test_racing_first_upgrades_create_the_schema_once(database_url, fake):
    """Two processes on one new database: one creates the schema, the other waits for the lock and finds HEAD."""
    processes = [spawn(["db", "upgrade"], cli_env(fake, database_url)) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert [out.strip() for out, err in outputs] == [f"schema at {migrate.HEAD}"] * 2
    assert sum("upgrading the database schema from empty" in err for out, err in outputs) == 1


def test_a_version_table_another_run_commits_while_the_read_fails_is_read(database_url):
    """The instant the racing test above hit in CI, made certain: this run's read of alembic_version fails
    (no table yet), and before it looks for the table, another run's first upgrade commits the schema. The
    run reads the version (HEAD) rather than taking the table it now finds for a broken database."""
    from sqlalchemy import event

    engine, other = make_engine(database_url), make_engine(database_url)

    def another_run_upgrades_meanwhile(context) -> None:
        if "alembic_version" in str(context.statement) and not inspect(other).has_table("alembic_version"):
            with other.connect() as conn:
                migrate.ensure_schema(conn)

    event.listen(engine, "handle_error", another_run_upgrades_meanwhile)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD
        migrate.ensure_schema(conn)  # and finds nothing to do
    engine.dispose()
    other.dispose()
