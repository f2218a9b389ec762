"""The Airflow DAG in deploy/airflow, run for real with `airflow dags test` against the simulator and PostgreSQL.

Airflow lives in a virtual environment of its own (it pins libraries aai-etl does not); AAI_ETL_AIRFLOW names its
`airflow` executable. `.ci/run` installs it and sets AAI_ETL_REQUIRE_AIRFLOW=1, so that a missing Airflow fails
these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import empty_database, required, stored
from sqlalchemy import create_engine

from etl.store import lock
from etl.tools.simulator import FakeAssemblyAI

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = os.environ.get("AAI_ETL_AIRFLOW")
KEYS = {"us": "us-key-0b1c2d3e", "eu": "eu-key-4f5a6b7c", "apac": "apac-key-8d9e0f1a"}


def _airflow() -> str:
    found = AIRFLOW if AIRFLOW and Path(AIRFLOW).is_file() else None
    return required(found, f"no Airflow at AAI_ETL_AIRFLOW={AIRFLOW!r}: install apache-airflow in a virtual environment and set it", "AAI_ETL_REQUIRE_AIRFLOW")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Run an `airflow` command in a fresh Airflow home whose DAGs folder is deploy/airflow."""
    home = tmp_path_factory.mktemp("airflow")
    base = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("ASSEMBLYAI_", "AAI_ETL_", "AIRFLOW"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "deploy" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    executable = _airflow()

    def run(*arguments: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([executable, *arguments], env={**base, **env}, capture_output=True, text=True, timeout=600)

    for command in (["db", "migrate"], ["dags", "reserialize"], ["pools", "set", "aai_etl", "2", "aai-etl accounts at once"]):
        done = run(*command)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run


def _json(done: subprocess.CompletedProcess) -> list[dict]:
    """The JSON list an `airflow ... -o json` command prints, among whatever else it logs."""
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("[")))


def _states(airflow, day: str) -> dict[tuple[str, int], str]:
    """Each task instance's state in the DAG run of `day`, keyed by (task id, map index)."""
    runs = _json(airflow("dags", "list-runs", "-d", "aai_etl", "-o", "json"))
    run_id = next(run["run_id"] for run in runs if run["execution_date"].startswith(day))
    rows = _json(airflow("tasks", "states-for-dag-run", "aai_etl", run_id, "-o", "json"))
    return {(row["task_id"], int(row.get("map_index") or -1)): row["state"] for row in rows}


def _job_env(config: Path, database_url: str, feed: Path, **keys: str) -> dict[str, str]:
    return {
        "AAI_ETL_COMMAND": str(Path(sys.executable).with_name("aai-etl")),
        "AAI_ETL_CONFIG": str(config),
        "AAI_ETL_DATABASE_URL": database_url,
        "AAI_ETL_EXPORT_DIR": str(feed),
        "AAI_ETL_REQUESTS_PER_MINUTE": "600000",  # the simulator is on loopback: no account budget to share
        **keys,
    }


def test_one_task_per_account_a_held_lock_skips_and_a_missing_key_fails_without_retries(airflow, tmp_path):
    database_url = empty_database("postgresql", tmp_path)
    feed = tmp_path / "feed"
    with FakeAssemblyAI(api_key=KEYS["us"], seed=1) as us, FakeAssemblyAI(api_key=KEYS["eu"], seed=2) as eu, \
            FakeAssemblyAI(api_key=KEYS["apac"], seed=3) as apac:
        apis = {"us": us, "eu": eu, "apac": apac}
        for count, api in zip((120, 40, 75), apis.values(), strict=True):
            api.add(count)
        config = tmp_path / "accounts.toml"
        config.write_text("".join(
            f'[[accounts]]\nname = "{name}"\napi_key_env = "KEY_{name.upper()}"\nbase_url = "{api.base_url}"\n'
            for name, api in apis.items()
        ))
        keys = {f"KEY_{name.upper()}": key for name, key in KEYS.items()}

        # Another run of 'eu' holds its lock for the whole DAG run: its task is skipped, the others sync and export.
        engine = create_engine(database_url)
        with engine.connect() as conn, lock.hold(conn, "sync-eu", wait=False):
            done = airflow("dags", "test", "aai_etl", "2026-12-01", **_job_env(config, database_url, feed, **keys))
        engine.dispose()
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert _states(airflow, "2026-12-01") == {
            ("accounts", -1): "success",
            ("sync", 0): "success", ("sync", 1): "skipped", ("sync", 2): "success",
            ("export", -1): "success",
        }
        rows = stored(database_url)
        for name, api in apis.items():
            expected = set() if name == "eu" else {item["id"] for item in api.listing()}
            assert {i for i, row in rows.items() if row["account"] == name} == expected, name
        assert list((feed / "transcripts").glob("*.parquet")) and int((feed / "watermark").read_text()) > 0

        # Without the lock 'eu' syncs too; 'apac' without its key is a configuration mistake: failed, not retried.
        del keys["KEY_APAC"]
        airflow("dags", "test", "aai_etl", "2026-12-02", **_job_env(config, database_url, feed, **keys))
        states = _states(airflow, "2026-12-02")
        assert (states[("sync", 0)], states[("sync", 1)], states[("sync", 2)]) == ("success", "success", "failed")
        assert states[("export", -1)] == "upstream_failed"
        assert {i for i, row in stored(database_url).items() if row["account"] == "eu"} == {item["id"] for item in eu.listing()}
