"""One JSON event schema: every line starts with time, level, event, run_id, account and message, then the
event's own fields, whatever the event and whether or not a run had started."""

from __future__ import annotations

import json
from datetime import datetime

from conftest import API_KEY, cli_env, run_cli

from etl.outputs.report import SCHEMA
from etl.tools.simulator import FakeAssemblyAI, Fault


def lines_of(result) -> list[dict]:
    return [json.loads(line) for line in (result.stderr + result.stdout).splitlines()]


def assert_schema(line: dict, account: str | None) -> None:
    assert tuple(line)[: len(SCHEMA)] == SCHEMA, line
    assert line["level"] in ("info", "warning", "error") and isinstance(line["message"], str) and line["message"]
    assert line["account"] == account and datetime.fromisoformat(line["time"]).tzinfo is not None
    # Figures a person reads are rounded: no float of more than one decimal.
    assert all(round(value, 1) == value for value in line.values() if isinstance(value, float)), line


def test_every_event_of_a_run_follows_the_schema(sqlite_url):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.02) as api:
        api.add(120)  # bodies of the malformed kind among them: `log` warnings
        # The first request fails three times in a row: one `keeps_failing` warning, then it succeeds.
        api.fail_next(*[Fault.status(503)] * 3)
        env = cli_env(api, sqlite_url, AAI_ETL_PROGRESS_INTERVAL="0.05", AAI_ETL_BACKOFF_SECONDS="0.05")
        result = run_cli(["sync", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    lines = lines_of(result)
    started = [line["event"] for line in lines].index("run_started")
    for position, line in enumerate(lines):
        assert_schema(line, "default" if position >= started else None)  # the schema's upgrade comes first
    events = {line["event"] for line in lines}
    assert {"run_started", "progress", "log", "keeps_failing", "run_finished"} <= events, events
    assert {line["phase"] for line in lines if line["event"] == "progress"} == {"listing", "hydrating"}
    (finished,) = [line for line in lines if line["event"] == "run_finished"]
    assert finished["level"] == "info" and finished["message"].startswith("sync of 'default' done: 120 new")
    assert "phase" not in finished and finished["retries"] == 3 and finished["command"] == "sync"
    assert len({line["run_id"] for line in lines}) == 1


def test_a_failed_run_and_an_error_before_any_run_follow_it_too(sqlite_url, fake, tmp_path):
    failed = run_cli(["sync", "--log-format", "json"], {**cli_env(fake, sqlite_url), "ASSEMBLYAI_API_KEY": "wrong"})
    assert failed.exit_code == 1
    (line,) = [line for line in lines_of(failed) if line["event"] == "run_failed"]
    assert_schema(line, "default")
    assert line["level"] == "error" and "HTTP 401" in line["message"]

    nowhere = f"sqlite:///{tmp_path}/no-such-directory/transcripts.db"
    early = run_cli(["sync", "--log-format", "json"], cli_env(fake, nowhere))
    assert early.exit_code == 1
    (line,) = lines_of(early)
    assert_schema(line, None)  # no run, no account yet
    assert line["event"] == "run_failed" and "cannot open the SQLite database" in line["message"]
