"""Several accounts in one database: separate cursors, runs and locks; one failing does not stop the others."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, spawn, stored
from sqlalchemy import create_engine, select, text

from etl.store import migrate
from etl.store.engine import make_engine
from etl.store.schema import sync_runs
from etl.tools.simulator import FakeAssemblyAI

US_KEY, EU_KEY = "us-key-7d1c2b3a4e5f", "eu-key-0a9b8c7d6e5f"


@pytest.fixture
def two_accounts(tmp_path):
    with FakeAssemblyAI(api_key=US_KEY, seed=1) as us, FakeAssemblyAI(api_key=EU_KEY, seed=2) as eu:
        config = tmp_path / "accounts.toml"
        config.write_text(
            "backoff_seconds = 0.01\nmax_retries = 1\n"
            f'[[accounts]]\nname = "us"\napi_key_env = "AAI_KEY_US"\nbase_url = "{us.base_url}"\n'
            f'[[accounts]]\nname = "eu"\napi_key_env = "AAI_KEY_EU"\nbase_url = "{eu.base_url}"\n'
        )
        yield us, eu, str(config)


def env(database_url, **extra):
    return {"AAI_ETL_DATABASE_URL": database_url, "AAI_KEY_US": US_KEY, "AAI_KEY_EU": EU_KEY, **extra}


def by_account(database_url):
    rows = stored(database_url)
    result: dict[str, set[str]] = {}
    for transcript_id, row in rows.items():
        result.setdefault(row["account"], set()).add(transcript_id)
    return result


def test_sync_all_accounts_and_one_account(database_url, two_accounts):
    us, eu, config = two_accounts
    us.add(250)
    eu.add(30)
    result = run_cli(["--config", config, "sync"], env(database_url))
    assert result.exit_code == 0, result.output
    assert "sync of 'us' done: 250 new" in result.stdout and "sync of 'eu' done: 30 new" in result.stdout
    assert by_account(database_url) == {"us": {i["id"] for i in us.listing()}, "eu": {i["id"] for i in eu.listing()}}

    eu.add(5)
    us.add(5)
    only_eu = run_cli(["sync", "--account", "eu", "--config", config], env(database_url))
    assert only_eu.exit_code == 0 and "'us'" not in only_eu.stdout
    assert len(by_account(database_url)["eu"]) == 35 and len(by_account(database_url)["us"]) == 250

    shown = json.loads(run_cli(["status", "--json", "--config", config], env(database_url)).stdout)
    assert [(a["account"], a["transcripts"]) for a in shown["accounts"]] == [("us", 250), ("eu", 35)]


def test_one_failing_account_does_not_stop_the_others(database_url, two_accounts):
    us, eu, config = two_accounts
    us.add(3)
    eu.add(4)
    result = run_cli(["sync", "--config", config], env(database_url, AAI_KEY_US="revoked-key-123456"))
    assert result.exit_code == 1
    assert "aai-etl: error: account 'us': the API key was rejected (HTTP 401): check AAI_KEY_US" in result.stderr
    assert "sync of 'eu' done: 4 new" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "aai-etl: error: 1 of 2 accounts did not sync: us"
    assert "revoked-key-123456" not in result.output
    assert by_account(database_url) == {"eu": {i["id"] for i in eu.listing()}}


def test_missing_key_variable_names_the_account_and_the_variable(database_url, two_accounts):
    us, eu, config = two_accounts
    environment = env(database_url)
    del environment["AAI_KEY_EU"]
    result = run_cli(["sync", "--config", config], environment)
    assert result.exit_code == 2  # a configuration mistake, as the exit statuses page says
    assert (
        "aai-etl: error: account 'eu': no API key: the environment variable AAI_KEY_EU is not set "
        f"(api_key_env of account 'eu' in config file {config})"
    ) in result.stderr.splitlines()
    assert "sync of 'us' done" in result.stdout


def test_unknown_account(database_url, two_accounts):
    us, eu, config = two_accounts
    result = run_cli(["sync", "--account", "apac", "--config", config], env(database_url))
    assert (result.exit_code, result.stderr) == (2, "aai-etl: error: no account named 'apac' (configured: us, eu)\n")


def test_accounts_sync_in_parallel_processes(database_url, two_accounts):
    us, eu, config = two_accounts
    us.add(600)
    eu.add(600)
    release_us, release_eu = us.hold(1), eu.hold(1)
    first = spawn(["sync", "--no-hydrate", "--account", "us", "--config", config], env(database_url))
    second = spawn(["sync", "--no-hydrate", "--account", "eu", "--config", config], env(database_url))
    # Both hold their own account's lock at the same moment.
    assert us.held.wait(120) and eu.held.wait(120)
    release_us.set()
    release_eu.set()
    errors = []
    for process in (first, second):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        errors.append(err)
    # Both started on an empty database: one created the schema, the other waited for it.
    assert sum("upgrading the database schema from empty" in err for err in errors) == 1
    assert {a: len(ids) for a, ids in by_account(database_url).items()} == {"us": 600, "eu": 600}
    engine = create_engine(database_url)
    with engine.connect() as conn:
        outcomes = sorted(conn.execute(select(sync_runs.c.account, sync_runs.c.outcome)).all())
    engine.dispose()
    assert outcomes == [("eu", "succeeded"), ("us", "succeeded")]


def test_a_single_account_database_upgrades_without_losing_data(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "0001")
        conn.execute(
            text(
                "INSERT INTO transcripts (id, status, audio_url, raw, first_seen_at, changed_at) VALUES "
                "('t1', 'completed', 'http://deleted_by_user', '{\"id\": \"t1\"}', :now, :now), "
                "('t2', 'queued', 'https://a/2.mp3', '{\"id\": \"t2\"}', :now, :now)"
            ),
            {"now": "2026-11-01 10:00:00"},
        )
        conn.commit()
        migrate.upgrade(conn, "head")
        rows = conn.execute(text("SELECT account, id, status, deleted_at IS NOT NULL FROM transcripts ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [("default", "t1", "completed", True), ("default", "t2", "queued", False)]
