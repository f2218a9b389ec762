"""`aai-etl check`: settings, database and each account's key, one line each, without a sync."""

from __future__ import annotations

from conftest import cli_env, run_cli, sync

from etl.store import migrate


def test_all_good_is_one_ok_line_each_and_exit_0(database_url, fake):
    result = run_cli(["check"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok    settings", "ok    database", "ok    account 'default'"]
    assert "schema not created yet; the next sync upgrades it" in lines[1]
    assert f"accepted by {fake.base_url}" in lines[2]
    assert [request["params"] for request in fake.requests] == [{"limit": "1"}]  # one small list request
    sync(fake, database_url)
    assert f"schema {migrate.HEAD} (up to date)" in run_cli(["check"], cli_env(fake, database_url)).stdout


def test_a_rejected_key_fails_its_check_with_exit_1(database_url, fake):
    result = run_cli(["check"], {**cli_env(fake, database_url), "ASSEMBLYAI_API_KEY": "not-the-right-key"})
    assert result.exit_code == 1
    assert "FAIL  account 'default': the API key was rejected (HTTP 401): check ASSEMBLYAI_API_KEY" in result.stdout
    assert "not-the-right-key" not in result.output


def test_an_unreachable_database_fails_its_check_and_the_key_is_still_checked(fake, tmp_path):
    result = run_cli(["check"], cli_env(fake, f"sqlite:///{tmp_path}/no-such-dir/x.db"))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("FAIL  database: cannot open the SQLite database")
    assert lines[2].startswith("ok    account 'default'")


def test_configuration_mistakes_exit_2(sqlite_url, fake, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("hydrate_workerz = 3\n")
    result = run_cli(["check", "--config", str(config)], cli_env(fake, sqlite_url))
    assert result.exit_code == 2
    assert result.stdout.startswith("FAIL  settings: config file") and "did you mean 'hydrate_workers'" in result.stdout
    no_key = run_cli(["check"], {**cli_env(fake, sqlite_url), "ASSEMBLYAI_API_KEY": ""})
    assert no_key.exit_code == 2 and "FAIL  account 'default': no API key" in no_key.stdout


def test_an_unreachable_api_says_what_was_checked_what_was_found_and_what_to_do(sqlite_url, fake):
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {**cli_env(fake, sqlite_url), "ASSEMBLYAI_BASE_URL": url, "AAI_ETL_BACKOFF_SECONDS": "0.01"}
    result = run_cli(["check"], env)
    assert result.exit_code == 1
    line = result.stdout.splitlines()[2]
    assert line == (
        f"FAIL  account 'default': GET {url}/v2/transcript failed: connection to {url.removeprefix('http://')} refused; "
        "check the network and the base_url setting, then run `aai-etl check` again"
    )
    assert "synced" not in result.output and "run again later" not in result.output
