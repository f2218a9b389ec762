"""A response that never finishes cannot hold a run: a deadline per request, and a prompt stop on SIGTERM
wherever the run waits, detail fetches in flight included."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import assert_table_equals_api, cli_env, spawn, stored, wait_until
from sqlalchemy.exc import DBAPIError

from etl.tools.simulator import Fault


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "deadline.toml"
    path.write_text("backoff_seconds = 0.01\nmax_retries = 2\nrequest_deadline = 1.0\nread_timeout = 30\n")
    return str(path)


def finish(process, within: float) -> tuple[int, str]:
    """Wait for the process at most `within` seconds (killing it after); its status and stderr."""
    try:
        _, stderr = process.communicate(timeout=within)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process.returncode, stderr


def rows_stored(database_url) -> int:
    if database_url.startswith("sqlite:///") and not os.path.exists(database_url.removeprefix("sqlite:///")):
        return 0  # not yet created by the run: opening it here would leave an empty file the run refuses
    try:
        return len(stored(database_url))
    except DBAPIError:  # the run has not created the table yet
        return 0


def test_a_list_response_dripping_a_byte_at_a_time_is_cut_off_and_retried(database_url, fake, config):
    fake.add(5)
    fake.fail_next(Fault.drip(0.2))  # about 2 KB: over six minutes, each byte well inside read_timeout
    process = spawn(["sync", "--no-hydrate", "--config", config], cli_env(fake, database_url))
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert ", 1 retry, " in stdout  # cut off at request_deadline and retried: a retry that succeeds is counted, not a warning
    assert_table_equals_api(database_url, fake)


def test_a_detail_fetch_dripping_a_byte_at_a_time_fails_alone(database_url, fake, config):
    slow, *others = fake.add(4)
    fake.break_transcript(slow["id"], Fault.drip(0.2))
    process = spawn(["sync", "--config", config], cli_env(fake, database_url))
    status, stderr = finish(process, within=120)
    assert status == 0, stderr
    rows = stored(database_url)
    assert rows[slow["id"]]["hydrated_at"] is None
    assert "request_deadline" in rows[slow["id"]]["hydrate_error"]
    assert all(rows[item["id"]]["hydrated_at"] is not None for item in others)


def test_sigterm_during_hydration_ends_the_run_without_waiting_for_fetches_in_flight(database_url, fake, tmp_path):
    config = tmp_path / "slow.toml"
    # Nothing but the signal can end these fetches within the wait below: the API answers them after an hour,
    # and the run would wait as long.
    config.write_text("read_timeout = 3600\nrequest_deadline = 3600\nhydrate_workers = 4\n")
    items = fake.add(8)
    for item in items:
        fake.break_transcript(item["id"], Fault.slow(3600))
    process = spawn(["sync", "--config", str(config)], cli_env(fake, database_url))
    wait_until(lambda: rows_stored(database_url) == 8 and fake.in_flight() == 4)  # the list committed, four fetches waiting
    process.send_signal(signal.SIGTERM)
    status, stderr = finish(process, within=120)
    assert status == 130, stderr
    assert fake.in_flight() == 4  # it ended with none of them answered: it waited for none
    assert "interrupted" in stderr
    assert len(stored(database_url)) == 8


def test_sigterm_while_a_list_response_drips_ends_the_run_at_once(database_url, fake, tmp_path):
    config = tmp_path / "slow.toml"
    # Nothing but the signal can end this response within the wait below: about 2 KB, a byte each half second, is
    # over a quarter of an hour, each byte inside read_timeout and the whole inside request_deadline.
    config.write_text("read_timeout = 60\nrequest_deadline = 3600\n")
    fake.add(5)
    fake.fail_next(Fault.drip(0.5))
    process = spawn(["sync", "--no-hydrate", "--config", str(config)], cli_env(fake, database_url))
    wait_until(lambda: len(fake.requests) == 1)  # logged as the dripping answer starts: the run is reading it
    process.send_signal(signal.SIGTERM)
    status, stderr = finish(process, within=120)
    assert status == 130, stderr
    assert "interrupted" in stderr
