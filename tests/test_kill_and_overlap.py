"""Runs killed at any instant lose and duplicate nothing; overlapping runs leave the first one unharmed."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from conftest import assert_table_equals_api, cli_env, kill_when, lock_released, run_cli, spawn, stored, summary_json, sync, wait_until
from sqlalchemy import create_engine, select

from etl.errors import EXIT_ALREADY_RUNNING
from etl.store.schema import sync_runs


def runs(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        outcomes = [row.outcome for row in conn.execute(select(sync_runs).order_by(sync_runs.c.id))]
    engine.dispose()
    return outcomes


def test_kill_during_backfill_resumes_where_the_last_page_committed(database_url, fake):
    fake.add(1000)
    release = fake.hold(2)  # the third page's request blocks: two pages are committed by then
    process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert fake.held.wait(120), process.communicate()
    wait_until(lambda: len(stored(database_url)) == 400)  # two pages committed, the third held
    process.send_signal(signal.SIGKILL)
    process.wait()
    release.set()
    assert len(stored(database_url)) == 400

    fake.add(10)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)
    summary = summary_json(result)
    assert summary["inserted"] == 610
    # Three pages to finish the backfill, one for what arrived meanwhile: no restart from scratch.
    assert summary["requests"] == 4
    assert runs(database_url) == ["abandoned", "succeeded"]


def test_kills_at_random_instants_never_lose_or_duplicate(database_url):
    from conftest import API_KEY

    from etl.tools.simulator import FakeAssemblyAI

    rng = random.Random(7)
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01, seed=3) as fake:
        fake.add(2000, status="processing")
        for _ in range(6):
            process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
            time.sleep(rng.uniform(0.2, 0.9))
            process.send_signal(signal.SIGKILL)
            process.wait()
            wait_until(lambda: lock_released(database_url))  # killed mid-statement, its session ends a moment later
            listed = fake.listing()
            for item in rng.sample(listed, 20):
                fake.set_status(item["id"], rng.choice(["completed", "error"]))
            fake.add(rng.randint(0, 300), status=rng.choice(["queued", "processing"]))
        result = sync(fake, database_url)
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake)


@pytest.mark.parametrize("by_days", [{"AAI_ETL_PARTITIONS": "days", "AAI_ETL_PARTITION_DAYS": "6"}, {}], ids=["days", "default"])
def test_kills_at_random_instants_of_walks_by_day_never_lose_or_duplicate(database_url, by_days):
    from datetime import datetime, timedelta, timezone

    from conftest import API_KEY

    from etl.tools.simulator import FakeAssemblyAI

    # The default walks these 2,000 transcripts of 8 days by days too, once its first serial pages have
    # shown, at 100 ms each, that the days are faster; it reaches them about a second into a run, so its
    # kills come later.
    rng = random.Random(11)
    kill_after = (0.2, 0.9) if by_days else (0.5, 2.5)
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01, seed=5) as fake:
        fake.serial_latency = 0 if by_days else 0.1
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=9)
        fake.add(2000, status="processing", spread=timedelta(days=8))
        # The schema first: a kill while a run creates the SQLite file is not what this test is about.
        assert run_cli(["db", "upgrade"], cli_env(fake, database_url)).exit_code == 0
        for number in range(6):
            full = ["--full"] if number % 2 else []  # first backfills and full walks, each killed
            process = spawn(["sync", "--no-hydrate", *full], cli_env(fake, database_url, **by_days))
            time.sleep(rng.uniform(*kill_after))
            process.send_signal(signal.SIGKILL)
            process.wait()
            wait_until(lambda: lock_released(database_url))  # killed mid-statement, its session ends a moment later
            # Pending ones finish, as the API's do: a final status is final (a change from one final status to
            # another is for `sync --full` to catch, and the last run here is a plain one).
            pending = [item for item in fake.listing() if item["status"] in ("queued", "processing")]
            for item in rng.sample(pending, min(20, len(pending))):
                fake.set_status(item["id"], rng.choice(["completed", "error"]))
            fake.add(rng.randint(0, 300), status=rng.choice(["queued", "processing"]))
        result = sync(fake, database_url, **by_days)
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake)
        result = sync(fake, database_url, "--full", **by_days)
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake)


def test_second_run_exits_75_while_the_first_is_running(database_url, fake):
    fake.add(500)
    release = fake.hold(1)
    first = spawn(["sync", "--no-hydrate", "--log-format", "json"], cli_env(fake, database_url))
    assert fake.held.wait(120)

    # The first run holds its lock until its held request is released, after this: a second run that waited
    # for the lock would still be waiting when the wait below gives up.
    second = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
    try:
        _, stderr = second.communicate(timeout=120)
    finally:
        second.kill()
    assert first.poll() is None  # it ended while the first still ran
    assert second.returncode == EXIT_ALREADY_RUNNING
    assert "a sync of account 'default' is already running since " in stderr
    assert f"(pid {first.pid} on " in stderr

    release.set()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert_table_equals_api(database_url, fake)
    assert runs(database_url) == ["succeeded"]


def test_sigterm_stops_cleanly_and_records_the_run(database_url, fake):
    fake.add(600)
    release = fake.hold(1)
    process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert fake.held.wait(120)
    process.send_signal(signal.SIGTERM)
    release.set()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "aai-etl: error: interrupted; everything committed so far is kept, the next run resumes"
    assert "Traceback" not in err
    assert runs(database_url) == ["failed"]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(sync_runs.c.error)).scalar() == "interrupted by Ctrl-C or SIGTERM"
    engine.dispose()
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)


def test_a_first_run_killed_as_its_database_file_appears_leaves_a_database(sqlite_url, tmp_path, fake):
    """SQLite created the file empty and wrote its header a moment later: a first run killed in between left
    an empty file, which every later run refused. The file now appears already a database."""
    fake.add(300)
    database = tmp_path / "transcripts.db"
    for _ in range(3):
        for leftover in tmp_path.glob("transcripts.db*"):
            leftover.unlink()
        kill_when(spawn(["sync", "--no-hydrate"], cli_env(fake, sqlite_url)), database.exists)
        assert database.read_bytes()[:16] == b"SQLite format 3\x00"
        result = sync(fake, sqlite_url, "--no-hydrate")
        assert result.exit_code == 0, result.output
        assert_table_equals_api(sqlite_url, fake)


def test_what_a_run_killed_while_creating_the_database_leaves_beside_it_is_swept(sqlite_url, tmp_path, fake):
    """The file is made under a name of its own and linked into place: a kill before the link leaves that
    side file, which a later run removes once it is older than any creation takes."""
    fake.add(10)
    for _ in range(10):  # the side file lives for milliseconds: a loaded machine may not poll in time
        for leftover in tmp_path.glob("transcripts.db*"):
            leftover.unlink()
        process = spawn(["sync", "--no-hydrate"], cli_env(fake, sqlite_url))
        side = tmp_path / f"transcripts.db-creating-{process.pid}"
        kill_when(process, side.exists)
        if side.exists():
            break
    sides = list(tmp_path.glob("transcripts.db-creating-*"))  # the side file, and its -journal if SQLite had begun one
    assert side in sides, sorted(tmp_path.iterdir())
    result = sync(fake, sqlite_url, "--no-hydrate")
    assert result.exit_code == 0, result.output
    assert_table_equals_api(sqlite_url, fake)
    assert all(path.exists() for path in sides)  # young: they could be another run's creation in progress
    for path in sides:
        os.utime(path, (time.time() - 120, time.time() - 120))
    assert sync(fake, sqlite_url, "--no-hydrate").exit_code == 0
    assert not list(tmp_path.glob("transcripts.db-creating-*"))
