"""Queued and processing transcripts are re-checked until final; only changed rows are written."""

from __future__ import annotations

from conftest import assert_table_equals_api, stored, summary_json, sync


def test_pending_transcripts_are_followed_to_a_final_status(database_url, fake):
    pending = fake.add(5, status="queued")
    fake.add(100)
    assert sync(fake, database_url).exit_code == 0

    fake.set_status(pending[0]["id"], "processing")
    fake.set_status(pending[1]["id"], "completed")
    fake.set_status(pending[2]["id"], "error", error="Download error")
    fake.add(450)  # bury the pending ones under more than two pages of new transcripts
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)
    assert summary_json(result)["updated"] == 3

    # The three still pending finish (a final status is final: `sync --full` is what re-reads those).
    for item in (pending[0], *pending[3:]):
        fake.set_status(item["id"], "completed")
    result = sync(fake, database_url, "--log-format", "json")
    assert_table_equals_api(database_url, fake)
    assert summary_json(result)["updated"] == 3
    # Nothing is pending any more: the next run is back to one request.
    before = len(fake.requests)
    sync(fake, database_url)
    assert len(fake.requests) - before == 1


def test_only_changed_rows_are_touched(database_url, fake):
    items = fake.add(20, status="processing")
    sync(fake, database_url)
    first = stored(database_url)
    fake.set_status(items[3]["id"], "completed")
    sync(fake, database_url)
    second = stored(database_url)
    changed = {tid for tid in first if first[tid] != second[tid]}
    assert changed == {items[3]["id"]}
    row = second[items[3]["id"]]
    assert row["changed_at"] > first[items[3]["id"]]["changed_at"]
    assert row["first_seen_at"] == first[items[3]["id"]]["first_seen_at"]
    assert row["completed"] is not None and row["status"] == "completed"


def test_every_status_change_is_recorded_once(database_url, fake):
    from sqlalchemy import create_engine, select

    from etl.store.schema import transcript_status_changes as changes

    (item,) = fake.add(1, status="queued")
    sync(fake, database_url)
    fake.set_status(item["id"], "processing")
    sync(fake, database_url)
    sync(fake, database_url)  # nothing changed: nothing recorded
    fake.set_status(item["id"], "completed")
    sync(fake, database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        history = conn.execute(
            select(changes.c.transcript_id, changes.c.old_status, changes.c.new_status, changes.c.observed_at).order_by(changes.c.id)
        ).all()
    engine.dispose()
    # Changes only: a transcript's first status is in transcripts.created and the first row of its history.
    assert [(row.old_status, row.new_status) for row in history] == [("queued", "processing"), ("processing", "completed")]
    assert {row.transcript_id for row in history} == {item["id"]}
    assert history[0].observed_at <= history[1].observed_at
