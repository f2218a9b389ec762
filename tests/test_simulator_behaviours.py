"""The fake API can play what the real one leaves undocumented: a rate limit, latency under concurrency,
a status filter it ignores, and each reading of created_on."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from etl.tools.simulator import CREATED_ON_MODES, CURSOR_DATE_ERROR, FakeAssemblyAI

KEY = "test-key"


def get(fake: FakeAssemblyAI, path: str = "/v2/transcript", **params: object) -> requests.Response:
    return requests.get(f"{fake.base_url}{path}", params=params, headers={"Authorization": KEY}, timeout=60)


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["transcripts"]]


def test_rate_limit_answers_429_with_retry_after_and_counts_them():
    with FakeAssemblyAI(rate_limit=5) as fake:
        now = time.monotonic()  # the rate limit's clock stands still here, its bucket full
        fake.rate_clock = lambda: now
        [item] = fake.add()
        # A burst of one second's worth passes; beyond it, both endpoints are refused until tokens return.
        answers = [get(fake) if n % 2 else get(fake, f"/v2/transcript/{item['id']}") for n in range(8)]
        codes = [answer.status_code for answer in answers]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        refused = answers[5]
        assert refused.headers["Retry-After"] == "1" and refused.json() == {"error": "Too Many Requests"}
        assert fake.rate_limited == 3
        assert [r["status"] for r in fake.requests].count(429) == 3
        now += float(refused.headers["Retry-After"])  # what Retry-After said: a token is back
        assert get(fake).status_code == 200
        assert fake.rate_limited == 3


def test_no_rate_limit_by_default(fake_plain):
    fake_plain.add()
    assert all(get(fake_plain).status_code == 200 for _ in range(50))
    assert fake_plain.rate_limited == 0


def test_latency_delays_both_endpoints_and_overlaps_across_concurrent_requests():
    with FakeAssemblyAI(latency=0.3) as fake:
        items = fake.add(10)
        started = time.monotonic()
        assert len(ids(get(fake))) == 10
        assert get(fake, f"/v2/transcript/{items[0]['id']}").status_code == 200
        serial = time.monotonic() - started
        assert fake.most_in_flight == 1
        fake.latency = 1.0  # long beside the time ten requests take to arrive, even on a loaded machine
        together = threading.Barrier(10, timeout=60)

        def detail(item: dict) -> int:
            together.wait()  # the ten leave at once
            return get(fake, f"/v2/transcript/{item['id']}").status_code

        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(detail, items))
        concurrent = time.monotonic() - started
    assert codes == [200] * 10
    assert serial >= 0.6  # each request waits its latency
    assert concurrent >= 1.0
    assert fake.most_in_flight == 10  # ten at once wait out their latency together, not one after another


def test_an_ignored_status_filter_lists_every_status():
    with FakeAssemblyAI(ignore_status_filter=True) as fake:
        items = fake.add(3) + fake.add(2, status="queued")
        listed = ids(get(fake, status="queued", limit=50))
        assert listed == [item["id"] for item in reversed(items)]
        assert get(fake, status="done").status_code == 400  # still validated


def days_fake(mode: str) -> tuple[FakeAssemblyAI, dict[str, list[str]]]:
    """Items at 00:00, 10:00 and (next day) 02:00 UTC: two UTC days, but one day in UTC-8 holds the last six."""
    fake = FakeAssemblyAI(created_on_mode=mode).start()
    midnight = fake.clock
    groups = {}
    for name, at in (("early", midnight), ("late", midnight + timedelta(hours=10)), ("next", midnight + timedelta(days=1, hours=2))):
        fake.clock = at
        groups[name] = [item["id"] for item in fake.add(3)]
    return fake, groups


@pytest.mark.parametrize("mode", CREATED_ON_MODES)
def test_created_on_readings(mode):
    fake, groups = days_fake(mode)
    try:
        day = fake.listing()[-1]["created"][:10]
        newest_of_day = groups["late"][-1]
        first = ids(get(fake, created_on=day, limit=50))
        with_cursor = get(fake, created_on=day, before_id=newest_of_day, limit=50)
        if mode == "other_timezone":
            # The UTC day's date names, in UTC-8, the day from 08:00 UTC to 08:00 UTC the next day.
            assert first == list(reversed(groups["late"] + groups["next"]))
            assert ids(with_cursor) == list(reversed(groups["late"][:2]))
        else:
            assert first == list(reversed(groups["early"] + groups["late"]))
        if mode == "honoured":
            assert ids(with_cursor) == list(reversed(groups["early"] + groups["late"][:2]))
            newest = groups["next"][-1]
            assert ids(get(fake, created_on=day, before_id=newest, limit=50)) == list(reversed(groups["early"] + groups["late"]))
        elif mode == "ignored_with_cursor":
            # Dropped once before_id is given: older transcripts of every day come back.
            assert ids(with_cursor) == list(reversed(groups["early"] + groups["late"][:2]))
            newest = groups["next"][-1]
            assert ids(get(fake, created_on=day, before_id=newest, limit=50)) == list(
                reversed(groups["early"] + groups["late"] + groups["next"][:2])
            )
        elif mode == "cursor_ignored":
            assert ids(with_cursor) == first  # the day's newest page, whatever the cursor
        elif mode == "refused_with_cursor":
            assert with_cursor.status_code == 400 and with_cursor.json() == {"error": CURSOR_DATE_ERROR}
            assert get(fake, created_on=day, after_id=groups["early"][0]).status_code == 400
    finally:
        fake.stop()


def test_unknown_created_on_mode_is_refused():
    with pytest.raises(ValueError, match="created_on_mode"):
        FakeAssemblyAI(created_on_mode="sometimes")


@pytest.fixture
def fake_plain():
    with FakeAssemblyAI() as fake:
        yield fake
