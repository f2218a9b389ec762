"""Transcript details: fetched once per final transcript, concurrently, through 429 storms, failures,
interruptions and deletions."""

from __future__ import annotations

import signal
import time

import pytest
from conftest import API_KEY, cli_env, run_cli, spawn, stored, summary_json, wait_until
from sqlalchemy import create_engine, func, select, text, update

from etl.store.schema import transcript_bodies, transcript_words, transcripts
from etl.tools.simulator import FakeAssemblyAI, Fault


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "details.toml"
    path.write_text("backoff_seconds = 0.01\nmax_retries = 2\nstore_words = true\n")
    return str(path)


def run(fake, database_url, config, *args):
    return run_cli([*args, "--config", config, "--log-format", "json"], cli_env(fake, database_url))


def hydrated(database_url) -> int:
    return sum(row["hydrated_at"] is not None for row in stored(database_url).values())


def detail_requests(fake) -> int:
    return sum(1 for request in fake.requests if request["path"] != "/v2/transcript")


def table(database_url, table_):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(table_))]
    engine.dispose()
    return rows


def body_of(fake, transcript_id):
    import requests

    return requests.get(f"{fake.base_url}/v2/transcript/{transcript_id}", headers={"Authorization": API_KEY}).json()


def test_final_transcripts_are_hydrated_once_into_typed_columns(database_url, fake, config):
    done = fake.add(40)
    failed = fake.add(3, status="error")
    fake.add(4, status="processing")
    result = run(fake, database_url, config, "sync")
    assert result.exit_code == 0, result.output
    assert summary_json(result)["hydrated"] == 43
    assert detail_requests(fake) == 43
    rows = stored(database_url)
    for item in done:
        body = body_of(fake, item["id"])
        row = rows[item["id"]]
        assert row["text"] == body["text"] and row["text"]
        assert row["audio_duration"] == float(body["audio_duration"])  # int or float in the body: numeric here
        assert (row["confidence"], row["language_code"]) == (body["confidence"], body["language_code"])
        assert (row["speech_models"], row["speech_model_used"]) == (body["speech_models"], body["speech_model_used"])
        assert row["hydrated_at"] is not None
    assert all(rows[item["id"]]["hydrated_at"] is not None and rows[item["id"]]["error"] for item in failed)
    assert sum(row["hydrated_at"] is None for row in rows.values()) == 4  # processing: not yet

    bodies = {row["transcript_id"]: row["body"] for row in table(database_url, transcript_bodies)}
    assert bodies[done[0]["id"]] == body_of(fake, done[0]["id"])
    words = [w for w in table(database_url, transcript_words) if w["transcript_id"] == done[0]["id"]]
    expected = body_of(fake, done[0]["id"])["words"]
    assert [(w["position"], w["text"], w["start_ms"], w["end_ms"], w["speaker"]) for w in sorted(words, key=lambda w: w["position"])] == [
        (i, e["text"], e["start"], e["end"], e["speaker"]) for i, e in enumerate(expected)
    ]

    before = detail_requests(fake)  # body_of() above asked the fake too
    again = run(fake, database_url, config, "sync")
    assert summary_json(again)["hydrated"] == 0
    assert detail_requests(fake) == before  # never fetched twice


def test_a_429_storm_slows_everyone_down_and_honours_retry_after(database_url, fake, config):
    fake.add(60)
    assert run(fake, database_url, config, "sync", "--no-hydrate").exit_code == 0
    fake.fail_next(*[Fault.status(429, headers={"Retry-After": "1"})] * 8)
    started = time.monotonic()
    result = run(fake, database_url, config, "hydrate")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    assert summary_json(result)["hydrated"] == 60
    assert all(row["hydrated_at"] is not None for row in stored(database_url).values())


def mended(fake, database_url, config, transcript_id) -> dict:
    """Mend the transcript's details, let its backoff pass, hydrate: its row once it is fetched again."""
    fake.break_transcript(transcript_id, None)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(transcripts).values(hydrate_after=func.current_timestamp()))
    engine.dispose()
    result = run(fake, database_url, config, "hydrate")
    assert summary_json(result)["hydrated"] == 1
    return stored(database_url)[transcript_id]


def test_a_failing_transcript_backs_off_without_blocking_the_others(database_url, fake, config):
    items = fake.add(20)
    broken = items[7]["id"]
    fake.break_transcript(broken, Fault.status(500))
    result = run(fake, database_url, config, "sync")
    assert result.exit_code == 0
    assert (summary_json(result)["hydrated"], summary_json(result)["hydrate_failures"]) == (19, 1)
    row = stored(database_url)[broken]
    assert row["hydrated_at"] is None and row["hydrate_attempts"] == 1
    assert "HTTP 500" in row["hydrate_error"]
    shown = run_cli(["status"], cli_env(fake, database_url)).stdout
    assert "details      19 fetched, 0 waiting, 1 failing" in shown and broken in shown

    before = detail_requests(fake)
    run(fake, database_url, config, "hydrate")
    assert detail_requests(fake) == before  # backing off: not retried yet

    row = mended(fake, database_url, config, broken)
    assert row["hydrated_at"] is not None and row["hydrate_error"] is None


def test_an_interrupted_hydration_resumes(database_url, config):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.02) as fake:
        fake.add(400)
        assert run(fake, database_url, config, "sync", "--no-hydrate").exit_code == 0
        # The API answers 150 details, then no more until the kill: it comes with 250 or more still to fetch.
        fake.fail_next(*[Fault.none()] * 150, *[Fault.slow(3600)] * 250)
        process = spawn(["hydrate", "--config", config], cli_env(fake, database_url))
        wait_until(lambda: hydrated(database_url) > 0)
        process.send_signal(signal.SIGKILL)
        process.wait()
        fake.clear_faults()
        first = hydrated(database_url)
        assert 0 < first < 400
        result = run(fake, database_url, config, "hydrate")
        assert result.exit_code == 0, result.output
        assert summary_json(result)["hydrated"] == 400 - first
        assert all(row["hydrated_at"] is not None for row in stored(database_url).values())


def test_deletion_purges_content_and_is_never_rehydrated(database_url, fake, config):
    items = fake.add(10)
    run(fake, database_url, config, "sync")
    victim = items[-1]["id"]
    assert stored(database_url)[victim]["text"]
    fake.delete(victim)
    result = run(fake, database_url, config, "sync", "--full")  # a plain run re-reads no final row
    assert summary_json(result)["deleted"] == 1
    row = stored(database_url)[victim]
    assert row["deleted_at"] is not None
    assert (row["text"], row["audio_duration"], row["confidence"], row["speech_models"]) == (None, None, None, None)
    assert not [w for w in table(database_url, transcript_words) if w["transcript_id"] == victim]
    assert not [b for b in table(database_url, transcript_bodies) if b["transcript_id"] == victim]
    before = detail_requests(fake)
    run(fake, database_url, config, "hydrate")
    assert detail_requests(fake) == before


def test_a_transcript_deleted_before_its_first_fetch_stores_no_content(sqlite_url, fake, config):
    (item,) = fake.add(1)
    run(fake, sqlite_url, config, "sync", "--no-hydrate")
    fake.delete(item["id"])  # the list still says the old audio_url until the next sync
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE transcripts SET audio_url = 'https://example.com/a.mp3'"))
    engine.dispose()
    run(fake, sqlite_url, config, "hydrate")
    row = stored(sqlite_url)[item["id"]]
    assert row["hydrated_at"] is not None and row["text"] is None
    assert table(sqlite_url, transcript_bodies) == [] and table(sqlite_url, transcript_words) == []


def test_hydration_can_be_switched_off(sqlite_url, fake, tmp_path):
    fake.add(5)
    off = tmp_path / "off.toml"
    off.write_text("hydrate = false\n")
    result = run_cli(["sync", "--config", str(off)], cli_env(fake, sqlite_url))
    assert result.exit_code == 0 and detail_requests(fake) == 0
    result = run_cli(["sync", "--no-hydrate"], cli_env(fake, sqlite_url))
    assert detail_requests(fake) == 0
    result = run_cli(["hydrate", "--config", str(off)], cli_env(fake, sqlite_url))  # the backfill of details
    assert result.exit_code == 0 and detail_requests(fake) == 5


def test_an_api_down_during_hydration_ends_the_run_and_pushes_no_transcript_back(database_url, fake, config):
    """Connection refused on every fetch (the API or the network down) was taken for a fault of each transcript:
    every one of the backlog got a failed attempt and a later next try (5 minutes, growing to a day), a warning
    line each, and the run exited 0 as succeeded. It now ends on the outage, one line, and counts nothing."""
    import socket

    fake.add(30)
    assert run(fake, database_url, config, "sync", "--no-hydrate").exit_code == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{unused.getsockname()[1]}"  # nothing listens there once closed
    result = run_cli(["hydrate", "--config", config], cli_env(fake, database_url, ASSEMBLYAI_BASE_URL=down))
    assert result.exit_code == 1, result.output
    said = [line for line in result.stderr.splitlines() if "retrying" not in line]
    assert len(said) == 1 and said[0].startswith("aai-etl: error: the AssemblyAI API kept failing (connection"), said
    rows = stored(database_url)
    assert all(row["hydrate_attempts"] == 0 and row["hydrate_error"] is None for row in rows.values())

    result = run(fake, database_url, config, "hydrate")
    assert (result.exit_code, summary_json(result)["hydrated"]) == (0, 30)


def test_details_that_lag_the_list_are_fetched_again_later(database_url, fake, config):
    # The list shows it completed; its details still say processing, without text.
    items = fake.add(5)
    lagging = items[2]["id"]
    fake.break_transcript(lagging, Fault.mangled(lambda body: {**body, "status": "processing", "text": None, "words": None}))
    result = run(fake, database_url, config, "sync")
    assert result.exit_code == 0, result.output
    assert (summary_json(result)["hydrated"], summary_json(result)["hydrate_failures"]) == (4, 1)
    row = stored(database_url)[lagging]
    assert row["hydrated_at"] is None and row["text"] is None and row["hydrate_attempts"] == 1
    assert row["hydrate_after"] is not None and "'processing'" in row["hydrate_error"]
    assert not [body for body in table(database_url, transcript_bodies) if body["transcript_id"] == lagging]

    row = mended(fake, database_url, config, lagging)
    assert row["hydrated_at"] is not None and row["text"] == body_of(fake, lagging)["text"] and row["hydrate_error"] is None
