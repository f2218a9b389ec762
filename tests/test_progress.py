"""Where a long run is: bars on a terminal, a progress event every interval in text and JSON logs."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from conftest import API_KEY, cli_env, run_cli, spawn

from etl.tools.simulator import FakeAssemblyAI, Fault


def slow_fake(n: int) -> FakeAssemblyAI:
    """Enough latency that hydrating `n` transcripts with 2 workers takes a second or two."""
    api = FakeAssemblyAI(api_key=API_KEY, latency=0.03).start()
    api.malformed_bodies = False  # warnings about drifted bodies would interleave with the progress lines
    api.add(n)
    return api


def test_json_log_follows_one_run_with_progress_retries_and_an_eta(sqlite_url):
    with slow_fake(100) as api:
        # The first detail fetch is rate limited: the run waits a second, and says so.
        api.fail_next(Fault.none(), Fault.status(429, headers={"Retry-After": "1"}))
        env = cli_env(api, sqlite_url, AAI_ETL_PROGRESS_INTERVAL="0.25")
        result = run_cli(["sync", "--log-format", "json", "--config", _workers(sqlite_url, 2)], env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    summary = json.loads(result.stdout)
    run_ids = {line["run_id"] for line in lines} | {summary["run_id"]}
    assert len(run_ids) == 1 and all(line["event"] for line in lines)
    events = [line["event"] for line in lines]
    assert events.index("run_started") < events.index("progress")
    assert summary["event"] == "run_finished" and lines[events.index("run_started")]["sync_run"] == 1
    # A retry that succeeded is a count, not a line.
    assert "retrying" not in events and not any(line["level"] == "warning" for line in lines)
    progress = [line for line in lines if line["event"] == "progress"]
    hydrating = [line for line in progress if line["phase"] == "hydrating"]
    assert hydrating, "a progress event during hydration"
    for line in hydrating:
        assert line["total"] == 100 and 0 <= line["done"] <= 100 and line["rate"] >= 0
        assert "eta_seconds" in line and "of 100" in line["message"]
    # The one at the retry's wait still came: a run waiting on the API says it is alive.
    assert any(line["retries"] == 1 and line["rate_limited"] == 1 for line in progress)
    assert summary["retries"] == 1 and summary["rate_limited"] == 1 and summary["hydrated"] == 100


def test_text_log_gets_a_progress_line_every_interval_and_a_short_run_none(sqlite_url):
    # Progress counts committed batches of 50: three of them leave ticks between commits however busy the machine.
    with slow_fake(150) as api:
        env = cli_env(api, sqlite_url)
        result = run_cli(["sync", "--progress-interval", "0.2", "--config", _workers(sqlite_url, 2)], env)
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if "upgrading the database schema" not in line]
        assert lines and all(re.fullmatch(r"aai-etl: 'default' (listing|details): .*", line) for line in lines), lines
        assert any(re.search(r"details: \d+ of 150, [\d.]+/s, about \d+(m \d+)?s left", line) for line in lines), lines
        api.add(3)
        quick = run_cli(["sync", "--no-hydrate"], env)  # well under the default 30 s: the summary alone
    assert (quick.exit_code, quick.stderr) == (0, "")
    assert quick.stdout.startswith("sync of 'default' done: 3 new")


def test_listing_progress_says_how_far_back_the_walk_has_read(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.1) as api:
        api.add(2000)  # ten pages, a second or more
        oldest, newest = api.listing()[-1]["created"], api.listing()[0]["created"]
        env = cli_env(api, sqlite_url, AAI_ETL_PROGRESS_INTERVAL="0.15")
        result = run_cli(["sync", "--no-hydrate", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    listing = [json.loads(line) for line in result.stderr.splitlines()]
    listing = [line for line in listing if line["event"] == "progress" and line["phase"] == "listing" and line["listed_back_to"]]
    assert listing, "a progress event while listing"
    window_start = datetime.now(timezone.utc) - timedelta(days=90)
    for line in listing:
        assert oldest[:10] <= line["listed_back_to"][:10] <= newest[:10]
        assert line["walking_down_to"][:10] in {f"{window_start:%Y-%m-%d}", f"{window_start - timedelta(days=1):%Y-%m-%d}"}
        assert f"back to {line['listed_back_to']} (walking down to {line['walking_down_to']})" in line["message"]
        assert 0 < line["rows"] < 2000 and line["rate"] > 0


def test_progress_interval_must_be_positive(sqlite_url, fake):
    result = run_cli(["sync", "--progress-interval", "0"], cli_env(fake, sqlite_url))
    assert result.exit_code == 2 and "flag --progress-interval: must be greater than 0" in result.stderr


def test_a_terminal_gets_bars_with_totals_and_log_lines_above_them(sqlite_url):
    with slow_fake(120) as api:
        api.fail_next(Fault.none(), Fault.status(429, headers={"Retry-After": "1"}))
        controller, terminal = pty.openpty()
        process = spawn(
            ["sync", "--config", _workers(sqlite_url, 2)],
            cli_env(api, sqlite_url, COLUMNS="120"),
            stderr=terminal,
        )
        os.close(terminal)
        shown = _read_all(controller).decode()
        process.wait(timeout=60)
    assert process.returncode == 0, shown
    assert process.stdout.read().startswith("sync of 'default' done: 120 new")
    fragments = [fragment.strip() for fragment in re.split(r"[\r\n]|\x1b\[[0-9;]*[A-Za-z]", shown)]
    bars = [fragment for fragment in fragments if fragment.startswith("default: details")]
    assert any(re.search(r"\b\d+/120\b.*<", bar) for bar in bars), bars  # done/total, then tqdm's ETA
    # A retry that succeeds is said on the bar, waiting and then counted, never as a line above it.
    assert not [fragment for fragment in fragments if fragment.startswith("aai-etl: warning")], shown
    assert any("waiting" in bar and "after HTTP 429" in bar for bar in bars), bars
    assert any("retries 1 (1 after HTTP 429)" in bar for bar in bars), bars


def test_no_progress_library_and_no_metrics_library_are_imported_off_a_terminal(sqlite_url, fake):
    fake.add(3)
    code = (
        "import sys\n"
        "from etl.cli import cli\n"
        "cli(['sync'], standalone_mode=False)\n"
        "print(sorted(name for name in ('tqdm', 'prometheus_client', 'etl.tools.simulator') if name in sys.modules))\n"
    )
    env = {**os.environ, **cli_env(fake, sqlite_url)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def _workers(sqlite_url: str, workers: int) -> str:
    path = sqlite_url.removeprefix("sqlite:///") + ".toml"
    with open(path, "w") as config:
        config.write(f"hydrate_workers = {workers}\nbackoff_seconds = 0.05\n")
    return path


def _read_all(fd: int) -> bytes:
    shown = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            return shown
        if not chunk:
            return shown
        shown += chunk


def test_rate_and_eta_are_of_the_current_phase_not_of_the_whole_run():
    from etl.outputs.progress import RunProgress, describe
    from etl.sync.record import RunStats

    now = [0.0]
    progress = RunProgress(clock=lambda: now[0])
    stats = RunStats(account="default")
    progress.update("run_started", stats)
    progress.update("phase", stats)
    now[0], stats.inserted, stats.pages = 10.0, 1000, 5
    assert progress.update("progress", stats)["rate"] == 100.0  # listing: 1,000 in 10 s
    stats.phase, stats.hydrate_total = "hydrating", 1000
    progress.update("phase", stats)
    now[0], stats.hydrated, stats.hydrate_failures = 20.0, 450, 50
    fields = progress.update("progress", stats)
    # 500 details in the 10 s since hydration began, not 500 over the run's 20 s.
    assert (fields["rate"], fields["eta_seconds"], fields["done"], fields["total"]) == (50.0, 10, 500, 1000)
    assert describe(fields) == "'default' details: 500 of 1,000 (50 failed), 50.0/s, about 10s left"
    now[0] = 40.0  # nothing more arrived: the rate falls, the ETA grows
    assert progress.fields()["rate"] == 16.7 and progress.fields()["eta_seconds"] == 30


def test_a_walk_by_days_says_days_done_of_days_to_do_and_the_oldest_day_reached(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01) as api:
        api.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=9)
        api.add(800, spread=timedelta(days=8))
        today, window = f"{datetime.now(timezone.utc):%Y-%m-%d}", datetime.now(timezone.utc) - timedelta(days=92)
        env = cli_env(api, sqlite_url, AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="4", AAI_ETL_PROGRESS_INTERVAL="0.05")
        result = run_cli(["sync", "--no-hydrate", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    progress = [json.loads(line) for line in result.stderr.splitlines()]
    progress = [line for line in progress if line["event"] == "progress" and line["phase"] == "listing" and line["days_total"]]
    assert progress, "a progress event while walking the days"
    for line in progress:
        assert 0 <= line["days_done"] <= line["days_total"] and line["days_total"] >= 90  # the listing's window
        assert f"{line['days_done']:,} of {line['days_total']:,} days done" in line["message"]
        if line["oldest_day"]:  # the oldest day walked, with transcripts or none
            assert f"{window:%Y-%m-%d}" <= line["oldest_day"] <= today and f"reached {line['oldest_day']}" in line["message"]
    reached = [line["oldest_day"] for line in progress if line["oldest_day"]]
    assert reached and reached == sorted(reached, reverse=True), reached  # only ever further back
    assert any(line["days_done"] for line in progress), progress


def test_the_details_phase_says_its_time_up_front_from_the_backlog_and_the_budget(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY) as api:
        api.add(20)
        # 600 requests a minute: 20 details take at least 2 s, more than the progress interval.
        env = cli_env(api, sqlite_url, AAI_ETL_REQUESTS_PER_MINUTE="600", AAI_ETL_PROGRESS_INTERVAL="1")
        result = run_cli(["sync", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    first = next(line for line in lines if line["event"] == "progress" and line["phase"] == "hydrating")
    assert (first["done"], first["total"], first["eta_seconds"]) == (0, 20, 2)
    assert "details: 0 of 20" in first["message"] and "about 2s left" in first["message"]
