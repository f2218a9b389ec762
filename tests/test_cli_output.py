"""What cron, log collectors and people see: a summary line, --quiet, JSON logs, status, clean errors."""

from __future__ import annotations

import json
import re

import pytest
from conftest import API_KEY, cli_env, empty_database, run_cli, summary_json, sync
from sqlalchemy import create_engine, text

from etl.tools.simulator import FakeAssemblyAI, Fault


def test_text_summary_is_one_line(database_url, fake):
    fake.add(250)
    result = sync(fake, database_url)
    assert result.exit_code == 0
    assert re.fullmatch(
        r"sync of 'default' done: 250 new, 0 updated, 0 unchanged, 0 bad values, 2 pages, 2 requests, \d+\.\ds\n",
        result.stdout,
    )


def test_quiet_prints_nothing_on_success(sqlite_url, fake):
    fake.add(5)
    result = sync(fake, sqlite_url, "--quiet")
    assert (result.exit_code, result.output) == (0, "")


def test_quiet_prints_nothing_on_a_healthy_run_with_faults_and_counts_the_retries(sqlite_url, tmp_path):
    with FakeAssemblyAI(api_key=API_KEY, fault_rate=0.1, seed=3) as api:
        api.malformed_bodies = False  # clean data: the faults are the network's only
        api.add(40)
        api.fail_next(Fault.status(503))  # at least one retry, whatever the draw
        metrics = tmp_path / "aai_etl.prom"
        env = cli_env(api, sqlite_url, AAI_ETL_MAX_RETRIES="8", AAI_ETL_BACKOFF_SECONDS="0.01")
        quiet = run_cli(["sync", "--quiet", "--metrics-file", str(metrics)], env)
        assert (quiet.exit_code, quiet.output) == (0, "")
        retries = int(re.search(r'^aai_etl_last_run_retries\{account="default"\} (\d+)', metrics.read_text(), re.M)[1])
        assert retries >= 1
        # Without --quiet: the summary line counts them, and no line is a warning.
        api.add(5)
        api.fail_next(Fault.status(500))
        loud = run_cli(["sync"], env)
    assert loud.exit_code == 0 and "warning" not in loud.output
    assert re.search(r", \d+ retr(y|ies), ", loud.stdout), loud.stdout


def test_a_request_that_keeps_failing_is_one_warning_while_it_retries(sqlite_url, fake):
    fake.add(3)
    fake.fail_next(*[Fault.status(503)] * 4)
    result = sync(fake, sqlite_url, AAI_ETL_MAX_RETRIES="6", AAI_ETL_BACKOFF_SECONDS="0.01")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["aai-etl: warning: HTTP 503 Service Unavailable, 3 times in a row for one request; still retrying (attempt 4 of 7)"]
    assert ", 4 retries, " in result.stdout


def test_status_quiet_prints_only_problems(sqlite_url, fake):
    fake.add(2)
    env = cli_env(fake, sqlite_url)
    assert run_cli(["sync"], env).exit_code == 0
    assert (run_cli(["status", "-q"], env).output) == ""  # healthy: nothing
    failed = run_cli(["sync"], {**env, "ASSEMBLYAI_API_KEY": "wrong"})
    assert failed.exit_code == 1
    shown = run_cli(["status", "-q"], env)
    assert shown.exit_code == 0
    (line,) = shown.stdout.splitlines()
    assert line.startswith("account 'default': the last run (#2,") and "failed: the API key was rejected" in line


def test_json_logs_are_one_object_per_line(sqlite_url, fake):
    fake.add(2)
    fake.add(1, completed="foo")
    result = sync(fake, sqlite_url, "--log-format", "json")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {record["level"] for record in records} == {"info", "warning"}
    assert any("unreadable completed 'foo'" in record["message"] for record in records)
    summary = summary_json(result)
    assert summary["event"] == "run_finished" and summary["command"] == "sync" and summary["inserted"] == 3


def test_status_shows_cursor_pending_counts_and_runs(database_url, fake):
    fake.add(3, status="queued")
    fake.add(5)
    sync(fake, database_url)
    env = cli_env(fake, database_url)
    shown = run_cli(["status"], env).stdout
    newest = fake.listing()[0]
    assert f"high water   {newest['id']}" in shown
    assert "pending      3 not yet completed or error, oldest created" in shown
    assert "transcripts  8 (5 completed, 3 queued)" in shown
    assert re.search(r"#1 \S+ \S+ succeeded: 8 new, 0 updated", shown)
    report = json.loads(run_cli(["status", "--json"], env).stdout)
    (account,) = report["accounts"]
    assert account["by_status"] == {"completed": 5, "queued": 3}
    assert account["last_runs"][0]["outcome"] == "succeeded"


def test_status_on_an_empty_database_says_what_to_do(sqlite_url, fake):
    result = run_cli(["status"], cli_env(fake, sqlite_url))
    assert result.exit_code == 0
    assert "schema       none yet: `aai-etl sync` or `aai-etl db upgrade` creates it" in result.stdout


def test_missing_api_key(sqlite_url, fake):
    env = cli_env(fake, sqlite_url)
    del env["ASSEMBLYAI_API_KEY"]
    result = run_cli(["sync"], env)
    assert (result.exit_code, result.stderr) == (2, "aai-etl: error: no API key: set ASSEMBLYAI_API_KEY to your AssemblyAI API key\n")


def test_unreachable_database_is_one_line_with_the_password_masked(fake):
    url = "postgresql+psycopg://etl:hunter2secret@127.0.0.1:1/transcripts"
    result = sync(fake, url)
    assert result.exit_code == 1
    assert result.stderr.startswith("aai-etl: error: cannot connect to the database postgresql+psycopg://etl:***@127.0.0.1:1/transcripts: ")
    assert len(result.stderr.splitlines()) == 1
    assert "hunter2secret" not in result.output


def test_wrong_driver_is_named(fake):
    result = sync(fake, "mysql://etl:hunter2secret@localhost/db")
    assert result.exit_code == 2
    assert "uses driver 'mysql', which aai-etl does not support" in result.stderr
    assert "hunter2secret" not in result.output


@pytest.mark.parametrize(
    "base_url, problem",
    [
        ("http://127.0.0.1:9", "connection to 127.0.0.1:9 refused"),
        ("http://aai-etl-test.invalid", "cannot resolve aai-etl-test.invalid (DNS lookup failed)"),
    ],
)
def test_unreachable_api_is_one_line(sqlite_url, fake, tmp_path, base_url, problem):
    config = tmp_path / "fast.toml"
    config.write_text("backoff_seconds = 0.01\n")
    result = run_cli(["sync", "--config", str(config)], cli_env(fake, sqlite_url, ASSEMBLYAI_BASE_URL=base_url))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"aai-etl: error: the AssemblyAI API kept failing ({problem}) after 4 attempts; "
        "everything synced so far is saved, run again later (max_retries raises the limit)"
    )
    assert "Traceback" not in result.output


def test_the_api_key_never_leaves_the_process(database_url, fake, tmp_path):
    """Across success, warnings, retries, a rejected key and a failed run: output, logs and rows stay clean."""
    config = tmp_path / "fast.toml"
    config.write_text("backoff_seconds = 0.01\n")
    fake.add(3, completed="foo")
    fake.fail_next(Fault.status(500), Fault.reset())
    outputs = [sync(fake, database_url, "--config", str(config), "--log-format", fmt).output for fmt in ("text", "json")]
    fake.fail_next(*[Fault.status(503)] * 4)  # max_retries=3: four attempts, then the run fails
    outputs.append(sync(fake, database_url, "--config", str(config)).output)
    outputs.append(run_cli(["status", "--json"], cli_env(fake, database_url)).output)
    outputs.append(sync(fake, database_url, ASSEMBLYAI_API_KEY=API_KEY + "x").output)
    for output in outputs:
        assert API_KEY not in output
    engine = create_engine(database_url)
    with engine.connect() as conn:
        for table in ("transcripts", "sync_runs", "sync_cursors", "alembic_version"):
            dump = json.dumps([list(map(str, row)) for row in conn.execute(text(f"SELECT * FROM {table}"))])
            assert API_KEY not in dump, table
    engine.dispose()


def test_a_password_in_the_database_url_is_masked_where_the_url_is_shown(tmp_path, fake):
    # PostgreSQL only: SQLite URLs carry no password. The test server's trust auth ignores it.
    with_password = empty_database("postgresql", tmp_path).replace("postgres@", "postgres:hunter2secret@", 1)
    assert "hunter2secret" in with_password, "the test database URL should name the user postgres"
    fake.add(2)
    assert sync(fake, with_password).exit_code == 0
    for args in (["status"], ["status", "--json"], ["sync", "--no-hydrate", "--log-format", "json"]):
        result = run_cli(args, cli_env(fake, with_password))
        assert result.exit_code == 0, result.output
        assert "hunter2secret" not in result.output
    assert "postgres:***@" in run_cli(["status"], cli_env(fake, with_password)).stdout


def test_status_on_an_older_schema_says_what_to_do(sqlite_url, fake):
    from etl.store import migrate
    from etl.store.engine import make_engine

    with make_engine(sqlite_url).connect() as conn:
        migrate.upgrade(conn, "0002")
    result = run_cli(["status"], cli_env(fake, sqlite_url))
    assert result.exit_code == 0, result.output
    assert f"schema       0002, not {migrate.HEAD}: `aai-etl sync` or `aai-etl db upgrade` brings it up to date" in result.stdout


def test_status_on_a_newer_schema_says_to_upgrade_aai_etl(sqlite_url, fake):
    from sqlalchemy import create_engine, text

    from etl.store import migrate
    from etl.store.engine import make_engine

    with make_engine(sqlite_url).connect() as conn:
        migrate.upgrade(conn, "head")
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    engine.dispose()
    result = run_cli(["status"], cli_env(fake, sqlite_url))
    assert result.exit_code == 1
    assert "which this aai-etl does not know" in result.stderr and "upgrade aai-etl" in result.stderr
