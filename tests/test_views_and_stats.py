"""The analytics views on both databases, and `aai-etl stats` over them."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from conftest import cli_env, run_cli, stored
from sqlalchemy import create_engine, text

# Two UTC days a few days back, so that the default 30-day window of `aai-etl stats` holds them.
_FIRST = datetime.now(timezone.utc).replace(tzinfo=None, hour=23, minute=0, second=0, microsecond=0) - timedelta(days=6)
DAY_ONE, DAY_TWO = _FIRST.date().isoformat(), (_FIRST + timedelta(days=1)).date().isoformat()
LATER_ONE, LATER_TWO = ((_FIRST + timedelta(days=n)).date().isoformat() for n in (2, 3))


def nearest_rank(values, share):
    ordered = sorted(values)
    return ordered[math.ceil(share * len(ordered)) - 1]


@pytest.fixture
def two_days(fake, database_url):
    """Transcripts on two UTC days with known turnaround; audio durations come from the details."""
    start = _FIRST
    made = []
    for n in range(30):
        created = start + timedelta(minutes=4 * n)  # crosses midnight UTC at n = 15
        seconds = 5 + (n * 7) % 23 + 0.25
        status = "error" if n % 10 == 3 else "completed"
        (item,) = fake.add(
            1, status=status,
            created=created.isoformat(timespec="microseconds"),
            completed=(created + timedelta(seconds=seconds)).isoformat(timespec="microseconds"),
        )
        made.append((item, seconds))
    fake.add(2, status="queued", created=(start + timedelta(hours=3)).isoformat(timespec="microseconds"))
    result = run_cli(["sync"], cli_env(fake, database_url))  # with hydration: audio_duration filled
    assert result.exit_code == 0, result.output
    return made


def expected_day(made, rows, day):
    mine = [(item, seconds) for item, seconds in made if item["created"].startswith(day)]
    done = [(item, seconds) for item, seconds in mine if item["status"] == "completed"]
    errors = sum(1 for item, _ in mine if item["status"] == "error")
    return {
        "completed": len(done),
        "error": errors,
        "error_rate": errors / len(mine),
        "audio_hours": sum(rows[item["id"]]["audio_duration"] for item, _ in done) / 3600,
        "median_seconds": nearest_rank([s for _, s in done], 0.5),
        "p95_seconds": nearest_rank([s for _, s in done], 0.95),
    }


def test_views_compute_daily_figures(database_url, fake, two_days):
    rows = stored(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        turnaround = {str(r.day): r for r in conn.execute(text("SELECT * FROM daily_turnaround"))}
        errors = {str(r.day): r for r in conn.execute(text("SELECT * FROM daily_error_rate"))}
        audio = {str(r.day): r for r in conn.execute(text("SELECT * FROM daily_audio_hours"))}
        counts = {(str(r.day), r.status): r.transcripts for r in conn.execute(text("SELECT * FROM daily_status_counts"))}
    engine.dispose()
    for day in (DAY_ONE, DAY_TWO):
        want = expected_day(two_days, rows, day)
        assert turnaround[day].completed == want["completed"]
        assert float(turnaround[day].median_seconds) == pytest.approx(want["median_seconds"], abs=1e-3)
        assert float(turnaround[day].p95_seconds) == pytest.approx(want["p95_seconds"], abs=1e-3)
        assert float(errors[day].error_rate) == pytest.approx(want["error_rate"])
        assert float(audio[day].audio_hours) == pytest.approx(want["audio_hours"])
        assert counts[(day, "completed")] == want["completed"]
    assert counts[(DAY_TWO, "queued")] == 2


def test_stats_command_formats_and_range(database_url, fake, two_days):
    env = cli_env(fake, database_url)
    as_json = json.loads(run_cli(["stats", "--since", DAY_ONE, "--until", DAY_TWO, "--format", "json"], env).stdout)
    assert [row["day"] for row in as_json] == [DAY_TWO, DAY_ONE]
    assert sum(row["transcripts"] for row in as_json) == 32
    assert as_json[0]["pending"] == 2
    only_one = json.loads(run_cli(["stats", "--since", DAY_TWO, "--until", DAY_TWO, "--format", "json"], env).stdout)
    assert [row["day"] for row in only_one] == [DAY_TWO]
    table = run_cli(["stats", "--since", DAY_ONE, "--until", DAY_TWO], env).stdout.splitlines()
    assert table[0].split() == ["day", "account", "transcripts", "completed", "error", "pending", "error_rate",
                                "audio_hours", "median_seconds", "p95_seconds"]
    assert table[1].startswith(DAY_TWO) and table[2].startswith(DAY_ONE)
    parsed = list(csv.DictReader(io.StringIO(run_cli(["stats", "--since", DAY_ONE, "--format", "csv", "--until", DAY_TWO], env).stdout)))
    assert [row["day"] for row in parsed] == [DAY_TWO, DAY_ONE]
    empty = run_cli(["stats", "--since", LATER_ONE, "--until", LATER_TWO], env)
    assert empty.stdout.strip() == "no transcripts created in that period"
    assert len(run_cli(["stats"], env).stdout.splitlines()) == 3  # by default the last 30 days: both


def test_stats_before_any_sync_says_what_to_do(sqlite_url, fake):
    result = run_cli(["stats"], cli_env(fake, sqlite_url))
    assert result.exit_code == 1
    assert "run `aai-etl sync` or `aai-etl db upgrade`" in result.stderr
