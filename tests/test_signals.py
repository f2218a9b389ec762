"""Ctrl-C and SIGTERM at any instant end a command with its one line and status 130, never a traceback:
start-up included, and a second signal while it stops, which cannot cut the run's metrics short."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
from conftest import cli_env, spawn, sync, wait_until
from sqlalchemy import create_engine, select, text

from etl.store.schema import sync_runs

COMMANDS = [["sync"], ["export"], ["derive"], ["status"]]
STOPPED = "aai-etl: error: interrupted; everything committed so far is kept"

# Run by the interpreter before aai-etl (PYTHONPATH): the first import of PAUSE_AT_IMPORT says so in
# PAUSE_REPORT, then waits for a writer on the PAUSE_FIFO. A signal then lands while aai-etl imports.
PAUSE = """
import os, sys

class PauseAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["PAUSE_AT_IMPORT"]:
            sys.meta_path.remove(self)
            with open(os.environ["PAUSE_REPORT"], "w") as report:
                report.write("paused")
            with open(os.environ["PAUSE_FIFO"]) as fifo:
                fifo.read()
        return None

sys.meta_path.insert(0, PauseAtImport())
"""


def paused_run(args: list[str], env: dict[str, str], tmp_path: Path, module: str):
    """`aai-etl ARGS` in a real process, paused while it imports `module`; returns (process, release)."""
    (tmp_path / "sitecustomize.py").write_text(PAUSE)
    fifo, report = tmp_path / "release", tmp_path / "paused"
    os.mkfifo(fifo)
    process = spawn(args, {**env, "PYTHONPATH": str(tmp_path), "PAUSE_AT_IMPORT": module,
                           "PAUSE_REPORT": str(report), "PAUSE_FIFO": str(fifo)})
    wait_until(lambda: report.exists() or process.poll() is not None, timeout=60)
    assert report.exists(), process.communicate()

    def release() -> None:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # opened and closed: the reader reads EOF
        except OSError as exc:
            assert exc.errno == errno.ENXIO  # no reader left: the process ended on the signal
    return process, release


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_a_signal_while_aai_etl_starts_is_one_line(sqlite_url, fake, tmp_path, args, signum):
    """click is imported before any command runs: the signal lands before the command's body, where
    nothing is written yet. Without a handler yet, SIGTERM killed the process silently (-15) and SIGINT
    printed a KeyboardInterrupt traceback."""
    process, release = paused_run(args, cli_env(fake, sqlite_url), tmp_path, "click")
    process.send_signal(signum)
    release()
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", "aai-etl: error: interrupted while starting; nothing was written\n")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_a_signal_while_a_command_imports_what_it_needs_is_one_line(database_url, fake, tmp_path, args):
    """SQLAlchemy is imported by the command's body: the signal is the command's interrupt."""
    fake.add(3)
    assert sync(fake, database_url).exit_code == 0
    process, release = paused_run(args, cli_env(fake, database_url), tmp_path, "sqlalchemy")
    process.send_signal(signal.SIGTERM)
    release()
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", f"{STOPPED}\n")


def run_outcomes(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        outcomes = list(conn.execute(select(sync_runs.c.outcome).order_by(sync_runs.c.id)).scalars())
    engine.dispose()
    return outcomes


def stopped_sync(fake, database_url: str, metrics: Path, before_the_signal=lambda: None):
    """A sync with a metrics file, stopped by SIGTERM while it waits for its second page."""
    fake.add(600)
    release = fake.hold(1)
    process = spawn(["sync", "--no-hydrate", "--metrics-file", str(metrics)], cli_env(fake, database_url))
    assert fake.held.wait(120)
    before_the_signal()
    process.send_signal(signal.SIGTERM)
    return process, release


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_second_signal_while_the_metrics_are_written_does_not_lose_them(database_url, fake, tmp_path):
    """The second SIGTERM is sent while the metrics read the database (held there by a lock the test
    takes): it raised a KeyboardInterrupt out of the read, and the run ended with no metrics file."""
    metrics = tmp_path / "aai_etl.prom"
    engine = create_engine(database_url)
    with engine.connect() as blocker:
        lock = text("LOCK TABLE transcripts IN ACCESS EXCLUSIVE MODE")
        process, release = stopped_sync(fake, database_url, metrics, lambda: blocker.execute(lock))

        def metrics_wait_on_the_lock() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT%transcripts%'"
                )).scalar())

        wait_until(metrics_wait_on_the_lock, timeout=60)
        process.send_signal(signal.SIGTERM)
        blocker.rollback()
    release.set()
    out, err = process.communicate(timeout=60)
    engine.dispose()
    assert (process.returncode, err.splitlines()[-1]) == (130, f"{STOPPED}, the next run resumes")
    assert "Traceback" not in err
    assert "aai_etl_last_run_success{account=\"default\"} 0.0" in metrics.read_text()
    assert run_outcomes(database_url) == ["failed"]


def test_a_second_signal_as_the_run_stops_does_not_lose_the_metrics(database_url, fake, tmp_path):
    """The second SIGTERM follows the first as soon as the run is recorded as stopped."""
    metrics = tmp_path / "aai_etl.prom"
    process, release = stopped_sync(fake, database_url, metrics)
    wait_until(lambda: run_outcomes(database_url) == ["failed"] or process.poll() is not None, timeout=60)
    process.send_signal(signal.SIGTERM)
    release.set()
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err.splitlines()[-1]) == (130, f"{STOPPED}, the next run resumes")
    assert "aai_etl_last_run_success{account=\"default\"} 0.0" in metrics.read_text()


def test_a_run_stopped_before_its_metrics_could_be_written_says_so(database_url, fake, tmp_path):
    """Stopped while the sync imports what it runs with, before it has a run to report."""
    metrics = tmp_path / "aai_etl.prom"
    env = cli_env(fake, database_url, AAI_ETL_METRICS_FILE=str(metrics))
    process, release = paused_run(["sync"], env, tmp_path, "sqlalchemy")
    process.send_signal(signal.SIGTERM)
    release()
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", f"{STOPPED}; the metrics were not written\n")
    assert not metrics.exists()
