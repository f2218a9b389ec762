"""Deletions are recorded; `sync --full` reconciles the whole listing, resumably, and marks what aged out."""

from __future__ import annotations

import signal

from conftest import assert_table_equals_api, cli_env, spawn, stored, summary_json, sync, wait_until, walk_position

from etl.model.items import DELETED_AUDIO_URL


def test_deleting_a_recent_transcript_is_seen_by_the_next_full_sync(database_url, fake):
    items = fake.add(50)
    sync(fake, database_url)
    fake.delete(items[-1]["id"])
    # A plain run asks only for what is newer than the high water mark (after_id): final rows are not re-read.
    assert summary_json(sync(fake, database_url, "--log-format", "json"))["deleted"] == 0
    result = sync(fake, database_url, "--full", "--log-format", "json")
    assert summary_json(result)["deleted"] == 1
    row = stored(database_url)[items[-1]["id"]]
    assert row["audio_url"] == DELETED_AUDIO_URL and row["deleted_at"] is not None
    assert row["status"] == "completed"
    assert_table_equals_api(database_url, fake)


def test_full_sync_finds_deletions_of_older_transcripts(database_url, fake):
    old = fake.add(450)
    fake.add(10)
    sync(fake, database_url)
    fake.delete(old[5]["id"])
    fake.delete(old[100]["id"])
    incremental = sync(fake, database_url, "--log-format", "json")
    assert summary_json(incremental)["deleted"] == 0  # only the newest page is re-read
    full = sync(fake, database_url, "--full")
    assert full.exit_code == 0, full.output
    assert ", 2 deleted," in full.stdout
    rows = stored(database_url)
    assert rows[old[5]["id"]]["deleted_at"] is not None and rows[old[100]["id"]]["deleted_at"] is not None
    assert sum(row["deleted_at"] is not None for row in rows.values()) == 2
    assert_table_equals_api(database_url, fake)
    first_marked = rows[old[5]["id"]]["deleted_at"]
    sync(fake, database_url, "--full")
    assert stored(database_url)[old[5]["id"]]["deleted_at"] == first_marked  # marked once, not moved


def test_rows_that_leave_the_listing_stay_and_are_marked(database_url, fake):
    old = fake.add(30)
    fake.add(20)
    sync(fake, database_url)
    for item in old:  # the 30 oldest age past the 90-day window
        fake.expire(item["id"])
    result = sync(fake, database_url, "--full", "--log-format", "json")
    assert summary_json(result)["unlisted"] == 30
    rows = stored(database_url)
    assert len(rows) == 50
    assert {tid for tid, row in rows.items() if row["unlisted_at"] is not None} == {item["id"] for item in old}


def test_a_killed_full_sync_is_resumed_by_the_next_plain_sync(database_url, fake):
    old = fake.add(1000)
    sync(fake, database_url)
    fake.delete(old[10]["id"])
    release = fake.hold(2)
    process = spawn(["sync", "--no-hydrate", "--full"], cli_env(fake, database_url))
    assert fake.held.wait(120)
    second_page_end = fake.listing()[399]["id"]
    wait_until(lambda: walk_position(database_url) == second_page_end)  # two pages committed, the third held
    process.send_signal(signal.SIGKILL)
    process.wait()
    release.set()

    result = sync(fake, database_url, "--log-format", "json")  # what cron runs next
    summary = summary_json(result)
    assert summary["deleted"] == 1
    # The three remaining pages of the full walk, then one request for anything newer.
    assert summary["requests"] == 4
    assert_table_equals_api(database_url, fake)


def test_a_deleted_transcript_that_changes_again_keeps_its_deletion_time(database_url, fake):
    (item,) = fake.add(1, status="processing")
    fake.delete(item["id"])
    sync(fake, database_url)
    marked = stored(database_url)[item["id"]]["deleted_at"]
    fake.set_status(item["id"], "completed")
    result = sync(fake, database_url)
    assert result.exit_code == 0, result.output
    row = stored(database_url)[item["id"]]
    assert (row["status"], row["deleted_at"]) == ("completed", marked)
