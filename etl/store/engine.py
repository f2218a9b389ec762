"""Engines for the two supported databases, set up the way the sync needs them."""

from __future__ import annotations

import glob
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from etl.errors import CannotConnect, DatabaseError, DatabaseUrlError, install_hint
from etl.model.storable import dumps, loads

SQLITE_HEADER = b"SQLite format 3\x00"
_EMPTY_CHECKS = 20  # at 0.1 s: how long an empty file may take to become a database
SUPPORTED = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
T = TypeVar("T")


def parse_url(database_url: str) -> URL:
    """The URL as SQLAlchemy reads it; plain postgresql:// means psycopg 3, the driver aai-etl ships with."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseUrlError(f"the database URL is not a URL: expected {SUPPORTED}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise DatabaseUrlError(
            f"the database URL {masked(url)} uses driver '{url.drivername}', which aai-etl does not support: "
            f"use {SUPPORTED}"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # An in-memory database vanishes when the process exits: a sync into it would throw its work away.
        raise DatabaseUrlError(f"{masked(url)} is an in-memory database, gone when aai-etl exits: name a file, {SUPPORTED}")
    return url


def masked(url: URL | str) -> str:
    """The URL with any password replaced by ***, for every place a URL is shown."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unreadable database URL>"
    return url.render_as_string(hide_password=True)


# JSON read and written with every number exact (etl.model.storable), `raw` and bodies on both databases alike.
_JSON = {"json_serializer": dumps, "json_deserializer": loads}


def make_engine(
    database_url: str, private_files: bool = True, *, read_only: bool = False, schema: str = "public",
    connect_timeout: int | None = None,
) -> Engine:
    """An engine for the URL; `private_files`: a new SQLite database file is readable by its owner only;
    `read_only` for commands that only read: they work on a database they may not write to, and never create one;
    `schema`: PostgreSQL's schema for everything aai-etl keeps (see _in_schema); `connect_timeout`: the seconds a
    PostgreSQL connection may take (the database_connect_timeout setting), unless the URL sets its own."""
    url = parse_url(database_url)
    try:
        if url.get_backend_name() == "sqlite":
            if read_only:
                return create_engine(url, creator=_sqlite_reader(_sqlite_file(url)), **_JSON)
            engine = create_engine(url, **_JSON)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "do_connect", _sqlite_connector(url, private_files))
            return engine
        # Without a timeout, a server host that drops packets holds every command for minutes (the kernel's
        # SYN retries), and the metrics step, which connects again, as long once more.
        connect_args = {} if connect_timeout is None or "connect_timeout" in url.query else {"connect_timeout": connect_timeout}
        options = {"execution_options": {"postgresql_readonly": True}} if read_only else {}
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options, **_JSON)
        if schema != "public":
            # First, before SQLAlchemy's own first query reads the connection's default schema.
            event.listen(engine, "connect", _in_schema(schema, create=not read_only), insert=True)
        return engine
    except (NoSuchModuleError, ModuleNotFoundError):
        raise DatabaseUrlError(
            f"the driver for {masked(url)} is not installed: {install_hint('postgres')}"
        ) from None


def _in_schema(schema: str, create: bool):
    """Each new PostgreSQL connection's search_path: the schema alone, so every table, view, sequence and
    alembic_version is made and read there, never in public; a writer creates the schema if it is missing.
    Committed, because a rolled-back SET is undone. The name is checked by the settings (a lowercase name)."""

    def use(dbapi_connection, connection_record) -> None:
        with dbapi_connection.cursor() as cursor:
            if create:
                # Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists.
                cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
                if cursor.fetchone() is None:
                    try:
                        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    except dbapi_connection.IntegrityError:  # another process created it this very moment
                        dbapi_connection.rollback()
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_connection.commit()
        connection_record.info["schema"] = schema

    return use


def connect(engine: Engine) -> Connection:
    """A connection, or one line saying which database could not be reached and why."""
    path = sqlite_path(engine)
    if path is not None:
        _refuse_non_sqlite(path)
    try:
        return engine.connect()
    except DBAPIError as exc:
        if engine.dialect.name != "sqlite":
            raise CannotConnect(
                f"cannot connect to the database {masked(engine.url)}: {first_line(exc)}; check the URL and that the server is up"
            ) from None
        path = _sqlite_file(engine.url)
        raise CannotConnect(f"cannot open the SQLite database {path}: {first_line(exc)}{_why_not(path)}") from None


def _sqlite_file(url: URL) -> str:
    return os.path.abspath(url.database or "")


def _why_not(path: str) -> str:
    """What to check when SQLite cannot open or create a file: its directory or its permissions."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return f"; the directory {directory} does not exist"
    if not os.path.exists(path):
        return f"; check that you may create files in {directory}"
    return f"; check that you may read and write {path} and create files beside it in {directory}"


def _sqlite_reader(path: str):
    """Connections that cannot write: for status, stats and export, which must not create or change a file."""
    uri = f"file:{quote(path)}?mode=ro"

    def connect() -> sqlite3.Connection:
        if not os.path.exists(path):
            # Nothing written yet: read an empty database (it says "no schema yet") and create no file.
            return sqlite3.connect(":memory:", check_same_thread=False)
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA schema_version")  # reading a WAL database needs its -shm file
            return connection
        except sqlite3.OperationalError:
            connection.close()
        # A WAL database whose -shm file cannot be created (a read-only directory) has no writer either (a
        # writer would have created that file): it can only be read as unchanging.
        return sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)

    return connect


def first_line(exc: DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's SQL echo and background link."""
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# PostgreSQL's classes of errors about a value given (data exception, integrity constraint violation, a size
# limit such as an index row or a jsonb too large): the same value fails again on every run.
_VALUE_ERROR_CLASSES = ("22", "23", "54")


def refuses_value(conn: Connection, exc: DBAPIError) -> bool:
    """Whether the database refused a value it was given, which may cost only the item that holds it, rather
    than failed itself: a lock or statement timeout, a deadlock, a full disk, a lost connection. Those must end
    the run with the page uncommitted: skipping the page's items instead moved the cursor past transcripts
    that no later run lists again."""
    error = exc.orig
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _VALUE_ERROR_CLASSES
    dbapi = conn.dialect.loaded_dbapi  # SQLite's, and PostgreSQL errors raised in the driver before sending
    return isinstance(error, (dbapi.DataError, dbapi.IntegrityError))


def store_or_refuse(conn: Connection, items: list[T], store: Callable[[list[T]], None]) -> list[tuple[T, str]]:
    """Store `items` with `store` in one savepoint; if the database refuses a value, each in its own, so that
    only the items it refuses are lost, never the others. Returns those, each with the database's reason.
    Any other database error is raised (see refuses_value)."""
    try:
        with conn.begin_nested():
            store(items)
        return []
    except DBAPIError as exc:
        if not refuses_value(conn, exc):
            raise
    refused = []
    for item in items:
        try:
            with conn.begin_nested():
                store([item])
        except DBAPIError as exc:
            if not refuses_value(conn, exc):
                raise
            refused.append((item, first_line(exc)))
    return refused


def _refuse_non_sqlite(path: str) -> None:
    """Refuse a file that exists but is no SQLite database: an empty one would otherwise be silently taken
    for a new database. A file another run is creating this very moment is empty for a moment: wait it out."""
    for _ in range(_EMPTY_CHECKS):
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return  # a new database: SQLite creates it
        except OSError:
            return  # unreadable: SQLite's own error says why
        if header:
            break
        time.sleep(0.1)
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not a SQLite database"
        raise DatabaseError(
            f"the database file {path} is {what}: point database_url at a SQLite database file, "
            "or at a path that does not exist yet for a new one"
        )


def _sqlite_connector(url: URL, private_files: bool):
    """SQLAlchemy's do_connect for a SQLite file: a new file is created whole (see _create_whole), and with
    `private_files` readable by its owner only. SQLite creates the file (and later its -wal and -shm files,
    with the same permissions) with the process's umask: under the usual 022 that makes transcript text
    world-readable."""
    path = _sqlite_file(url)
    uri = bool(url.query.get("uri"))  # a file: URI with options of its own: left to SQLite

    def do_connect(dialect, _record, cargs, cparams):
        previous = os.umask(0o077) if private_files else None
        try:
            if os.path.exists(path):
                sweep_side_files(path)
            elif not uri:
                _create_whole(path)
            return dialect.connect(*cargs, **cparams)
        finally:
            if previous is not None:
                os.umask(previous)

    return do_connect


def _create_whole(path: str) -> None:
    """Make a new database file appear at `path` already a SQLite database, never as an empty file.

    SQLite creates the file empty and writes its header only when the connection first writes (the WAL
    pragma): a first run killed between the two (a cron timeout, the OOM killer) left an empty file, which
    every later run refuses (_refuse_non_sqlite). So the file is made beside it under a name of its own,
    given its header, and hard-linked into place, which fails rather than replace a file another run
    created meanwhile. A run killed before the link leaves only that side file, which sweep_side_files
    removes later. Where the file system has no hard links, SQLite creates the file itself, as before."""
    side = f"{path}{_SIDE_FILE}{os.getpid()}"
    try:
        connection = sqlite3.connect(side)
        try:
            connection.execute("PRAGMA journal_mode=WAL")  # writes the header, with WAL mode in it
        finally:
            connection.close()  # the last connection: SQLite folds and removes the side file's -wal and -shm
    except sqlite3.Error:
        return  # cannot create files there: SQLite's own attempt at `path` says why
    try:
        os.link(side, path)
    except FileExistsError:
        pass  # another run created the database first: it is the one to use
    except OSError:
        pass  # no hard links here
    finally:
        os.unlink(side)


_SIDE_FILE = "-creating-"  # beside the database, as SQLite's -wal and -shm and aai-etl's lock files are
_SIDE_FILE_AGE = 60  # seconds: older than any creation takes


def sweep_side_files(path: str) -> None:
    """Remove what _create_whole left of a run killed while it created the database (a small file per kill)."""
    for side in glob.glob(f"{glob.escape(path)}{_SIDE_FILE}*"):
        try:
            if time.time() - os.path.getmtime(side) > _SIDE_FILE_AGE:
                os.unlink(side)
        except OSError:
            pass  # gone already, or not ours to remove


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets analysts read while a sync writes; NORMAL sync is crash-safe in WAL mode (a killed process
    # loses nothing committed). busy_timeout makes a reader wait for a write rather than fail at once.
    # busy_timeout first: switching to WAL needs a moment of exclusive access, which a concurrent first
    # run (migrating the new file) may hold.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Copy the WAL into the database every 10,000 pages (about 40 MB) rather than SQLite's 1,000: a
    # backfill rewrites the same index pages commit after commit, and each checkpoint writes them again
    # and waits for the disk. Measured on a 100,000-row first insert in 200-row commits: 23% less time.
    # Nothing committed is less safe; the WAL is only longer between checkpoints.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def sqlite_path(engine: Engine) -> str | None:
    """The database file of a SQLite engine; None for PostgreSQL or an in-memory database."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return None if not database or database == ":memory:" else database
