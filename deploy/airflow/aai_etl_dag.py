"""An Airflow DAG that syncs every configured AssemblyAI account as a task of its own, then exports the Parquet feed.

Copy this file into your DAGs folder. The workers need aai-etl installed (`pip install 'aai-etl[postgres,parquet]'`)
and the job's own environment: AAI_ETL_CONFIG (the config file that lists the accounts), AAI_ETL_DATABASE_URL if the
file does not say, and each account's key variable. The DAG never repeats a setting: it asks the job for the
accounts (`aai-etl config accounts --json`) when it runs.

- One mapped task per account, at most as many at once as the pool `aai_etl` has slots
  (`airflow pools set aai_etl 4 "aai-etl accounts"`).
- Exit status 75 (another run of that account holds its lock) skips the task; 2 (a configuration mistake) fails it
  without retries, since no retry can fix it; any other failure is retried with exponential backoff.
- Then `aai-etl export --format parquet` writes the change feed under AAI_ETL_EXPORT_DIR (default
  /var/lib/aai-etl/feed), carrying the watermark in AAI_ETL_EXPORT_DIR/watermark from one run to the next.

Environment of the workers, read when a task runs: AAI_ETL_COMMAND (the aai-etl executable, default `aai-etl`),
AAI_ETL_EXPORT_DIR. When the DAG is parsed: AAI_ETL_SCHEDULE (default every 15 minutes) and AAI_ETL_POOL.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.decorators import dag, task
from airflow.exceptions import AirflowFailException, AirflowSkipException

# aai-etl's exit statuses (its --help lists them).
ALREADY_RUNNING = 75
CONFIG_MISTAKE = 2


def _aai_etl(*arguments: str) -> subprocess.CompletedProcess:
    command = [os.environ.get("AAI_ETL_COMMAND", "aai-etl"), *arguments]
    done = subprocess.run(command, capture_output=True, text=True)
    # Into the task's log: the job's JSON lines on stderr, its summary or watermark on stdout.
    print(done.stderr, end="")
    print(done.stdout, end="")
    return done


def _raise_for(done: subprocess.CompletedProcess, what: str) -> None:
    """Turn aai-etl's exit status into the task's outcome."""
    if done.returncode == 0:
        return
    line = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode == ALREADY_RUNNING:
        raise AirflowSkipException(f"{what}: another run holds the lock ({line})")
    if done.returncode == CONFIG_MISTAKE:
        raise AirflowFailException(f"{what}: configuration mistake, not retried: {line}")
    raise RuntimeError(f"{what} exited with status {done.returncode}: {line}")


@dag(
    dag_id="aai_etl",
    schedule=os.environ.get("AAI_ETL_SCHEDULE", "*/15 * * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
    },
    tags=["aai-etl"],
)
def aai_etl():
    @task(retries=0)
    def accounts() -> list[str]:
        done = _aai_etl("config", "accounts", "--json")
        _raise_for(done, "aai-etl config accounts")
        return [account["name"] for account in json.loads(done.stdout)]

    @task(pool=os.environ.get("AAI_ETL_POOL", "aai_etl"))
    def sync(account: str) -> None:
        _raise_for(_aai_etl("sync", "--account", account, "--log-format", "json"), f"aai-etl sync of {account!r}")

    # Runs when no sync failed: an account skipped for a held lock does not hold back the others' feed.
    @task(trigger_rule="none_failed")
    def export() -> None:
        folder = Path(os.environ.get("AAI_ETL_EXPORT_DIR", "/var/lib/aai-etl/feed"))
        folder.mkdir(parents=True, exist_ok=True)
        mark = folder / "watermark"
        since = mark.read_text().strip() if mark.exists() else "0"
        done = _aai_etl("export", "--format", "parquet", "--output-dir", str(folder), "--since", since, "--log-format", "json")
        _raise_for(done, "aai-etl export")
        staged = mark.with_suffix(".new")
        staged.write_text(done.stdout.strip() + "\n")
        staged.replace(mark)  # the new watermark only once the files it covers are in place

    sync.expand(account=accounts()) >> export()


aai_etl()
