"""One request budget paces every thread of a run, listing and details alike: under the server's limit it
meets no 429; over it, a 429 slows every thread to what the server accepts and the run still finishes exact."""

from __future__ import annotations

import time

import pytest
from conftest import API_KEY, assert_table_equals_api, cli_env, run_cli, stored, summary_json

from etl.api.client import ApiClient
from etl.api.pacing import FLOOR, MARGIN, PAUSE, PROBE, SAMPLE, Pacer, measured, probed, slowed
from etl.config import load_settings
from etl.details.hydrate import OUTAGE, _Fetched, _unless_down
from etl.errors import ConfigError, RateLimited, RetriesExhausted
from etl.tools.simulator import FakeAssemblyAI, Fault


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


def test_a_limit_falling_far_below_the_budget_mid_run_is_learnt_and_its_429s_charge_no_transcript(database_url):
    """Without Retry-After, and with no retries, each 429 used up a fetch's retries: such a fetch is tried
    again later in the run, at the pace learnt by then, and its transcript is never charged a failed attempt."""
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01) as fake:
        fake.add(60)
        assert run(fake, database_url, 600_000, "sync", "--no-hydrate").exit_code == 0
        fake.limit_rate(80, retry_after=False)
        fake.limit_rate(10, retry_after=False, after_requests=20)
        env = cli_env(fake, database_url, AAI_ETL_REQUESTS_PER_MINUTE="12000", AAI_ETL_MAX_RETRIES="0")
        result = run_cli(["hydrate", "--log-format", "json"], env)  # 200 a second against 80, then 10
        assert result.exit_code == 0, result.output
    assert fake.rate_limited > 0
    assert summary_json(result)["hydrated"] == 60
    rows = stored(database_url).values()
    assert [row["id"] for row in rows if row["hydrated_at"] is None or row["hydrate_attempts"] or row["hydrate_error"]] == []


def test_the_client_says_when_only_429s_used_up_the_retries(fake):
    client = ApiClient(fake.base_url, API_KEY, max_retries=1, backoff_seconds=0.01, requests_per_minute=600_000)
    (item,) = fake.add(1)
    fake.fail_next(Fault.status(429), Fault.status(429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimited):
        client.get_transcript(item["id"])
    fake.fail_next(Fault.status(503), Fault.status(429, headers={"Retry-After": "0"}))
    with pytest.raises(RetriesExhausted) as failure:
        client.get_transcript(item["id"])
    assert not isinstance(failure.value, RateLimited)


def exhausted(transcript_id: str, error: RetriesExhausted) -> _Fetched:
    return _Fetched(transcript_id, 0, error=str(error), exhausted=error)


def test_fetches_that_used_up_their_retries_on_429s_alone_are_never_written():
    ok, down = _Fetched("ok", 0, body={"id": "ok"}), exhausted("down", RetriesExhausted("HTTP 503", "HTTP 503"))
    limited = [exhausted(f"limited-{n}", RateLimited("HTTP 429", "HTTP 429")) for n in range(OUTAGE + 1)]
    # Left out, whatever comes before or after them; they count for no outage either.
    assert list(_unless_down(iter([limited[0], ok, limited[1]]))) == [ok]
    assert list(_unless_down(iter([down, *limited, ok]))) == [down, ok]
    assert list(_unless_down(iter([*limited, down]))) == [down]  # a fetch that failed otherwise is written
    # A chunk of nothing else ends the run on their error: otherwise the same transcripts would be asked again.
    with pytest.raises(RateLimited):
        list(_unless_down(iter(limited)))


def test_the_rate_after_a_429_is_a_little_under_what_the_server_accepted():
    assert measured(SAMPLE - 1, 1.0) is None  # too few answers to tell
    assert measured(SAMPLE, 0.0) is None
    assert measured(50, 10.0) == 5.0
    assert slowed(200.0, 5.0, floor=0.1) == 5.0 * MARGIN
    assert slowed(4.0, 5.0, floor=0.1) == 4.0 * MARGIN  # never above the rate that met the 429
    assert slowed(200.0, None, floor=0.1) == 100.0  # unknown: halved
    assert slowed(0.15, None, floor=0.1) == 0.1
    assert slowed(0.15, 0.01, floor=0.1) == 0.1


def test_without_a_429_the_rate_probes_slowly_upwards_to_the_budget():
    assert probed(5.0, 200.0, 0.0) == 5.0
    assert 5.0 < probed(5.0, 200.0, 1.0) == 5.0 * (1 + PROBE) < 5.2
    assert probed(150.0, 200.0, 60.0) == 200.0


def test_a_429_slows_every_thread_once_per_slowdown_then_the_rate_probes_upwards():
    pacer = Pacer(6000)
    assert pacer.rate == 100
    sent = pacer.wait()
    assert pacer.rate_limited(sent, 0.2) >= 0.19  # nothing answered since the start to measure by: halved
    pacer.rate_limited(sent, 0.2)  # another request of the same pace refused: one slowdown, not two
    assert pacer.rate == 50
    started = time.monotonic()
    sent = pacer.wait()  # every thread waits out the pause
    assert time.monotonic() - started >= 0.19
    time.sleep(0.2)
    pacer.wait()
    assert 50 < pacer.rate <= 100  # probing upwards since the pause ended
    assert pacer.rate_limited(sent, None) >= PAUSE * 0.99  # without Retry-After: a pause of its own
    assert pacer.rate < 30
    for _ in range(12):
        pacer.rate_limited(time.monotonic(), 0)
    assert pacer.rate == 100 * FLOOR  # never below the floor


def test_the_budget_is_a_setting_with_an_environment_variable():
    assert load_settings(None, environ={}).requests_per_minute == 2000
    assert load_settings(None, environ={"AAI_ETL_REQUESTS_PER_MINUTE": "3600"}).requests_per_minute == 3600
    with pytest.raises(ConfigError, match="environment variable AAI_ETL_REQUESTS_PER_MINUTE: must be greater than 0"):
        load_settings(None, environ={"AAI_ETL_REQUESTS_PER_MINUTE": "0"})
