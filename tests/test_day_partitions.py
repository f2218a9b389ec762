"""A first backfill or `sync --full` walks the listing as UTC days at once (`partitions = "days"`, or by
default when its first pages show the days are faster), exact under every reading of `created_on`, and
falls back to the serial walk (said once, remembered) when it is misread."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import (
    API_KEY,
    assert_table_equals_api,
    cli_env,
    empty_database,
    kill_when,
    lock_released,
    spawn,
    stored,
    summary_json,
    sync,
    wait_until,
)
from sqlalchemy import create_engine, select

from etl.api.client import ApiClient
from etl.store.schema import sync_cursors, sync_partitions, sync_runs
from etl.walk import days
from etl.walk.planner import SWITCH_PAGES
from etl.tools.simulator import FakeAssemblyAI, Fault

PARTITIONS = {"AAI_ETL_PARTITIONS": "days", "AAI_ETL_PARTITION_DAYS": "8"}
# The default: serially, on by days once the first pages show the days are faster.
DEFAULT: dict[str, str] = {}
# Seconds each serial list page takes on a spread_fake: at 100 ms a page, 250 transcripts a day are walked
# faster by days (the tests' budget is no limit), and the days themselves answer at once.
SLOW_SERIAL = 0.1


def spread_fake(mode: str = "honoured", n: int = 2000, days: int = 8, **options) -> FakeAssemblyAI:
    """A fake whose transcripts are spread over `days` UTC days ending a day ago: about n/days a day (250:
    the first pages span under a day each, the listing reaches back more than a week and each serial page
    takes SLOW_SERIAL, so the default walks it by days)."""
    fake = FakeAssemblyAI(api_key=API_KEY, created_on_mode=mode, **options)
    fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days + 1)
    fake.serial_latency = SLOW_SERIAL
    fake.add(n, spread=timedelta(days=days))
    return fake


def rows_of(database_url: str, table) -> list:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
    engine.dispose()
    return [dict(row) for row in rows]


def partitioned(fake, database_url, *args: str, settings: dict[str, str] = PARTITIONS):
    result = sync(fake, database_url, "--log-format", "json", *args, **settings)
    assert result.exit_code == 0, result.output
    return result


def test_a_first_backfill_by_day_partitions_is_exact(database_url):
    with spread_fake() as fake:
        result = partitioned(fake, database_url)
        assert_table_equals_api(database_url, fake)
        dated = [request["params"] for request in fake.requests if "created_on" in request["params"]]
        assert len({params["created_on"] for params in dated}) >= 90  # every day of the window
        assert any("before_id" in params for params in dated)  # days of more than a page walked within
        summary = summary_json(result)
        assert summary["inserted"] == 2000 and summary.get("warning") is None
        assert rows_of(database_url, sync_partitions) == []  # done: no day left to resume
        # The high water mark is the newest transcript: the next run is one after_id request.
        before = len(fake.requests)
        assert sync(fake, database_url, **PARTITIONS).exit_code == 0
        assert [("after_id" in request["params"]) for request in fake.requests[before:]] == [True]


def dated(requests) -> list[dict]:
    return [request["params"] for request in requests if "created_on" in request["params"]]


def test_the_default_goes_on_by_days_on_a_dense_account_and_walks_a_sparse_one_serially(database_url, tmp_path):
    # Dense: 2,000 transcripts over 8 days, 250 a day, at 100 ms a serial page. The walk reads its first
    # pages serially; the rest of the window would take about 10 s so, and a fraction of that by days (the
    # tests' budget allows 10,000 requests a second), so it goes on by days from where it got to.
    with spread_fake() as fake:
        result = partitioned(fake, database_url, settings=DEFAULT)
        assert_table_equals_api(database_url, fake)
        serial = [r["params"] for r in fake.requests if "created_on" not in r["params"]]
        # SWITCH_PAGES pages, and the next one, downloaded while the last was stored.
        assert len(serial) == SWITCH_PAGES + 1 and "before_id" not in serial[0]
        days = dated(fake.requests)
        # The day the serial walk reached goes on from where it stopped (no newer day is asked for).
        reached = max(params["created_on"] for params in days)
        assert all("before_id" in params for params in days if params["created_on"] == reached)
        assert len({params["created_on"] for params in days}) >= 80
        summary = summary_json(result)
        assert summary["inserted"] == 2000 and summary.get("warning") is None
        assert rows_of(database_url, sync_partitions) == []
        # The high water mark is the newest transcript: the next run is one after_id request.
        before = len(fake.requests)
        assert sync(fake, database_url).exit_code == 0
        assert [("after_id" in request["params"]) for request in fake.requests[before:]] == [True]
        # A full walk of it goes on by days too, and stays exact.
        fake.delete(fake.listing()[1700]["id"])
        fake.add(5)
        before = len(fake.requests)
        summary = summary_json(partitioned(fake, database_url, "--full", settings=DEFAULT))
        assert summary["deleted"] == 1 and summary["inserted"] == 5
        assert dated(fake.requests[before:])
        assert_table_equals_api(database_url, fake)

    # Sparse: 1,000 transcripts over 60 days, 17 a day, at the default budget: the few pages left cost less
    # than the ~45 days left would, so the serial walk, no day asked for.
    sparse = empty_database("sqlite" if database_url.startswith("sqlite") else "postgresql", tmp_path)
    budget = {"AAI_ETL_REQUESTS_PER_MINUTE": "2000"}
    with spread_fake(n=1000, days=60) as fake:
        result = partitioned(fake, sparse, settings=budget)
        assert_table_equals_api(sparse, fake)
        assert not dated(fake.requests)
        before = len(fake.requests)
        partitioned(fake, sparse, "--full", settings=budget)
        assert not dated(fake.requests[before:])
        assert_table_equals_api(sparse, fake)


def test_the_default_walks_a_dense_account_serially_where_requests_are_fast(database_url):
    # The same 2,000 transcripts over 8 days, answered at once, at the default budget of 2,000 requests a
    # minute: the day ends would cost more of the budget than the serial walk takes in all.
    with spread_fake() as fake:
        fake.serial_latency = 0
        result = partitioned(fake, database_url, settings={"AAI_ETL_REQUESTS_PER_MINUTE": "2000"})
        assert_table_equals_api(database_url, fake)
        assert not dated(fake.requests)
        assert summary_json(result)["requests"] == len(fake.requests) == 10  # its 10 pages, one after another


def test_the_default_walks_a_burst_of_a_few_pages_serially(database_url):
    # 700 transcripts a few seconds apart, slow to walk serially: dense, but the walk ends before it decides
    # anything (its fourth page is not full).
    with FakeAssemblyAI(api_key=API_KEY) as fake:
        fake.serial_latency = SLOW_SERIAL
        fake.add(SWITCH_PAGES * 200 - 100)
        result = partitioned(fake, database_url, settings=DEFAULT)
        assert_table_equals_api(database_url, fake)
        assert not dated(fake.requests)
        assert summary_json(result)["requests"] == len(fake.requests) == SWITCH_PAGES


def test_partitions_serial_never_walks_by_days(database_url):
    with spread_fake() as fake:
        partitioned(fake, database_url, settings={"AAI_ETL_PARTITIONS": "serial"})
        assert_table_equals_api(database_url, fake)
        assert not dated(fake.requests)


@pytest.mark.parametrize("settings", [PARTITIONS, DEFAULT], ids=["days", "default"])
@pytest.mark.parametrize("mode", ["ignored_with_cursor", "refused_with_cursor", "other_timezone", "cursor_ignored"])
def test_a_misread_created_on_falls_back_to_the_serial_walk_said_once_and_remembered(database_url, mode, settings):
    with spread_fake(mode) as fake:
        result = partitioned(fake, database_url, settings=settings)
        assert_table_equals_api(database_url, fake)
        assert result.stderr.count("walked the listing serially instead") == 1
        (run,) = rows_of(database_url, sync_runs)
        assert "created_on=" in run["warning"] and "serially" in run["warning"]
        (cursor,) = rows_of(database_url, sync_cursors)
        assert "created_on=" in cursor["partitions_refused"]
        assert rows_of(database_url, sync_partitions) == []
        # Remembered: a full walk of this account goes serially at once, without a word.
        before = len(fake.requests)
        full = partitioned(fake, database_url, "--full", settings=settings)
        assert all("created_on" not in request["params"] for request in fake.requests[before:])
        assert "serially" not in full.stderr
        assert_table_equals_api(database_url, fake)


def test_a_full_walk_by_day_partitions_marks_what_left_the_listing(database_url):
    with spread_fake() as fake:
        partitioned(fake, database_url)
        oldest = fake.listing()[-5:]
        for item in oldest:
            fake.expire(item["id"])
        fake.delete(fake.listing()[100]["id"])
        result = partitioned(fake, database_url, "--full")
        summary = summary_json(result)
        assert (summary["unlisted"], summary["deleted"]) == (5, 1)
        assert_table_equals_api(database_url, fake, unlisted={item["id"] for item in oldest})


def test_transcripts_created_while_the_days_are_walked_are_caught(database_url):
    with spread_fake() as fake:
        release = fake.hold(20)
        process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url, **PARTITIONS))
        assert fake.held.wait(120), process.communicate()
        fake.add(30)  # newer than everything, while the walk is half done
        release.set()
        assert process.wait(60) == 0, process.communicate()
        assert_table_equals_api(database_url, fake)


@pytest.mark.parametrize("settings", [PARTITIONS, DEFAULT], ids=["days", "default"])
def test_a_killed_partitioned_backfill_resumes_every_day_where_it_stopped(database_url, settings):
    with spread_fake(latency=0.01) as fake:
        release = fake.hold(40)
        process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url, **settings))
        assert fake.held.wait(120), process.communicate()
        wait_until(
            lambda: any(row["done"] or row["before_id"] for row in rows_of(database_url, sync_partitions))
            and len(stored(database_url)) > 0
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
        release.set()
        wait_until(lambda: lock_released(database_url))
        positions = {row["day"].isoformat(): row for row in rows_of(database_url, sync_partitions)}
        started = {day for day, row in positions.items() if row["done"] or row["before_id"]}
        kept = len(stored(database_url))
        assert started and kept > 0

        before = len(fake.requests)
        result = partitioned(fake, database_url, settings=settings)
        assert_table_equals_api(database_url, fake)
        assert summary_json(result)["inserted"] == 2000 - kept  # nothing committed is written again
        again = [request["params"] for request in fake.requests[before:] if "created_on" in request["params"]]
        # No day that had committed a page starts again from its newest.
        assert not [p for p in again if p["created_on"] in started and "before_id" not in p]
        # A finished day is not asked for at all.
        done = {day for day, row in positions.items() if row["done"]}
        assert not [p for p in again if p["created_on"] in done]
        assert rows_of(database_url, sync_partitions) == []


@pytest.mark.parametrize("settings", [PARTITIONS, DEFAULT], ids=["days", "default"])
@pytest.mark.parametrize("maximum", [None, 100])
def test_a_full_day_page_without_prev_url_is_not_the_end_of_its_day(database_url, settings, maximum):
    # Dated pages never say that older transcripts exist: a full one is followed with before_id.
    with spread_fake(dated_prev_url=False, page_maximum=maximum) as fake:
        result = partitioned(fake, database_url, settings=settings)
        assert_table_equals_api(database_url, fake)
        assert summary_json(result).get("warning") is None
        assert any("before_id" in params for params in dated(fake.requests))
        assert rows_of(database_url, sync_partitions) == []


def within_a_day(database_url: str) -> bool:
    """Whether a stored day position is within its day."""
    return any(row["before_id"] for row in rows_of(database_url, sync_partitions))


@pytest.mark.parametrize("resume", ["again", "serial"])
def test_stored_day_positions_on_a_server_that_ignores_the_cursor_fall_back_at_once(database_url, resume):
    # A backfill by days killed midway; then the server drops before_id from dated listings.
    with spread_fake(n=3000, days=3, latency=0.05) as fake:
        process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url, **PARTITIONS))
        # Killed while a day has a stored position within it: each day has five pages, each taking the latency.
        wait_until(lambda: fake.requests)  # the schema is in place before the first request
        kill_when(process, lambda: within_a_day(database_url))
        assert within_a_day(database_url)
        wait_until(lambda: lock_released(database_url) and fake.answered())  # the killed run's requests are done
        fake.created_on_mode = "cursor_ignored"

        before = len(fake.requests)
        settings = PARTITIONS if resume == "again" else {"AAI_ETL_PARTITIONS": "serial"}
        result = partitioned(fake, database_url, settings=settings)
        assert_table_equals_api(database_url, fake)
        assert rows_of(database_url, sync_partitions) == []
        if resume == "again":
            assert "ignores before_id" in summary_json(result)["warning"]
            assert result.stderr.count("walked the listing serially instead") == 1
        else:
            assert not dated(fake.requests[before:])


def day_threads() -> int:
    return sum(thread.name.startswith("aai-etl-day-") and thread.is_alive() for thread in threading.enumerate())


def walk_of_days(fake: FakeAssemblyAI, told: list[int], each_batch=lambda batch: None) -> int:
    """Walk the fake's 10 newest days with walk_days, `told[0]` days at once (asked as pages arrive); return
    the transcripts listed."""
    now = datetime.now(timezone.utc)
    listed = 0
    with ApiClient(fake.base_url, API_KEY, requests_per_minute=600_000) as client:
        positions: dict = {day: None for day in days.days(now)[:10]}
        for batch in days.walk_days(client, positions, at_once=lambda: told[0], now=now):
            listed += sum(len(page.items) for page in batch)
            each_batch(batch)
    return listed


@pytest.mark.parametrize("at_once", [1, 3])
def test_a_walk_by_days_fetches_as_many_days_at_once_as_it_is_told(at_once):
    with spread_fake(latency=0.05) as fake:
        assert walk_of_days(fake, [at_once]) == 2000
        assert fake.most_in_flight == at_once


def test_the_days_at_once_follow_the_number_as_it_changes():
    with spread_fake(latency=0.05) as fake:
        # One day until the first page arrives (no round trip is known before), then four.
        told = [1]

        def grow(batch):
            told[0] = 4

        assert walk_of_days(fake, told, grow) == 2000
        assert fake.most_in_flight == 4

    with spread_fake(latency=0.05) as fake:
        # Four at first, then one: each thread one too many leaves before its next day.
        told, seen = [4], []

        def shrink(batch):
            told[0] = 1
            if day_threads() <= 1 and not seen:
                seen.append(len(fake.requests))
                fake.most_in_flight = 0  # from here on, one request at a time

        assert walk_of_days(fake, told, shrink) == 2000
        assert seen and len(fake.requests) > seen[0] + 3  # a few days were left for the one thread
        assert fake.most_in_flight == 1


def test_an_empty_last_page_of_a_day_is_asked_for_twice_before_it_ends_the_day(database_url):
    """201 transcripts of one day, and the day's page below the first answered empty with no prev_url: taken
    for the day's end, it lost the 201st for good (the high water mark was above it)."""
    with FakeAssemblyAI(api_key=API_KEY) as fake:
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=2)
        fake.add(201, spread=timedelta(hours=1))
        day = fake.listing()[0]["created"][:10]
        # One day at a time, newest first: the day's second page is the request after its first.
        window = [each.isoformat() for each in days.days(datetime.now(timezone.utc))]
        empty = Fault.mangled(lambda body: {**body, "transcripts": []})
        fake.fail_next(*[Fault.none()] * (window.index(day) + 1), empty)
        result = partitioned(fake, database_url, settings={"AAI_ETL_PARTITIONS": "days", "AAI_ETL_PARTITION_DAYS": "1"})
        asked = [params.get("before_id") for params in dated(fake.requests) if params["created_on"] == day]
        assert len(asked) == 3 and asked[0] is None and asked[1] == asked[2]  # the empty page, asked for again
        assert summary_json(result)["inserted"] == 201
        assert_table_equals_api(database_url, fake)
