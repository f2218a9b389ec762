"""HTTP failures: retried with backoff where worth it, one clear line and a non-zero exit where not."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
from conftest import assert_table_equals_api, cli_env, run_cli, spawn, stored, summary_json

from etl.tools.simulator import Fault


@pytest.fixture
def fast_retries(tmp_path):
    """A config whose backoff is short, so retried tests stay quick."""
    path = tmp_path / "fast.toml"
    path.write_text("backoff_seconds = 0.01\nread_timeout = 1.0\n")
    return str(path)


def sync(fake, database_url, config, **env):
    return run_cli(["sync", "--no-hydrate", "--config", config, "--log-format", "json"], cli_env(fake, database_url, **env))


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(429),
        Fault.status(500),
        Fault.status(502),
        Fault.status(503),
        Fault.status(504),
        Fault.html(502),
        Fault.truncated(),
        Fault.reset(),
        Fault.slow(2.0),
        Fault.wrong_shape({"transcripts": []}),
        Fault.wrong_shape({"page_details": {}, "transcripts": "x"}),
    ],
    ids=lambda fault: f"{fault.kind}-{fault.code}",
)
def test_transient_failures_are_retried_within_the_run(sqlite_url, fake, fast_retries, fault):
    fake.add(450)
    fake.fail_next(fault, fault)
    result = sync(fake, sqlite_url, fast_retries)
    assert result.exit_code == 0, result.output
    assert_table_equals_api(sqlite_url, fake)
    assert summary_json(result)["requests"] == 3 + 2
    assert summary_json(result)["retries"] == 2 and "retrying in" not in result.stderr  # a count, not a line


def test_retry_after_in_seconds_is_honoured(sqlite_url, fake, fast_retries):
    fake.add(5)
    fake.fail_next(Fault.status(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    assert sync(fake, sqlite_url, fast_retries).exit_code == 0
    assert time.monotonic() - started >= 1.0
    assert_table_equals_api(sqlite_url, fake)


def test_retry_after_as_an_http_date_is_honoured(sqlite_url, fake, fast_retries):
    fake.add(5)
    fake.fail_next(Fault.status(429, headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)}))
    started = time.monotonic()
    assert sync(fake, sqlite_url, fast_retries).exit_code == 0
    assert time.monotonic() - started >= 1.0  # the date has one-second resolution
    assert_table_equals_api(sqlite_url, fake)


@pytest.mark.parametrize("odd", ["\u00b2", "\u0661", "-5", "1.5", "garbage", ""])
def test_a_retry_after_that_is_no_number_of_seconds_is_a_plain_retry(sqlite_url, fake, fast_retries, odd):
    """"²".isdigit() is true, but float() refuses it: the run ended on a ValueError."""
    fake.add(5)
    fake.fail_next(Fault.status(429, headers={"Retry-After": odd}))
    result = sync(fake, sqlite_url, fast_retries)
    assert result.exit_code == 0, result.output
    assert_table_equals_api(sqlite_url, fake)


def test_rejected_key_is_not_retried(sqlite_url, fake, fast_retries):
    fake.add(5)
    result = sync(fake, sqlite_url, fast_retries, ASSEMBLYAI_API_KEY="wrong-key-0123456789")
    assert result.exit_code == 1
    assert "the API key was rejected (HTTP 401)" in result.stderr
    assert len(fake.requests) == 1
    assert "wrong-key-0123456789" not in result.output


def test_bad_request_shows_the_apis_message_and_is_not_retried(sqlite_url, fake, fast_retries):
    fake.fail_next(Fault.status(400, {"error": "limit must be at most 200"}))
    result = sync(fake, sqlite_url, fast_retries)
    assert result.exit_code == 1
    assert "(HTTP 400): limit must be at most 200" in result.stderr
    assert len(fake.requests) == 1


def test_when_retries_run_out_committed_pages_are_kept_and_the_next_run_finishes(database_url, fake, fast_retries):
    fake.add(1000)
    # Two clean pages, then four 503s: max_retries=3 means four attempts at the third page.
    fake.fail_next(Fault.none(), Fault.none(), *[Fault.status(503)] * 4)
    failed = sync(fake, database_url, fast_retries)
    assert failed.exit_code == 1
    assert "kept failing (HTTP 503 Service Unavailable) after 4 attempts" in failed.stderr
    assert "everything synced so far is saved" in failed.stderr
    assert len(stored(database_url)) == 400

    result = sync(fake, database_url, fast_retries)
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)
    summary = summary_json(result)
    assert summary["inserted"] == 600
    # Resumed at the third page (three pages to the end), then one request for anything newer.
    assert summary["requests"] == 3 + 1
    assert fake.requests[-4]["params"]["before_id"] == fake.listing()[399]["id"]


def test_retries_stop_at_the_time_budget(sqlite_url, fake, tmp_path):
    config = tmp_path / "budget.toml"
    config.write_text("retry_budget_seconds = 1.0\nbackoff_seconds = 0.01\n")
    # An hour: a run that waited for it would still be waiting when the wait below gives up.
    fake.fail_next(Fault.status(429, headers={"Retry-After": "3600"}))
    process = spawn(["sync", "--no-hydrate", "--config", str(config), "--log-format", "json"], cli_env(fake, sqlite_url))
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "would pass the 1s retry budget" in stderr
    assert len(fake.requests) == 1  # never retried
