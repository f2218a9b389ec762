"""The fake AssemblyAI list API behaves like the real one, faults included."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from etl.tools.simulator import FakeAssemblyAI, Fault


@pytest.fixture
def fake() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI() as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = "test-key"
        yield session


def page(http: requests.Session, fake: FakeAssemblyAI, **params: object) -> dict:
    response = http.get(f"{fake.base_url}/v2/transcript", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict) -> list[str]:
    return [item["id"] for item in body["transcripts"]]


def test_paging_back_with_prev_url_covers_everything_once(fake, http):
    fake.add(47)
    fake.add(3, status="queued")
    seen, body = [], page(http, fake, limit=10)
    while True:
        assert body["page_details"]["next_url"] is not None
        seen += ids(body)
        if body["page_details"]["prev_url"] is None:
            break
        body = http.get(body["page_details"]["prev_url"], timeout=60).json()
    assert seen == [item["id"] for item in fake.listing()]
    assert len(set(seen)) == 50


def test_page_details_and_items(fake, http):
    items = fake.add(5)
    body = page(http, fake, limit=2)
    details = body["page_details"]
    assert details["limit"] == 2 and details["result_count"] == 2
    assert details["current_url"] == f"{fake.base_url}/v2/transcript?limit=2"
    assert details["prev_url"].endswith(f"?limit=2&before_id={items[3]['id']}")
    assert details["next_url"].endswith(f"?limit=2&after_id={items[4]['id']}")
    assert body["transcripts"] == [items[4], items[3]]
    assert set(items[0]) == {"id", "resource_url", "status", "created", "completed", "audio_url", "error"}
    assert all(item["created"] < item["completed"] for item in items)
    assert [item["created"] for item in items] == sorted({item["created"] for item in items})
    assert len(page(http, fake)["transcripts"]) == 5  # default limit 10


def test_oldest_page_has_no_prev_url_and_newest_still_has_next_url(fake, http):
    items = fake.add(4)
    last = page(http, fake, limit=2, before_id=items[2]["id"])
    assert ids(last) == [items[1]["id"], items[0]["id"]]
    assert last["page_details"]["prev_url"] is None
    empty = page(http, fake, limit=2, after_id=items[3]["id"])
    assert empty["transcripts"] == []
    assert empty["page_details"]["next_url"].endswith(f"after_id={items[3]['id']}")


@pytest.mark.parametrize(("mode", "expected"), [("oldest", slice(6, 11)), ("newest", slice(25, 30))])
def test_after_id_modes_with_more_newer_than_limit(mode, expected):
    with FakeAssemblyAI(after_id_mode=mode) as fake, requests.Session() as http:
        http.headers["Authorization"] = "test-key"
        items = fake.add(30)
        body = page(http, fake, limit=5, after_id=items[5]["id"])
    assert ids(body) == [item["id"] for item in reversed(items[expected])]
    assert body["page_details"]["prev_url"] is not None


def test_before_and_after_id_bound_a_window(fake, http):
    items = fake.add(10)
    window = page(http, fake, limit=50, after_id=items[2]["id"], before_id=items[6]["id"])
    assert ids(window) == [items[5]["id"], items[4]["id"], items[3]["id"]]
    bad = http.get(
        f"{fake.base_url}/v2/transcript",
        params={"after_id": items[6]["id"], "before_id": items[2]["id"]},
        timeout=60,
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "'after_id' must be a newer transcript than 'before_id'"}


def test_filters_are_applied_and_not_carried_into_urls(fake, http):
    fake.add(3)
    queued = fake.add(2, status="queued")
    fake.add(3)
    body = page(http, fake, status="queued", limit=1)
    assert ids(body) == [queued[1]["id"]]
    assert "status" not in body["page_details"]["prev_url"]
    assert page(http, fake, status="queued", before_id=queued[0]["id"])["page_details"]["prev_url"] is None
    assert len(page(http, fake, created_on=queued[0]["created"][:10], limit=50)["transcripts"]) == 8
    assert page(http, fake, created_on="1999-01-01")["transcripts"] == []


@pytest.mark.parametrize("params", [{"limit": 201}, {"limit": 0}, {"limit": "x"}, {"before_id": "nope"},
                                    {"after_id": "nope"}, {"status": "done"}, {"created_on": "yesterday"}])
def test_bad_parameters_are_400(fake, http, params):
    fake.add(3)
    response = http.get(f"{fake.base_url}/v2/transcript", params=params, timeout=60)
    assert response.status_code == 400
    assert "error" in response.json()


def test_expired_items_leave_the_listing_and_their_cursor_fails(fake, http):
    items = fake.add(5)
    fake.expire(items[2]["id"])
    assert ids(page(http, fake)) == [items[i]["id"] for i in (4, 3, 1, 0)]
    response = http.get(f"{fake.base_url}/v2/transcript", params={"before_id": items[2]["id"]}, timeout=60)
    assert response.status_code == 400
    assert http.get(f"{fake.base_url}/v2/transcript/{items[2]['id']}", timeout=60).status_code == 200


def test_status_changes_deletion_and_bad_items_are_served_as_stored(fake, http):
    [item] = fake.add(status="queued")
    assert item["completed"] is None and item["error"] is None
    fake.set_status(item["id"], "error")
    fake.delete(item["id"])
    fake.add(completed="foo")
    fake.add_raw({"id": "not-a-uuid", "status": "completed"})
    newest, bad, first = page(http, fake)["transcripts"]
    assert newest == {"id": "not-a-uuid", "status": "completed"}
    assert bad["completed"] == "foo"
    assert first["status"] == "error" and first["error"] and first["completed"] > first["created"]
    assert first["audio_url"] == "http://deleted_by_user"
    full = http.get(f"{fake.base_url}/v2/transcript/{item['id']}", timeout=60).json()
    assert full["text"] == "Deleted by user." and "created" not in full
    missing = http.get(f"{fake.base_url}/v2/transcript/unknown", timeout=60)
    assert missing.status_code == 404 and missing.json() == {"error": "Transcript not found"}


@pytest.mark.parametrize("key", [None, "wrong", "Bearer test-key"])
def test_wrong_or_missing_key_is_401(fake, key):
    headers = {"Authorization": key} if key else {}
    response = requests.get(f"{fake.base_url}/v2/transcript", headers=headers, timeout=60)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication error, API token missing/invalid"}


def test_faults_are_served_in_order_then_normal_handling_resumes(fake, http):
    fake.add(3)
    url = f"{fake.base_url}/v2/transcript"
    fake.fail_next(
        Fault.status(429, headers={"Retry-After": "1"}),
        Fault.status(503),
        Fault.html(),
        Fault.wrong_shape({"transcripts": []}),
        Fault.truncated(),
    )
    limited = http.get(url, timeout=60)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert http.get(url, timeout=60).json() == {"error": "Service Unavailable"}
    html = http.get(url, timeout=60)
    assert html.status_code == 502 and html.headers["Content-Type"] == "text/html"
    assert http.get(url, timeout=60).json() == {"transcripts": []}
    truncated = http.get(url, timeout=60)
    assert truncated.status_code == 200 and len(truncated.content) > 10
    with pytest.raises(requests.JSONDecodeError):
        truncated.json()
    assert len(page(http, fake)["transcripts"]) == 3
    assert [r["status"] for r in fake.requests] == [429, 503, 502, 200, 200, 200]


def test_reset_fault_is_a_connection_error(fake, http):
    fake.fail_next(Fault.reset())
    with pytest.raises(requests.ConnectionError):
        http.get(f"{fake.base_url}/v2/transcript", timeout=60)
    assert page(http, fake)["transcripts"] == []
    assert fake.requests[0]["status"] == 0


def test_slow_fault_trips_a_read_timeout(fake, http):
    fake.fail_next(Fault.slow(60))  # far beyond the timeout, however late the client looks
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{fake.base_url}/v2/transcript", timeout=0.1)
    assert page(http, fake)["transcripts"] == []


def test_hold_blocks_one_list_request_until_released(fake, http):
    fake.add(2)
    release = fake.hold(after_requests=1)
    page(http, fake)  # the first request passes
    result: list[dict] = []
    worker = threading.Thread(target=lambda: result.append(page(http, fake)))
    worker.start()
    assert fake.held.wait(120)
    time.sleep(0.05)
    assert result == []
    [newer] = fake.add()  # state changed while held is visible once released
    release.set()
    worker.join(120)
    assert ids(result[0])[0] == newer["id"]


def test_cursor_lookups_stay_fast_with_100k_items(fake, http):
    items = fake.add(100_000)
    # The processor time the test and the server thread spent, which other processes on the machine do not
    # lengthen as they lengthen the time it takes.
    started = time.process_time()
    for item in items[::10_000]:
        assert page(http, fake, limit=200, after_id=item["id"])["page_details"]["result_count"] == 200
        page(http, fake, limit=200, before_id=item["id"])
    assert time.process_time() - started < 2
