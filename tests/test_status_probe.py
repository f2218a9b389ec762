"""`aai-etl status --max-age`: a probe that fails when the last run failed or the last success is too old."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import cli_env, run_cli, sync
from sqlalchemy import create_engine, text

from etl.outputs.status import parse_duration


def age_runs(database_url: str, by: timedelta) -> None:
    """Move every run back in time, as if the job had not run since."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for row in conn.execute(text("SELECT id, started_at, finished_at FROM sync_runs")).all():
            started, finished = (_aware(value) - by if value else None for value in row[1:])
            conn.execute(text("UPDATE sync_runs SET started_at = :s, finished_at = :f WHERE id = :i"), {"s": started, "f": finished, "i": row[0]})
    engine.dispose()


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite hands the column back as text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def test_durations():
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for wrong in ("", "2", "h", "2x", "1.5h", "-1h"):
        with pytest.raises(ValueError):
            parse_duration(wrong)


def test_a_recent_success_passes_an_old_one_fails(database_url, fake):
    fake.add(3)
    env = cli_env(fake, database_url)
    assert run_cli(["status", "--max-age", "2h"], env).exit_code == 1  # no run at all yet
    assert sync(fake, database_url).exit_code == 0
    assert run_cli(["status", "--max-age", "2h"], env).exit_code == 0
    age_runs(database_url, timedelta(hours=3))
    stale = run_cli(["status", "--max-age", "2h"], env)
    assert stale.exit_code == 1
    assert "account 'default': the last success was 3h 0m ago" in stale.stderr and "more than 2h 0m" in stale.stderr
    assert run_cli(["status", "--max-age", "1d"], env).exit_code == 0
    assert run_cli(["status"], env).exit_code == 0  # without --max-age, status is a report, never a probe


def test_a_failed_last_run_fails_the_probe_until_a_run_succeeds(database_url, fake):
    fake.add(2)
    env = cli_env(fake, database_url)
    assert sync(fake, database_url).exit_code == 0
    assert run_cli(["sync", "--no-hydrate"], {**env, "ASSEMBLYAI_API_KEY": "a-rejected-key"}).exit_code == 1
    probe = run_cli(["status", "--max-age", "1d", "--json"], env)
    assert probe.exit_code == 1
    assert "the last run (#2," in probe.stderr and "failed: the API key was rejected" in probe.stderr
    assert sync(fake, database_url).exit_code == 0
    assert run_cli(["status", "--max-age", "1d"], env).exit_code == 0


def test_a_bad_duration_is_a_usage_error(sqlite_url, fake):
    result = run_cli(["status", "--max-age", "soon"], cli_env(fake, sqlite_url))
    assert result.exit_code == 2 and "'soon' is not a duration" in result.stderr
