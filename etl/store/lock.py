"""Named locks that die with their holder: nothing a crashed run leaves behind can block the next one.

PostgreSQL: a session advisory lock, freed by the server when the connection closes. SQLite: flock() on a
file beside the database, freed by the kernel when the process exits however it exits.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from etl.errors import EtlError
from etl.store.engine import sqlite_path


class LockBusy(Exception):
    """Another process holds the lock."""


@contextmanager
def hold(conn: Connection, name: str, *, wait: bool) -> Iterator[None]:
    """Hold lock `name` for the block; raise LockBusy at once if `wait` is false and another process has it."""
    if conn.dialect.name == "postgresql":
        with _advisory(conn, name, wait):
            yield
        return
    path = sqlite_path(conn.engine)
    if path is None:  # in-memory: no other process can see the database
        yield
        return
    with _flock(f"{path}-{name}.lock", wait, _mode_of(path)):
        yield


@contextmanager
def _advisory(conn: Connection, name: str, wait: bool) -> Iterator[None]:
    # Installations in different schemas of one database are apart: their locks are too.
    schema = conn.info.get("schema")
    scoped = f"aai-etl:{schema}:{name}" if schema else f"aai-etl:{name}"
    key = int.from_bytes(hashlib.sha256(scoped.encode()).digest()[:8], "big", signed=True)
    if wait:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    elif not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
        conn.rollback()
        raise LockBusy(name)
    conn.commit()  # session-level: the lock outlives this transaction and every later one
    try:
        yield
    finally:
        if not conn.closed and not conn.invalidated:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


@contextmanager
def _flock(path: str, wait: bool, mode: int) -> Iterator[None]:
    try:
        import fcntl  # POSIX only: imported here so that everything else, --help first, works anywhere
    except ImportError:
        raise EtlError("aai-etl needs a POSIX system (Linux, macOS; on Windows, WSL) to lock a SQLite database") from None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockBusy(path) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _mode_of(database: str) -> int:
    """A lock file is as private as its database file: owner-only by default (etl.store.engine.make_engine)."""
    try:
        return os.stat(database).st_mode & 0o666
    except OSError:
        return 0o600
