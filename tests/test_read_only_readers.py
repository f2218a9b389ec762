"""Commands that only read open the database read-only: they work where they may not write, and create nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, spawn
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from etl.store.engine import make_engine


@contextmanager
def read_only_directory(path: Path) -> Iterator[None]:
    """A directory nobody may write to, root included: root ignores permission bits, not the immutable flag."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
        pytest.fail("running as root, the test needs `chattr +i` to make a directory read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_readers_work_on_a_database_in_a_read_only_directory(tmp_path, fake):
    directory = tmp_path / "ro"
    directory.mkdir()
    url = f"sqlite:///{directory / 'transcripts.db'}"
    fake.add(5)
    env = cli_env(fake, url)
    process = spawn(["sync", "--no-hydrate"], env)  # a process that ends: no -wal or -shm file is left
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert not [p for p in directory.iterdir() if p.name.endswith(("-wal", "-shm"))]
    with read_only_directory(directory):
        for args in (["status"], ["status", "--json"], ["stats"], ["export"], ["db", "current"]):
            result = run_cli(args, env)
            assert result.exit_code == 0, (args, result.output)
        assert json.loads(run_cli(["status", "--json"], env).stdout)["accounts"][0]["transcripts"] == 5
        assert len(run_cli(["export"], env).stdout.splitlines()) == 5


def test_readers_create_no_file(tmp_path, fake):
    path = tmp_path / "aai-etl.db"
    env = cli_env(fake, f"sqlite:///{path}")
    status = run_cli(["status"], env)
    assert status.exit_code == 0
    assert "schema       none yet: `aai-etl sync` or `aai-etl db upgrade` creates it" in status.stdout
    assert run_cli(["db", "current"], env).stdout.startswith("none ")
    assert run_cli(["stats"], env).exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_engine_cannot_write(database_url):
    with make_engine(database_url).connect() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        conn.commit()
    with make_engine(database_url, read_only=True).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar() == 0
        with pytest.raises(DBAPIError, match="read-only|readonly"):
            conn.execute(text("INSERT INTO probe VALUES (1)"))
