"""Prometheus metrics: the node_exporter textfile and a real Pushgateway, so "no success for 2 hours" can alert."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import cli_env, run_cli
from prometheus_client.parser import text_string_to_metric_families

# Debian's prometheus-pushgateway; .ci/run installs it, the tests only start it.
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a metrics exposition, keyed by name and labels, parsed by prometheus_client."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pushgateway(tmp_path) -> Iterator[str]:
    assert os.access(PUSHGATEWAY, os.X_OK), f"{PUSHGATEWAY} is missing: apt-get install prometheus-pushgateway (.ci/run does)"
    port = free_port()
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the Pushgateway did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        return samples(response.read().decode())


def pushed(scraped: dict, name: str, account: str = "default", **labels: str) -> float | None:
    key = frozenset({"job": "aai_etl", "account": account, "instance": "", **labels}.items())
    return scraped.get((f"aai_etl_{name}", key))


def test_metrics_file_has_the_run_and_the_last_success_and_a_failure_keeps_it(database_url, fake, tmp_path):
    fake.add(7)
    fake.add(2, status="queued")
    path = tmp_path / "textfile" / "aai_etl.prom"
    path.parent.mkdir()
    env = cli_env(fake, database_url)
    before = time.time()
    assert run_cli(["sync", "--metrics-file", str(path)], env).exit_code == 0
    first = samples(path.read_text())
    account = frozenset({"account": "default"}.items())
    last_success = first[("aai_etl_last_success_timestamp_seconds", account)]
    assert before - 1 <= last_success <= time.time()
    assert first[("aai_etl_last_run_success", account)] == 1
    assert first[("aai_etl_last_run_rows", frozenset({"account": "default", "change": "inserted"}.items()))] == 9
    assert first[("aai_etl_last_run_requests", account)] == 1 + 7  # one page, seven details
    assert first[("aai_etl_last_run_details_fetched", account)] == 7
    assert first[("aai_etl_pending_transcripts", account)] == 2
    assert first[("aai_etl_hydration_backlog", account)] == 0
    assert first[("aai_etl_last_run_duration_seconds", account)] > 0

    # A failed run: the file says so, and still holds the last success (from the database).
    failed = run_cli(["sync", "--metrics-file", str(path)], {**env, "ASSEMBLYAI_API_KEY": "a-rejected-key"})
    assert failed.exit_code == 1
    second = samples(path.read_text())
    assert second[("aai_etl_last_run_success", account)] == 0
    assert second[("aai_etl_last_success_timestamp_seconds", account)] == last_success
    assert second[("aai_etl_last_run_timestamp_seconds", account)] > last_success
    assert os.listdir(path.parent) == ["aai_etl.prom"]  # written beside and renamed: no leftovers


def test_an_unwritable_metrics_file_is_a_warning_not_a_failed_sync(sqlite_url, fake, tmp_path):
    fake.add(1)
    result = run_cli(["sync", "--metrics-file", str(tmp_path / "missing-dir" / "aai_etl.prom")], cli_env(fake, sqlite_url))
    assert result.exit_code == 0
    assert "warning: could not write the metrics file" in result.stderr


def test_pushgateway_gets_pushadd_metrics_and_a_failed_run_keeps_the_last_success(database_url, fake, pushgateway, tmp_path):
    fake.add(4)
    env = cli_env(fake, database_url)
    assert run_cli(["sync", "--pushgateway", pushgateway], env).exit_code == 0
    first = scrape(pushgateway)
    last_success = pushed(first, "last_success_timestamp_seconds")
    assert last_success is not None and abs(last_success - time.time()) < 60
    assert pushed(first, "last_run_success") == 1
    assert pushed(first, "last_run_rows", change="inserted") == 4
    assert pushed(first, "last_run_retries") == 0

    # The key is rejected: the run fails, the push says so, the last success stays.
    assert run_cli(["sync", "--pushgateway", pushgateway], {**env, "ASSEMBLYAI_API_KEY": "a-rejected-key"}).exit_code == 1
    second = scrape(pushgateway)
    assert pushed(second, "last_run_success") == 0
    assert pushed(second, "last_success_timestamp_seconds") == last_success

    # Not even the database can be reached: only what is known is pushed, and pushadd keeps the rest.
    unreachable = {**env, "AAI_ETL_DATABASE_URL": f"sqlite:///{tmp_path}/no-such-dir/x.db"}
    result = run_cli(["sync", "--pushgateway", pushgateway], unreachable)
    assert result.exit_code == 1
    third = scrape(pushgateway)
    assert pushed(third, "last_run_success") == 0
    assert pushed(third, "last_run_timestamp_seconds") > pushed(second, "last_run_timestamp_seconds")
    assert pushed(third, "last_success_timestamp_seconds") == last_success
    assert pushed(third, "pending_transcripts") == 0  # from the last push that knew it


def test_each_account_is_its_own_group_on_the_pushgateway(sqlite_url, fake, pushgateway, tmp_path):
    fake.add(2)
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[[accounts]]\nname = "us-main"\napi_key_env = "KEY_US"\n\n[[accounts]]\nname = "eu"\napi_key_env = "KEY_EU"\n'
    )
    env = {**cli_env(fake, sqlite_url), "KEY_US": fake.api_key, "KEY_EU": "a-rejected-key"}
    assert run_cli(["sync", "--config", str(config), "--pushgateway", pushgateway], env).exit_code == 1
    scraped = scrape(pushgateway)
    assert pushed(scraped, "last_run_success", account="us-main") == 1
    assert pushed(scraped, "last_run_success", account="eu") == 0
    assert pushed(scraped, "last_success_timestamp_seconds", account="eu") is None  # never succeeded


def test_a_pushgateway_that_is_down_is_a_warning_not_a_failed_sync(sqlite_url, fake):
    fake.add(1)
    down = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["sync", "--pushgateway", down], cli_env(fake, sqlite_url))
    assert result.exit_code == 0, result.output
    assert f"warning: could not push metrics of 'default' to the Pushgateway {down}" in result.stderr
    assert result.stdout.startswith("sync of 'default' done: 1 new")
