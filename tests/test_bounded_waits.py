"""Waits and inputs with a bound: a PostgreSQL host that drops packets, a config path that is no config file, an
empty database URL, and a server clock ahead of ours each cost a line or a few requests, not minutes,
memory or a whole listing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from conftest import assert_table_equals_api, cli_env, run_cli, spawn, summary_json, sync

from etl.config import MAX_CONFIG_BYTES

# Far beyond the timeout asked for (2 s, twice), far below the kernel's own two minutes of SYN retries.
GENEROUS = 100


@pytest.fixture
def dropping_host() -> Iterator[str]:
    """A PostgreSQL URL whose host drops the packets: a listening socket that never accepts, its queue full,
    so the kernel drops every further connection's SYN, as a firewall that drops does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = [socket.create_connection(("127.0.0.1", port))]  # takes the queue's one place
    for _ in range(3):
        extra = socket.socket()
        extra.setblocking(False)
        extra.connect_ex(("127.0.0.1", port))
        queued.append(extra)
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/aai_etl"
    for sock in [*queued, server]:
        sock.close()


@pytest.mark.parametrize("command", [["sync", "--metrics-file", "METRICS"], ["status"], ["check"]])
def test_a_postgresql_host_that_drops_packets_fails_within_the_connect_timeout(fake, dropping_host, tmp_path, command):
    args = [str(tmp_path / "aai_etl.prom") if arg == "METRICS" else arg for arg in command]
    env = cli_env(fake, dropping_host, AAI_ETL_DATABASE_CONNECT_TIMEOUT="2")
    process = spawn(args, env)
    try:
        out, err = process.communicate(timeout=GENEROUS)
    finally:
        process.kill()
    assert process.returncode == 1, out + err
    output = out + err
    failures = [line for line in output.splitlines() if "cannot connect to the database" in line]
    assert len(failures) == 1, output
    assert dropping_host in failures[0] and "timeout" in failures[0]
    assert "Traceback" not in output


def test_a_connect_timeout_in_the_url_wins(fake, dropping_host):
    process = spawn(["status"], cli_env(fake, f"{dropping_host}?connect_timeout=2", AAI_ETL_DATABASE_CONNECT_TIMEOUT="600"))
    try:
        out, err = process.communicate(timeout=GENEROUS)
    finally:
        process.kill()
    assert process.returncode == 1 and "timeout" in err, out + err


@pytest.mark.parametrize("content", ["big", "/dev/zero"])
def test_a_config_file_past_the_size_cap_is_refused_in_one_line(fake, sqlite_url, tmp_path, content):
    path = content
    if content == "big":
        big = tmp_path / "settings.toml"
        big.write_text("# a comment line of a settings file that is far too long\n" * (MAX_CONFIG_BYTES // 50))
        path = str(big)
    result = run_cli(["sync"], cli_env(fake, sqlite_url, AAI_ETL_CONFIG=path))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert f"config file {path} is larger than 1 MiB" in line
    assert not fake.requests


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_database_url_variable_is_a_configuration_error(fake, tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    fake.add(2)
    result = run_cli(["sync"], cli_env(fake, value))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "AAI_ETL_DATABASE_URL is set but empty" in line
    assert list(tmp_path.iterdir()) == [] and not fake.requests


def test_a_server_clock_ahead_of_ours_costs_an_idle_run_no_more_than_one_in_step(database_url, fake):
    ahead = timedelta(hours=3)
    fake.clock_offset = ahead
    # Every transcript created within the server's last two hours: by our clock, in the future.
    fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) + ahead - timedelta(hours=2)
    fake.add(1000, spread=timedelta(minutes=100))
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)
    fake.add(5)
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)
    for _ in range(2):
        result = sync(fake, database_url, "--log-format", "json")
        assert result.exit_code == 0, result.output
        assert summary_json(result)["requests"] == 1  # one after_id request: nothing newer
