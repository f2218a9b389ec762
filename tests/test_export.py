"""The change feed: rows changed after a watermark, a next watermark, nothing skipped under concurrent writes."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import API_KEY, cli_env, run_cli, spawn, stored, sync, wait_until

from etl.tools.simulator import FakeAssemblyAI


def export(fake, database_url, *args):
    result = run_cli(["export", *args], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    return result


def rows_and_watermark(result):
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    watermark = int(result.stderr.strip().splitlines()[0])
    return rows, watermark


def test_watermarks_give_exactly_the_changed_rows(database_url, fake):
    items = fake.add(250, status="processing")
    sync(fake, database_url)
    everything, first = rows_and_watermark(export(fake, database_url))
    assert sorted(row["id"] for row in everything) == sorted(item["id"] for item in items)
    assert everything[0]["raw"] == stored(database_url)[everything[0]["id"]]["raw"]

    nothing, same = rows_and_watermark(export(fake, database_url, "--since", str(first)))
    assert (nothing, same) == ([], first)

    fake.set_status(items[3]["id"], "completed")
    fake.add(2)
    sync(fake, database_url)
    changed, second = rows_and_watermark(export(fake, database_url, "--since", str(first)))
    assert sorted(row["id"] for row in changed) == sorted([items[3]["id"], *(i["id"] for i in fake.listing()[:2])])
    assert second > first
    assert next(row for row in changed if row["id"] == items[3]["id"])["status"] == "completed"


def test_csv_to_a_file_prints_the_watermark_on_stdout(database_url, fake, tmp_path):
    fake.add(5)
    sync(fake, database_url)
    target = tmp_path / "changes.csv"
    result = export(fake, database_url, "--format", "csv", "--output", str(target))
    watermark = int(result.stdout.strip())
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 5 and max(int(row["change_seq"]) for row in rows) == watermark
    assert json.loads(rows[0]["raw"])["id"] == rows[0]["id"]
    assert not (tmp_path / "changes.csv.partial").exists()


@pytest.mark.parametrize("walk", ["serial", "by_days"])
def test_nothing_is_skipped_while_a_sync_writes_concurrently(database_url, walk):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.01) as fake:
        extra = {"AAI_ETL_PARTITIONS": "serial"}
        if walk == "by_days":  # on PostgreSQL, four writer connections commit at once
            fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=7)
            extra = {"AAI_ETL_PARTITIONS": "days", "AAI_ETL_PARTITION_DAYS": "8", "AAI_ETL_PARTITION_WRITERS": "4"}
        fake.add(3000, status="processing", spread=timedelta(days=6) if walk == "by_days" else None)
        process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url, **extra))
        wait_until(lambda: fake.requests)  # the schema exists once the sync asks for its first page
        seen: dict[str, int] = {}
        watermark = None
        rounds = 0
        while process.poll() is None or rounds == 0:
            args = [] if watermark is None else ["--since", str(watermark)]
            rows, watermark = rows_and_watermark(export(fake, database_url, *args))
            for row in rows:
                assert row["change_seq"] > (seen.get(row["id"], 0))
                seen[row["id"]] = row["change_seq"]
            rounds += 1
        assert process.returncode == 0, process.communicate()
        rows, watermark = rows_and_watermark(export(fake, database_url, "--since", str(watermark)))
        seen.update({row["id"]: row["change_seq"] for row in rows})
        assert rounds > 2  # the exports really did run while the sync was writing
        assert seen == {tid: row["change_seq"] for tid, row in stored(database_url).items()}


def test_an_export_interrupted_with_output_still_buffered_exits_without_flushing_it(tmp_path):
    """An interrupt while the export reads rows, with the output pipe full and lines still buffered in the
    process: closing the file flushed them into the pipe, which nobody drains, and the export never exited
    (CI hung on it once). The interrupted export is thrown away unflushed; the process exits at once."""
    import fcntl
    import os
    import subprocess
    import sys

    target = tmp_path / "changes.jsonl"
    os.mkfifo(f"{target}.partial")
    reader = os.open(f"{target}.partial", os.O_RDONLY | os.O_NONBLOCK)
    room = fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)  # one page: the test fills it exactly
    code = f"""
from etl.outputs.export import replaced_atomically
with replaced_atomically({str(target)!r}) as out:
    out.write("x" * {room})
    out.flush()  # the pipe is full
    out.write("row still buffered")
    raise KeyboardInterrupt  # arriving while the export reads its next rows
"""
    try:
        finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    finally:
        os.close(reader)
    assert "KeyboardInterrupt" in finished.stderr and finished.returncode != 0
    assert not os.path.exists(f"{target}.partial") and not target.exists()


def test_jsonl_and_csv_carry_every_column_parquet_does(database_url, fake, tmp_path):
    import pyarrow.parquet as pq

    fake.add(3)
    assert run_cli(["sync"], cli_env(fake, database_url)).exit_code == 0  # with details: the flags, summary, derived_at
    export(fake, database_url, "--format", "parquet", "--output-dir", str(tmp_path / "feed"))
    parquet = pq.read_schema(next((tmp_path / "feed" / "transcripts").glob("*.parquet"))).names
    (line, *_) = export(fake, database_url, "--format", "jsonl").stdout.splitlines()
    header = next(csv.reader(io.StringIO(export(fake, database_url, "--format", "csv").stdout)))
    assert list(json.loads(line)) == header == parquet
    assert {"summary", "speaker_labels", "language_confidence", "audio_channels", "derived_at", "hydrate_attempts"} <= set(header)
    row = next(csv.DictReader(io.StringIO(export(fake, database_url, "--format", "csv").stdout)))
    assert row["derived_at"] and row["speaker_labels"] in ("true", "false")
