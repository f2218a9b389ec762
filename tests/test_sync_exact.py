"""The table equals the API's listing: first backfill, new transcripts, both after_id behaviours."""

from __future__ import annotations

from conftest import assert_table_equals_api, stored, summary_json, sync


def test_first_sync_stores_every_listed_transcript(database_url, fake_either_after_id):
    fake = fake_either_after_id
    fake.add(1000)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)
    summary = summary_json(result)
    assert (summary["inserted"], summary["updated"], summary["pages"]) == (1000, 0, 5)
    assert summary["requests"] == 5
    assert all(request["params"]["limit"] == "200" for request in fake.requests)


def test_more_than_a_page_of_new_transcripts_between_runs(database_url, fake_either_after_id):
    fake = fake_either_after_id
    fake.add(300)
    assert sync(fake, database_url).exit_code == 0
    fake.add(450)  # more than two pages newer than the stored high water mark
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)
    summary = summary_json(result)
    assert summary["inserted"] == 450
    assert summary["updated"] == 0
    # after_id=<high water> comes back full (either reading), so the walk follows: 450 new need three
    # pages, the third also reaches the old high water mark.
    assert summary["requests"] == 4
    assert "after_id" in fake.requests[-4]["params"]


def test_idle_run_makes_one_request_and_touches_nothing(database_url, fake):
    fake.add(500)
    assert sync(fake, database_url).exit_code == 0
    before = stored(database_url)
    requests_before = len(fake.requests)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0
    assert len(fake.requests) - requests_before == 1
    assert "before_id" not in fake.requests[-1]["params"]
    assert summary_json(result)["inserted"] == 0
    assert stored(database_url) == before


def test_a_few_new_transcripts_cost_one_request(database_url, fake):
    fake.add(250)
    sync(fake, database_url)
    fake.add(7)
    result = sync(fake, database_url, "--log-format", "json")
    summary = summary_json(result)
    assert (summary["inserted"], summary["requests"]) == (7, 1)
    assert_table_equals_api(database_url, fake)


def test_empty_account(database_url, fake):
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert summary_json(result)["pages"] == 1
    fake.add(3)
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)


def test_timestamps_are_stored_as_utc(database_url, fake):
    (item,) = fake.add(1, created="2024-03-11T21:29:59.936851", completed="2024-03-11T21:30:07.314223")
    sync(fake, database_url)
    row = stored(database_url)[item["id"]]
    assert row["created"].isoformat() == "2024-03-11T21:29:59.936851+00:00"
    assert row["completed"].isoformat() == "2024-03-11T21:30:07.314223+00:00"
