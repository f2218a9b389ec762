"""One request budget paces every thread of a run, listing and details alike: under the server's limit it
meets no 429; over it, a 429 slows every thread and the run still finishes exact."""

from __future__ import annotations

import time

import pytest

from conftest import API_KEY, assert_table_equals_api, cli_env, run_cli, stored, summary_json
from etl.config import load_settings
from etl.errors import ConfigError
from etl.pacing import Pacer
from etl.simulator import FakeAssemblyAI


def run(fake: FakeAssemblyAI, database_url: str, budget: int, *args: str):
    env = cli_env(fake, database_url, AAI_ETL_REQUESTS_PER_MINUTE=str(budget))
    return run_cli([*args, "--log-format", "json"], env)


def test_a_budget_under_the_server_limit_meets_no_429_and_paces_list_and_details_together(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01) as fake:
        fake.add(300)
        assert run(fake, sqlite_url, 600_000, "sync").exit_code == 0
        fake.limit_rate(20)
        queued = fake.add(400, status="queued")
        for item in queued[:30]:
            fake.set_status(item["id"], "completed")
        before = len(fake.requests)
        started = time.monotonic()
        result = run(fake, sqlite_url, 900, "sync")  # 15 requests a second
        elapsed = time.monotonic() - started
        assert result.exit_code == 0, result.output
        requests = len(fake.requests) - before
    assert fake.rate_limited == 0
    # The after_id probe (a full page: 400 are new), 3 pages from one thread, then the details of 30
    # transcripts from many threads at once.
    assert summary_json(result)["hydrated"] == 30 and requests == 34
    # Evenly spaced at 15 a second, whichever thread asks: the listing's and the details' requests together.
    assert elapsed >= (requests - 1) / 15 * 0.95
    assert_table_equals_api(sqlite_url, fake)


def test_a_budget_over_the_server_limit_is_slowed_by_its_429s_and_the_run_finishes_exact(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY, rate_limit=20) as fake:
        fake.add(120)
        assert run(fake, sqlite_url, 6000, "sync", "--no-hydrate").exit_code == 0
        result = run(fake, sqlite_url, 6000, "hydrate")  # 100 a second against a limit of 20
        assert result.exit_code == 0, result.output
    assert summary_json(result)["hydrated"] == 120
    assert all(row["hydrated_at"] is not None for row in stored(sqlite_url).values())
    # Each 429 paused every thread and halved the rate: a handful, not one for every request over the limit.
    assert 0 < fake.rate_limited <= 12, fake.rate_limited


def test_a_429_halves_the_rate_once_per_pause_then_it_creeps_back():
    pacer = Pacer(6000)
    assert pacer.rate == 100
    pacer.rate_limited(0.2)
    pacer.rate_limited(0.2)  # another request refused in the same pause: one slowdown, not two
    assert pacer.rate == 50
    started = time.monotonic()
    pacer.wait()  # every thread waits out the pause
    assert time.monotonic() - started >= 0.19
    time.sleep(0.5)
    pacer.wait()
    assert 50 < pacer.rate < 100  # creeping back: 5 a second per second since the pause ended
    for _ in range(6):
        pacer.rate_limited(0)
        time.sleep(0.001)
    assert pacer.rate >= 100 / 32  # never below the floor


def test_the_budget_is_a_setting_with_an_environment_variable():
    assert load_settings(None, environ={}).requests_per_minute == 2000
    assert load_settings(None, environ={"AAI_ETL_REQUESTS_PER_MINUTE": "3600"}).requests_per_minute == 3600
    with pytest.raises(ConfigError, match="environment variable AAI_ETL_REQUESTS_PER_MINUTE: must be greater than 0"):
        load_settings(None, environ={"AAI_ETL_REQUESTS_PER_MINUTE": "0"})
