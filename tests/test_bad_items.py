"""A list item with unreadable values is stored anyway: the bad value as NULL, raw keeps it, a warning names it."""

from __future__ import annotations

from conftest import stored, summary_json, sync


def test_bad_values_are_stored_as_null_and_reported(database_url, fake):
    fake.add(3)
    (foo,) = fake.add(1, status="error", completed="foo")  # the reference page's own example
    (odd,) = fake.add(1, status="throttled")
    missing = {"id": "no-fields-0001", "status": "completed"}
    fake.add_raw(missing)
    fake.add_raw({"id": 12345, "status": "completed"})  # an id that is not text: cannot be stored
    fake.add(2)

    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert rows[foo["id"]]["completed"] is None and rows[foo["id"]]["raw"]["completed"] == "foo"
    assert rows[foo["id"]]["status"] == "error"
    assert rows[odd["id"]]["status"] == "throttled" and rows[odd["id"]]["raw"]["status"] == "throttled"
    assert rows["no-fields-0001"]["raw"] == missing
    assert rows["no-fields-0001"]["created"] is None
    assert len(rows) == 8

    warnings = result.stderr
    assert f"transcript {foo['id']}: unreadable completed 'foo'" in warnings
    assert f"transcript {odd['id']}: unknown status 'throttled' stored as received" in warnings
    for name in ("created", "audio_url", "resource_url", "error", "completed"):
        assert f"transcript no-fields-0001: unreadable {name} None" in warnings
    assert "skipped a list item without a usable id" in warnings
    assert summary_json(result)["bad_values"] == 1 + 1 + 5 + 1

    # Listed again unchanged, the bad items are neither rewritten nor reported again.
    again = sync(fake, database_url, "--log-format", "json")
    assert summary_json(again)["bad_values"] == 1  # only the id-less item, which can never be stored
    assert "unreadable" not in again.stderr


def test_timestamp_with_an_offset_is_converted_to_utc(database_url, fake):
    (item,) = fake.add(1, created="2024-03-11T23:29:59.936851+02:00")
    sync(fake, database_url)
    assert stored(database_url)[item["id"]]["created"].isoformat() == "2024-03-11T21:29:59.936851+00:00"


def test_a_timestamp_whose_offset_takes_it_out_of_range_is_a_bad_value(database_url, fake):
    """Year 9999 five hours behind UTC is past the last representable instant: converting it to UTC used to
    raise OverflowError out of the item's parsing and end the run with a traceback."""
    (late,) = fake.add(1, status="error", completed="9999-12-31T23:59:59-05:00")
    (early,) = fake.add(1, status="error", completed="0001-01-01T00:00:00+05:00")
    fake.add(2)
    result = sync(fake, database_url)
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert len(rows) == 4
    for item in (late, early):
        assert rows[item["id"]]["completed"] is None and rows[item["id"]]["raw"]["completed"] == item["completed"]
        assert f"transcript {item['id']}: unreadable completed '{item['completed']}'" in result.stderr
