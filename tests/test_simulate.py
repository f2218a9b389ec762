"""`aai-etl simulate`: a simulated API to point a deployment at, with latency and faults, no key needed."""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timedelta, timezone

from conftest import run_cli, spawn
from sqlalchemy import create_engine, text


def test_a_sync_against_the_simulator_gets_every_transcript_through_its_faults(database_url, tmp_path):
    server = spawn(["simulate", "--port", "0", "--transcripts", "1000", "--latency", "0", "--faults", "0.2"], {})
    try:
        banner = server.stdout.readline()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner).group(1)
        assert "1,000 transcripts" in banner and "20% faults" in banner
        assert f"ASSEMBLYAI_BASE_URL={url} ASSEMBLYAI_API_KEY=simulated-key aai-etl sync" in server.stdout.readline()
        config = tmp_path / "fast-retries.toml"
        config.write_text("backoff_seconds = 0.01\nmax_retries = 8\n")
        env = {"ASSEMBLYAI_BASE_URL": url, "ASSEMBLYAI_API_KEY": "simulated-key", "AAI_ETL_DATABASE_URL": database_url}
        result = run_cli(["sync", "--no-hydrate", "--log-format", "json", "--config", str(config)], env)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["inserted"] == 1000 and summary["retries"] > 0
        engine = create_engine(database_url)
        with engine.connect() as conn:
            statuses = dict(conn.execute(text("SELECT status, count(*) FROM transcripts GROUP BY status")).all())
        engine.dispose()
        assert sum(statuses.values()) == 1000 and statuses["completed"] > 800 and statuses.keys() <= {"queued", "processing", "completed", "error"}
        # The account ends as the simulator started: its newest transcript minutes old, all of it in `stats`.
        with engine.connect() as conn:
            newest = conn.execute(text("SELECT max(created) FROM transcripts")).scalar()
        engine.dispose()
        newest = newest if isinstance(newest, datetime) else datetime.fromisoformat(str(newest))
        age = datetime.now(timezone.utc) - newest.replace(tzinfo=timezone.utc)
        assert timedelta(0) <= age < timedelta(hours=1), newest
        days = json.loads(run_cli(["stats", "--format", "json"], env).stdout)
        assert sum(day["transcripts"] for day in days) == 1000
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0, server.stderr.read()


def test_a_port_in_use_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["simulate", "--port", str(port), "--transcripts", "1"], {})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"aai-etl: error: cannot listen on 127.0.0.1:{port}: Address already in use")
