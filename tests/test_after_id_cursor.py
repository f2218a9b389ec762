"""A plain run asks `after_id=<high water mark>` first and trusts it only where both undocumented readings
(the oldest 200 after the cursor, or the newest 200) give the same answer: fewer than a page back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import API_KEY, assert_table_equals_api, stored, summary_json, sync

from etl.tools.simulator import TS_FORMAT, FakeAssemblyAI


def _run(fake, database_url) -> tuple[dict, list[dict]]:
    """Sync; the run's summary and the list requests it made."""
    before = len(fake.requests)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    return summary_json(result), fake.requests[before:]


def test_idle_run_is_one_after_id_request_with_an_empty_body(database_url, fake_either_after_id):
    fake = fake_either_after_id
    items = fake.add(500)
    sync(fake, database_url)
    rows = stored(database_url)
    summary, requests = _run(fake, database_url)
    assert [request["params"] for request in requests] == [{"limit": "200", "after_id": items[-1]["id"]}]
    assert (summary["requests"], summary["inserted"], summary["updated"]) == (1, 0, 0)
    assert stored(database_url) == rows


def test_fewer_than_a_page_new_come_from_one_request_and_move_the_mark(database_url, fake_either_after_id):
    fake = fake_either_after_id
    fake.add(300)
    sync(fake, database_url)
    new = fake.add(199)
    summary, requests = _run(fake, database_url)
    assert (summary["requests"], summary["inserted"], summary["updated"]) == (1, 199, 0)
    assert "after_id" in requests[0]["params"]
    assert_table_equals_api(database_url, fake)
    # The mark moved to the newest of them: the next idle run asks after it.
    _, requests = _run(fake, database_url)
    assert [request["params"].get("after_id") for request in requests] == [new[-1]["id"]]


def test_a_full_page_falls_back_to_the_walk(database_url, fake_either_after_id):
    fake = fake_either_after_id
    fake.add(300)
    sync(fake, database_url)
    fake.add(200)  # exactly a page newer: which 200 the API picks when more are newer is undocumented
    summary, requests = _run(fake, database_url)
    assert "after_id" in requests[0]["params"]
    assert all("after_id" not in request["params"] for request in requests[1:])
    assert summary["inserted"] == 200
    assert summary["requests"] == 3  # the probe, the newest page, the page that meets the mark
    assert_table_equals_api(database_url, fake)
    _, requests = _run(fake, database_url)
    assert len(requests) == 1


def test_an_item_not_newer_than_the_mark_falls_back_to_the_walk(database_url, fake_either_after_id):
    fake = fake_either_after_id
    items = fake.add(50)
    sync(fake, database_url)
    # Listed after the mark, yet created before it: the after_id answer is not to be trusted.
    earlier = fake.add(1, created=items[10]["created"])
    fake.add(3)
    summary, requests = _run(fake, database_url)
    assert len(requests) == 2 and "after_id" not in requests[1]["params"]
    assert summary["inserted"] == 4
    assert earlier[0]["id"] in stored(database_url)
    assert_table_equals_api(database_url, fake)


def test_an_item_with_an_implausible_created_falls_back_to_the_walk(database_url, fake):
    items = fake.add(50)
    sync(fake, database_url)
    created = fake.clock - timedelta(days=400)
    fake.add(1, created=created.strftime(TS_FORMAT))
    summary, requests = _run(fake, database_url)
    assert len(requests) == 2 and "after_id" not in requests[1]["params"]
    assert summary["inserted"] == 1
    assert_table_equals_api(database_url, fake)
    assert items[-1]["id"] in stored(database_url)


def test_a_pending_mark_is_re_read_by_the_walk(database_url, fake):
    fake.add(50)
    (last,) = fake.add(1, status="processing")
    sync(fake, database_url)
    fake.set_status(last["id"], "completed")
    summary, requests = _run(fake, database_url)
    assert [("after_id" in request["params"]) for request in requests] == [False]
    assert summary["updated"] == 1
    assert stored(database_url)[last["id"]]["status"] == "completed"
    assert_table_equals_api(database_url, fake)
    _, requests = _run(fake, database_url)  # now final: the probe again
    assert ["after_id" in request["params"] for request in requests] == [True]


@pytest.mark.parametrize("after_id_mode", ["oldest", "newest"])
@pytest.mark.parametrize("maximum", [50, 100])
def test_a_server_whose_page_maximum_is_smaller_is_exact(database_url, maximum, after_id_mode):
    # It answers limit=200 with `maximum` items and says so in page_details.limit: a page of that many is
    # full, not "all that is newer".
    with FakeAssemblyAI(api_key=API_KEY, after_id_mode=after_id_mode, page_maximum=maximum) as fake:
        fake.add(300)
        _run(fake, database_url)
        assert_table_equals_api(database_url, fake)
        fake.add(150)
        summary, requests = _run(fake, database_url)
        assert summary["inserted"] == 150
        assert_table_equals_api(database_url, fake)
        # Fewer than its page back still comes from the one after_id request.
        fake.add(maximum - 1)
        summary, requests = _run(fake, database_url)
        assert [("after_id" in request["params"]) for request in requests] == [True]
        assert_table_equals_api(database_url, fake)
