"""A body or an id no fetch can handle costs only its own transcript, recorded as its hydration error."""

from __future__ import annotations

from conftest import cli_env, run_cli, stored, summary_json

from etl.model.storable import escape
from etl.tools.simulator import Fault, JsonText


def test_a_body_nested_too_deep_is_refused_for_its_transcript_alone(database_url, fake):
    """10,000 levels raised RecursionError out of hydration: a traceback, and no transcript got details again."""
    items = fake.add(6)
    # Too deep to read at all; deep enough that making its strings storable (a NUL in it) cannot walk it; and as
    # deep with nothing to make storable, which is stored as it came.
    for item, levels, inside in ((items[1], 10_000, ""), (items[4], 700, '"\\u0000"'), (items[2], 700, "")):
        nested = JsonText("[" * levels + inside + "]" * levels)
        fake.break_transcript(item["id"], Fault.mangled(lambda body, nested=nested: body | {"extra": nested}))
    for _ in range(2):  # the next run goes on too
        result = run_cli(["sync", "--log-format", "json"], cli_env(fake, database_url))
        assert result.exit_code == 0, result.output
    assert (summary_json(result)["hydrated"], summary_json(result)["hydrate_failures"]) == (0, 0)  # backing off
    rows = stored(database_url)
    assert rows[items[1]["id"]]["hydrate_error"].startswith("the response nests its values too deeply to read (HTTP 200")
    assert rows[items[4]["id"]]["hydrate_error"] == "its body nests its values too deeply to store"
    assert [row["hydrate_attempts"] for row in rows.values()].count(1) == 2
    assert sum(row["hydrated_at"] is not None for row in rows.values()) == 4
    assert rows[items[2]["id"]]["hydrated_at"] is not None


def test_an_id_no_url_can_carry_is_skipped_with_a_warning_and_counted(database_url, fake):
    """A lone surrogate (stored escaped) raised UnicodeEncodeError from quote(): no transcript got details."""
    fake.add(3)
    fake.add_raw({**fake.add(1)[0], "id": "sur\ud800id"})
    fake.add(3)
    result = run_cli(["sync", "--log-format", "json"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    assert (summary_json(result)["hydrated"], summary_json(result)["hydrate_failures"]) == (7, 1)
    row = stored(database_url)[escape("sur\ud800id")]
    assert row["hydrate_error"] == "its id holds a character that is not valid Unicode, which no URL can carry"
    assert "details not fetched: its id holds a character that is not valid Unicode" in result.output


def test_a_list_item_nested_too_deep_to_store_costs_only_its_own_item(database_url, fake):
    """600 levels read, but escaping the NUL at the bottom went past the recursion limit: a traceback on every run."""
    fake.add(2)
    (deep,) = fake.add(1, extra=JsonText("[" * 600 + '"\\u0000"' + "]" * 600))
    fake.add(2)
    for _ in range(2):  # and the next full run, which lists it again, is not held up either
        result = run_cli(["sync", "--no-hydrate", "--full", "--log-format", "json"], cli_env(fake, database_url))
        assert result.exit_code == 0, result.output
        assert summary_json(result)["bad_values"] == 1
    assert f"transcript {deep['id']}: not stored, it nests its values too deeply to store" in result.stderr
    assert sorted(stored(database_url)) == sorted(item["id"] for item in fake.listing() if item["id"] != deep["id"])
