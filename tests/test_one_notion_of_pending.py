"""Pending means one thing everywhere: not yet `completed` or `error`, an unknown or unreadable status included,
as the sync re-checks it; `status`, `stats` and the metrics count the same transcripts."""

from __future__ import annotations

import json

from conftest import cli_env, run_cli


def test_status_stats_and_metrics_count_what_the_sync_re_checks(database_url, fake, tmp_path):
    fake.add(3)
    fake.add(2, status="queued")
    fake.add(1, status="processing")
    fake.add_raw({**fake.add(1)[0], "id": "throttled-1", "status": "throttled", "completed": None})
    fake.add_raw({**fake.add(1)[0], "id": "no-status-1", "status": 7, "completed": None})
    env = cli_env(fake, database_url)
    metrics = tmp_path / "aai_etl.prom"
    assert run_cli(["sync", "--no-hydrate", "--metrics-file", str(metrics)], env).exit_code == 0

    (account,) = json.loads(run_cli(["status", "--json"], env).stdout)["accounts"]
    assert account["pending"] == 5
    assert "pending      5 not yet completed or error" in run_cli(["status"], env).stdout
    stats = json.loads(run_cli(["stats", "--format", "json"], env).stdout)
    assert sum(row["pending"] for row in stats) == 5
    assert sum(row["transcripts"] for row in stats) == sum(row["completed"] + row["error"] + row["pending"] for row in stats)
    assert 'aai_etl_pending_transcripts{account="default"} 5' in metrics.read_text()
