"""Alembic run from code, with the migrations that ship inside the installed package.

Alembic is imported only when there is migrating to do: a scheduled run on a current schema reads one
row of alembic_version, compares it with HEAD and moves on, which keeps an idle run's start-up short. A new,
empty database needs no migrating either: create_head makes its schema at HEAD directly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from etl.errors import DatabaseError, SchemaTooNew, UsageError
from etl.store import lock

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# The newest migration's revision. tests/test_migrations.py checks it against the scripts: a new
# migration changes it too.
HEAD = "0009"


def alembic_config(conn: Connection | None = None) -> Config:
    from importlib.resources import files

    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("etl.migrations")))
    config.attributes["connection"] = conn
    return config


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision; None before the first migration. One query when the schema exists
    (every run but the first); call it before any write of the transaction, which it ends when the
    table is missing (a failed statement ends a PostgreSQL transaction anyway)."""
    read = text("SELECT version_num FROM alembic_version")
    try:
        return conn.execute(read).scalar()
    except DBAPIError:
        conn.rollback()
        if not inspect(conn).has_table("alembic_version"):
            return None
        # The table is there now. Either another run's first upgrade committed it after the read failed (read
        # it again), or the failure was the database's own (gone, locked), which the second read raises.
        return conn.execute(read).scalar()


def head_revision() -> str:
    return HEAD


def ensure_schema(conn: Connection) -> None:
    """Bring the schema to the code's head; refuse a schema newer than the code. Safe to race."""
    if current_revision(conn) == HEAD:
        return
    with lock.hold(conn, "schema", wait=True):
        current, head = current_revision(conn), HEAD
        if current == head:
            return
        refuse_unknown(current)
        log.info("upgrading the database schema from %s to %s", current or "empty", head)
        if current is None and is_new(conn):
            create_head(conn)
        else:
            upgrade(conn, "head")


def is_new(conn: Connection) -> bool:
    """Whether the database holds none of aai-etl's tables, nor Alembic's (one that was downgraded to base
    has that): then create_head may make the schema, with nothing to migrate."""
    from etl.store.schema import metadata

    return not {*metadata.tables, "alembic_version"} & set(inspect(conn).get_table_names())


def create_head(conn: Connection) -> None:
    """Create the schema at HEAD in a new database, in one transaction, without Alembic: importing it and
    running every migration cost a first run about as much CPU as the rest of its start-up. It makes what
    the migrations make (tests/test_fresh_schema.py compares them): the tables, their columns and indexes in
    the same order, the views, the change counter at 1 (0003), on PostgreSQL moved into change_sequence
    (0007), and alembic_version at HEAD."""
    from sqlalchemy.schema import CreateIndex, CreateSequence, CreateTable, SetColumnComment

    from etl.store import schema, views

    _begin_ddl(conn)
    postgres = conn.dialect.name == "postgresql"
    schema.give_partial_indexes_their_predicate(conn.dialect.name)
    for table in schema.metadata.sorted_tables:  # metadata.create_all, with the upgraded order
        create = CreateTable(table)
        create.columns.sort(key=lambda column: _place(column.element.name, schema.UPGRADED_COLUMN_ORDER.get(table.name, [])))
        conn.execute(create)
        for index in sorted(table.indexes, key=lambda index: _place(index.name, schema.UPGRADED_INDEX_ORDER)):
            conn.execute(CreateIndex(index))
        for column in table.columns if postgres else ():  # SQLite keeps no comments
            if column.comment is not None:
                conn.execute(SetColumnComment(column))
    views.create(conn)
    # The change counter as 0003 leaves it (at 1); on PostgreSQL as 0007 leaves it, moved into the sequence.
    if postgres:
        conn.execute(CreateSequence(schema.change_sequence))
        conn.execute(text("SELECT setval('change_sequence', 1)"))
    else:
        conn.execute(schema.change_counter.insert().values(id=1, value=1))
    # As Alembic makes it.
    conn.execute(text(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    ))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD})
    conn.commit()


def _place(name: str | None, order: list[str]) -> int:
    """Where `name` goes in an order that may not name it: after every name it does (a stable sort keeps
    the tables' own order among those)."""
    return order.index(name) if name in order else len(order)


def require_current(conn: Connection) -> None:
    """For commands that only read: the schema must be there and at the code's head."""
    current, head = current_revision(conn), head_revision()
    if current == head:
        return
    refuse_unknown(current)
    where = f"is at {current}" if current else "has no schema yet"
    raise DatabaseError(f"the database {where}, this aai-etl needs {head}: run `aai-etl sync` or `aai-etl db upgrade`")


def upgrade(conn: Connection, revision: str) -> None:
    _migrate(conn, "upgrade", revision)


def downgrade(conn: Connection, revision: str, *, drop_rows: bool = False) -> dict[str, int]:
    """Downgrade to `revision`; return the tables it dropped that held rows, with their counts. Unless
    `drop_rows`, a downgrade that would drop any is rolled back whole and refused."""
    held = _rows_held(conn)
    _migrate(conn, "downgrade", revision, commit=False)
    kept = set(inspect(conn).get_table_names())
    dropped = {table: rows for table, rows in held.items() if table not in kept}
    if dropped and not drop_rows:
        conn.rollback()
        raise UsageError(
            f"downgrading to '{revision}' would drop {tables_and_rows(dropped)}: "
            "back the database up, then run again with --yes to drop them"
        )
    conn.commit()
    return dropped


def _rows_held(conn: Connection) -> dict[str, int]:
    """Each table that holds rows, with its count. The change counter's one row is no data of its own: the
    transcripts carry the numbers it hands out."""
    tables = sorted(set(inspect(conn).get_table_names()) - {"alembic_version", "change_counter"})
    counts = {table: conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() for table in tables}
    return {table: rows for table, rows in counts.items() if rows}


def tables_and_rows(tables: dict[str, int]) -> str:
    """'2 tables holding 3,050 rows (transcripts: 3,044, sync_runs: 6)'."""
    each = ", ".join(f"{table}: {rows:,}" for table, rows in tables.items())
    plural = "s" if len(tables) > 1 else ""
    return f"{len(tables)} table{plural} holding {sum(tables.values()):,} rows ({each})"


def _migrate(conn: Connection, direction: str, revision: str, *, commit: bool = True) -> None:
    """Alembic's `upgrade` or `downgrade` to `revision`; a revision it cannot resolve is one line, not its traceback."""
    from alembic import command
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    current = current_revision(conn)
    refuse_unknown(current)
    _begin_ddl(conn)
    try:
        getattr(command, direction)(alembic_config(conn), revision)
    except (CommandError, RevisionError) as exc:
        conn.rollback()
        known = ", ".join(["base", *reversed([rev.revision for rev in _script().walk_revisions("base", "heads")])])
        raise UsageError(
            f"cannot {direction} the schema from {current or 'base'} to '{revision}': {exc}; "
            f"give a revision ({known}, head), or -N / +N steps"
        ) from None
    if commit:
        conn.commit()


def _begin_ddl(conn: Connection) -> None:
    """Make the migration one transaction on SQLite too, as it is on PostgreSQL.

    Python's sqlite3 opens transactions only for INSERT, UPDATE and DELETE, so each CREATE TABLE committed
    on its own: a run killed halfway through a first migration left tables without a version, and every
    later run failed on "table already exists". SQLite's DDL is transactional once a BEGIN is issued."""
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and driver is not None and not driver.in_transaction:
        conn.exec_driver_sql("BEGIN")


def script_head() -> str:
    """The head as the migration scripts say (what HEAD must equal)."""
    return _script().get_current_head() or "base"


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def refuse_unknown(current: str | None) -> None:
    if current is None:
        return
    script = _script()
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaTooNew(
            f"the database schema is at revision {current}, which this aai-etl does not know: "
            f"it was written by a newer version (this one knows up to {script.get_current_head()}); "
            "upgrade aai-etl"
        )
