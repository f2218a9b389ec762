"""Odd listings the API may send once in a while never cost a transcript: pages out of order, odd
`created` values, unknown statuses, malformed pages. Each ends with the table equal to the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import assert_table_equals_api, cli_env, run_cli, stored, summary_json

from etl.tools.simulator import TS_FORMAT, Fault


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "fast.toml"
    path.write_text("backoff_seconds = 0.01\n")
    return str(path)


def sync(fake, database_url, config, *args):
    return run_cli(["sync", "--no-hydrate", "--config", config, "--log-format", "json", *args], cli_env(fake, database_url))


def unlisted(database_url) -> set[str]:
    return {tid for tid, row in stored(database_url).items() if row["unlisted_at"] is not None}


def test_pages_out_of_order_keep_the_counts_and_the_listed_rows_right(database_url, fake, config):
    fake.scramble_pages = True
    fake.add(1000)
    first = sync(fake, database_url, config)
    assert first.exit_code == 0, first.output
    assert summary_json(first)["inserted"] == 1000
    assert_table_equals_api(database_url, fake)

    full = sync(fake, database_url, config, "--full")
    assert full.exit_code == 0, full.output
    assert summary_json(full)["unlisted"] == 0
    assert unlisted(database_url) == set()

    fake.add(450)
    assert summary_json(sync(fake, database_url, config))["inserted"] == 450
    assert_table_equals_api(database_url, fake)


@pytest.mark.parametrize("odd", ["2020-01-01", "1970-01-01T00:00:00.000000", "ten days early"])
def test_one_odd_created_among_new_transcripts_does_not_end_the_walk(database_url, fake, config, odd):
    fake.add(100)
    assert sync(fake, database_url, config).exit_code == 0
    fake.add(300)
    if odd == "ten days early":  # plausible, yet before the floor: one such item is not a run of them
        odd = (fake.clock - timedelta(days=10)).strftime(TS_FORMAT)
    fake.add(1, created=odd)  # on the first page: taken for the floor, it ended the walk there
    fake.add(99)
    for _ in range(3):
        result = sync(fake, database_url, config)
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake)


def test_a_future_created_does_not_become_the_high_water_mark(database_url, fake, config):
    fake.add(100)
    fake.add(1, created="2099-01-01T00:00:00.000000")
    assert sync(fake, database_url, config).exit_code == 0
    fake.add(300)
    result = sync(fake, database_url, config)
    assert result.exit_code == 0, result.output
    assert summary_json(result)["inserted"] == 300
    assert_table_equals_api(database_url, fake)


def test_an_unknown_status_is_stored_as_received_and_rechecked_until_final(database_url, fake, config):
    fake.add(10)
    (odd,) = fake.add(1, status="throttled")
    fake.add(300)  # the odd one is on the second page, below the high water mark
    result = sync(fake, database_url, config)
    assert f"transcript {odd['id']}: unknown status 'throttled' stored as received" in result.stderr
    assert stored(database_url)[odd["id"]]["status"] == "throttled"

    fake.set_status(odd["id"], "completed")
    result = sync(fake, database_url, config)
    assert result.exit_code == 0, result.output
    assert stored(database_url)[odd["id"]]["status"] == "completed"
    assert_table_equals_api(database_url, fake)


def without_prev_url_key(body):
    return {**body, "page_details": {key: value for key, value in body["page_details"].items() if key != "prev_url"}}


def test_a_page_without_prev_url_is_retried_not_taken_for_the_end(database_url, fake, config):
    fake.add(1000)
    fake.fail_next(Fault.none(), Fault.mangled(without_prev_url_key))
    result = sync(fake, database_url, config)
    assert result.exit_code == 0, result.output
    assert_table_equals_api(database_url, fake)

    fake.fail_next(Fault.none(), Fault.mangled(lambda body: {**body, "page_details": {}}))
    result = sync(fake, database_url, config, "--full")
    assert result.exit_code == 0, result.output
    assert summary_json(result)["unlisted"] == 0
    assert_table_equals_api(database_url, fake)


def emptied(body):
    return {**body, "transcripts": []}


def ids_nulled(body):
    return {**body, "transcripts": [{**item, "id": None} for item in body["transcripts"]]}


@pytest.mark.parametrize("mangle", [emptied, ids_nulled], ids=["empty", "ids-null"])
def test_a_page_without_usable_ids_is_followed_through_prev_url(database_url, fake, config, mangle):
    items = fake.add(1000)
    fake.fail_next(Fault.none(), Fault.mangled(mangle))
    result = sync(fake, database_url, config)
    assert result.exit_code == 0, result.output
    assert "the next run walks this stretch again" in result.stderr
    rows = stored(database_url)
    assert {item["id"] for item in items[:600]} <= set(rows)  # everything older than the odd page is stored

    # The high water mark did not move past the gap: the next plain run finds what the odd page hid.
    assert sync(fake, database_url, config).exit_code == 0
    assert_table_equals_api(database_url, fake)
    fake.add(300)
    fake.fail_next(Fault.none(), Fault.mangled(mangle))
    assert sync(fake, database_url, config).exit_code == 0
    assert sync(fake, database_url, config).exit_code == 0
    assert_table_equals_api(database_url, fake)

    # Inside a full walk, nothing listed is flagged.
    fake.fail_next(Fault.none(), Fault.mangled(mangle))
    result = sync(fake, database_url, config, "--full")
    assert result.exit_code == 0, result.output
    assert summary_json(result)["unlisted"] == 0
    assert_table_equals_api(database_url, fake)


def test_unlisted_rows_listed_again_are_cleared(database_url, fake, config):
    fake.add(50)
    assert sync(fake, database_url, config).exit_code == 0
    hidden = Fault.mangled(lambda body: {**body, "transcripts": body["transcripts"][:40], "page_details": {**body["page_details"], "prev_url": None}})
    fake.fail_next(hidden)  # one answer that really ends early: the ten oldest look unlisted
    assert summary_json(sync(fake, database_url, config, "--full"))["unlisted"] == 10
    result = sync(fake, database_url, config, "--full")
    assert result.exit_code == 0, result.output
    assert unlisted(database_url) == set()
    assert_table_equals_api(database_url, fake)


def test_rows_with_odd_created_are_unlisted_only_when_the_listing_no_longer_has_them(database_url, fake, config):
    fake.add(20)
    odd = [fake.add(1, created=created)[0] for created in ("2026-01-01", "2099-01-01T00:00:00.000000", "1970-01-01T00:00:00")]
    fake.add(20)
    gone = [fake.add(1, created=created)[0] for created in ("2026-01-02", "2099-01-02T00:00:00.000000", "1970-01-02T00:00:00")]
    assert sync(fake, database_url, config).exit_code == 0
    for item in gone:
        fake.expire(item["id"])
    result = sync(fake, database_url, config, "--full")
    assert result.exit_code == 0, result.output
    assert unlisted(database_url) == {item["id"] for item in gone}
    assert not unlisted(database_url) & {item["id"] for item in odd}


def test_a_last_page_without_usable_ids_is_walked_again_and_unlists_nothing(database_url, fake, config):
    fake.add(326)
    fake.fail_next(Fault.none(), Fault.mangled(ids_nulled))  # the last page, 126 items, prev_url null
    result = sync(fake, database_url, config, "--full")
    assert result.exit_code == 0, result.output
    assert "the next run walks this stretch again" in result.stderr
    assert len(stored(database_url)) == 200
    assert sync(fake, database_url, config).exit_code == 0
    assert_table_equals_api(database_url, fake)

    fake.fail_next(Fault.none(), Fault.mangled(ids_nulled))
    result = sync(fake, database_url, config, "--full")
    assert summary_json(result)["unlisted"] == 0
    assert unlisted(database_url) == set()


def test_an_empty_last_page_is_asked_for_twice_before_it_ends_the_walk(database_url, fake, config):
    """201 transcripts, and the page below the first answered empty with no prev_url: taken for the end, it
    lost the 201st for good (the high water mark was above it and nothing re-checks what was never stored)."""
    fake.add(201, status="queued")
    fake.fail_next(Fault.none(), Fault.mangled(lambda body: {**body, "transcripts": []}))
    result = sync(fake, database_url, config)
    assert result.exit_code == 0, result.output
    assert summary_json(result)["requests"] == 3  # the empty page, asked for again
    assert_table_equals_api(database_url, fake)
