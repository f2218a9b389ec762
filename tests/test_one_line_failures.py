"""Every expected failure is one line on stderr with the documented exit status, never a traceback."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, spawn, stored, sync, wait_until

from etl.store import migrate


def one_line(result, status: int) -> str:
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("aai-etl: error: ")
    return line.removeprefix("aai-etl: error: ")


# The migrations are numbered 0001 up to the head, one after the other.
HEAD = migrate.HEAD
PREVIOUS, UNKNOWN = f"{int(HEAD) - 1:04d}", f"{int(HEAD) + 1:04d}"
REVISIONS = ", ".join(f"{number:04d}" for number in range(1, int(HEAD) + 1))


@pytest.mark.parametrize("args, says", [
    (["db", "upgrade", "zzz"], f"cannot upgrade the schema from {HEAD} to 'zzz': Can't locate revision identified by 'zzz'"),
    (["db", "upgrade", "+1"], f"cannot upgrade the schema from {HEAD} to '+1': Relative revision +1 didn't produce 1 migrations"),
    (["db", "downgrade", "9999"], f"cannot downgrade the schema from {HEAD} to '9999': Can't locate revision identified by '9999'"),
    (["db", "downgrade", UNKNOWN], f"cannot downgrade the schema from {HEAD} to '{UNKNOWN}': Can't locate revision identified by '{UNKNOWN}'"),
])
def test_a_revision_alembic_cannot_resolve_is_one_line(database_url, fake, args, says):
    env = cli_env(fake, database_url)
    assert run_cli(["db", "upgrade"], env).exit_code == 0
    message = one_line(run_cli(args, env), 2)
    assert message.startswith(says)
    assert message.endswith(f"give a revision (base, {REVISIONS}, head), or -N / +N steps")
    assert run_cli(["db", "current"], env).stdout.strip() == f"{HEAD} (head)"


def test_db_downgrade_minus_one_as_documented(database_url, fake):
    env = cli_env(fake, database_url)
    assert run_cli(["db", "upgrade"], env).exit_code == 0
    result = run_cli(["db", "downgrade", "-1"], env)
    assert (result.exit_code, result.stdout) == (0, f"schema at {PREVIOUS}\n")
    assert run_cli(["db", "upgrade", "+1"], env).stdout == f"schema at {HEAD}\n"


def test_export_to_a_missing_directory_is_one_line(database_url, fake, tmp_path):
    fake.add(2)
    sync(fake, database_url)
    target = tmp_path / "missing" / "x.jsonl"
    message = one_line(run_cli(["export", "--output", str(target)], cli_env(fake, database_url)), 1)
    assert message == f"cannot write {target}: No such file or directory; check the path and its permissions"


def test_an_in_memory_sqlite_url_is_refused(fake):
    result = sync(fake, "sqlite://")
    assert one_line(result, 2).startswith("sqlite:// is an in-memory database, gone when aai-etl exits: name a file")


def test_an_inverted_stats_range_is_refused(database_url, fake):
    result = run_cli(["stats", "--since", "2026-05-10", "--until", "2026-05-01"], cli_env(fake, database_url))
    assert one_line(result, 2) == "--since 2026-05-10 is after --until 2026-05-01: give the earlier day as --since"


def test_a_sqlite_file_that_cannot_be_opened_names_its_path_and_the_setting_source(tmp_path, fake):
    path = tmp_path / "no-such-dir" / "x.db"
    by_flag = run_cli(["sync", "--no-hydrate", "--database-url", f"sqlite:///{path}"], cli_env(fake, "sqlite:///unused.db"))
    assert one_line(by_flag, 1) == (
        f"cannot open the SQLite database {path}: unable to open database file; "
        f"the directory {path.parent} does not exist (database_url from flag --database-url)"
    )
    by_variable = sync(fake, f"sqlite:///{path}")
    assert one_line(by_variable, 1).endswith("(database_url from environment variable AAI_ETL_DATABASE_URL)")
    assert "server" not in by_variable.stderr


def test_export_into_a_closed_pipe_stops_quietly(database_url, fake):
    fake.add(600)
    assert sync(fake, database_url).exit_code == 0
    process = spawn(["export"], cli_env(fake, database_url))
    first = process.stdout.readline()
    process.stdout.close()  # `| head -1`
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert json.loads(first)["change_seq"] >= 1
    assert err == ""  # no traceback, no error, and no watermark for an export that did not finish


def test_an_interrupted_export_leaves_no_partial_file(database_url, fake, tmp_path):
    fake.add(600)
    assert sync(fake, database_url).exit_code == 0
    target = tmp_path / "changes.jsonl"
    partial = Path(f"{target}.partial")
    os.mkfifo(partial)  # the export writes here; it blocks once the pipe is full, mid-export
    reader = os.open(partial, os.O_RDONLY | os.O_NONBLOCK)
    process = spawn(["export", "--output", str(target)], cli_env(fake, database_url))
    try:
        wait_until(lambda: _buffered(reader) >= 32_768)  # half the pipe: how full it gets depends on the writes
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        os.close(reader)
    assert process.returncode == 130
    assert err == "aai-etl: error: interrupted; everything committed so far is kept\n"
    assert not partial.exists() and not target.exists()


def _buffered(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def test_a_reader_on_an_empty_database_says_there_is_no_schema_yet(database_url, fake):
    message = one_line(run_cli(["stats"], cli_env(fake, database_url)), 1)
    assert message == f"the database has no schema yet, this aai-etl needs {migrate.HEAD}: run `aai-etl sync` or `aai-etl db upgrade`"


def test_without_fcntl_help_works_and_a_sqlite_sync_says_posix_only(tmp_path, fake):
    """A system without flock (Windows): --help works; a SQLite sync says why it cannot, not an ImportError."""
    code = "import sys; sys.modules['fcntl'] = None; from etl.cli import main; main()"
    env = {**os.environ, **cli_env(fake, f"sqlite:///{tmp_path / 'x.db'}")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, env=env)

    shown = run("--help")
    assert shown.returncode == 0 and "Usage:" in shown.stdout, shown.stderr
    synced = run("sync", "--no-hydrate")
    assert (synced.returncode, synced.stderr) == (
        1, "aai-etl: error: aai-etl needs a POSIX system (Linux, macOS; on Windows, WSL) to lock a SQLite database\n"
    )


def _closing(descriptor: int, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The installed aai-etl started with one standard descriptor closed, as `2>&-` or a supervisor leaves it."""
    process = spawn(args, env, preexec_fn=lambda: os.close(descriptor))
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_started_with_stderr_closed_a_sync_still_syncs(database_url, fake):
    """Python has no sys.stderr then, and setting up the log on it failed every command at once, silently."""
    fake.add(5)
    done = _closing(2, ["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert done.returncode == 0
    assert len(stored(database_url)) == 5


def test_started_with_stdin_closed_a_sync_still_syncs(database_url, fake):
    fake.add(5)
    assert _closing(0, ["sync", "--no-hydrate"], cli_env(fake, database_url)).returncode == 0
    assert len(stored(database_url)) == 5


def test_an_export_to_a_closed_stdout_is_one_line(database_url, fake, tmp_path):
    fake.add(3)
    assert sync(fake, database_url).exit_code == 0
    done = _closing(1, ["export"], cli_env(fake, database_url))
    assert (done.returncode, done.stderr) == (
        2, "aai-etl: error: standard output is closed: give --output FILE, or run export with stdout open\n"
    )
    into_file = _closing(1, ["export", "--output", str(tmp_path / "rows.jsonl")], cli_env(fake, database_url))
    assert into_file.returncode == 0, into_file.stderr
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 3
