"""A transcript stuck pending deep in the listing is re-checked for a few requests, not by walking down to it,
and the table stays exact: status, completed, error, raw, status history and change feed."""

from __future__ import annotations

import signal

from conftest import API_KEY, assert_table_equals_api, cli_env, spawn, stored, summary_json, sync, wait_until
from sqlalchemy import create_engine, select

from etl.store.schema import transcript_status_changes
from etl.tools.simulator import FakeAssemblyAI, Fault


def requests_of(fake: FakeAssemblyAI, *args: str, database_url: str) -> tuple[int, dict]:
    before = len(fake.requests)
    result = sync(fake, database_url, "--log-format", "json", *args)
    assert result.exit_code == 0, result.output
    return len(fake.requests) - before, summary_json(result)


def history(database_url: str, transcript_id: str) -> list[tuple[str | None, str | None]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(transcript_status_changes.c.old_status, transcript_status_changes.c.new_status)
            .where(transcript_status_changes.c.transcript_id == transcript_id)
            .order_by(transcript_status_changes.c.id)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_one_straggler_16000_deep_costs_a_few_requests_and_ends_exact(database_url, fake):
    fake.add(3_999)
    [stuck] = fake.add(1, status="queued")
    fake.add(16_000)
    assert sync(fake, database_url).exit_code == 0

    idle, _ = requests_of(fake, database_url=database_url)
    assert idle <= 3  # the target; today: the newest page and one status=queued page
    assert idle == 2

    fake.set_status(stuck["id"], "processing")
    moved, summary = requests_of(fake, database_url=database_url)
    assert moved <= 5 and summary["updated"] == 1
    fake.set_status(stuck["id"], "completed")
    before = stored(database_url)[stuck["id"]]["change_seq"]
    finished, summary = requests_of(fake, database_url=database_url)
    assert finished <= 5  # the target; today: newest page, status=queued... and the re-read below its neighbour
    assert summary["updated"] == 1
    row = stored(database_url)[stuck["id"]]
    assert row["raw"] == fake.listing()[16_000] and row["raw"]["id"] == stuck["id"]
    assert row["status"] == "completed" and row["completed"] is not None and row["error"] is None
    assert row["change_seq"] > before  # the change feed sees it
    assert history(database_url, stuck["id"]) == [("queued", "processing"), ("processing", "completed")]
    assert_table_equals_api(database_url, fake)

    idle, _ = requests_of(fake, database_url=database_url)
    assert idle == 1  # nothing pending any more


def test_a_server_that_ignores_the_status_filter_is_caught_and_the_row_stays_exact(database_url):
    with FakeAssemblyAI(api_key=API_KEY, ignore_status_filter=True) as fake:
        fake.add(100)
        stuck = fake.add(2, status="processing")
        fake.add(700)
        assert sync(fake, database_url).exit_code == 0
        fake.set_status(stuck[0]["id"], "error")
        result = sync(fake, database_url)
        assert result.exit_code == 0, result.output
        assert "ignores the filter" in result.stderr
        assert_table_equals_api(database_url, fake)
        # Re-read one by one: the filtered page, two re-reads, the newest page; not the walk's five pages.
        assert [r["params"].get("before_id") is not None for r in fake.requests[-4:]] == [False, True, True, False]
        assert stored(database_url)[stuck[0]["id"]]["status"] == "error"


def test_unknown_statuses_are_pending_and_re_read_one_by_one(database_url, fake):
    fake.add(50)
    fake.add_raw({**fake.add(1)[0], "id": "throttled-1", "status": "throttled", "completed": None})
    fake.add(500)
    assert sync(fake, database_url).exit_code == 0
    assert stored(database_url)["throttled-1"]["raw"]["status"] == "throttled"

    idle, _ = requests_of(fake, database_url=database_url)
    assert idle == 2  # no status filter lists it: its re-read, and the newest page
    fake.set_status("throttled-1", "completed")
    _, summary = requests_of(fake, database_url=database_url)
    assert summary["updated"] == 1
    assert stored(database_url)["throttled-1"]["status"] == "completed"
    assert_table_equals_api(database_url, fake)
    assert requests_of(fake, database_url=database_url)[0] == 1


def test_a_straggler_whose_neighbour_left_the_listing_falls_back_to_the_walk(database_url, fake):
    fake.add(30)
    [stuck] = fake.add(1, status="queued")
    [neighbour] = fake.add(1)
    fake.add(450)
    assert sync(fake, database_url).exit_code == 0
    fake.set_status(stuck["id"], "completed")
    fake.expire(neighbour["id"])  # the re-read's cursor is refused (400)
    count, summary = requests_of(fake, database_url=database_url)
    assert summary["updated"] == 1
    assert count == 1 + 1 + 3  # status=queued, the refused re-read, the walk down to the straggler
    rows = stored(database_url)
    assert all(rows[item["id"]]["raw"] == item for item in fake.listing())


def test_more_stragglers_than_the_walk_has_pages_are_walked(database_url, fake):
    fake.add(10)
    for n in range(30):
        fake.add_raw({**fake.add(1)[0], "id": f"odd-{n}", "status": "throttled", "completed": None})
    fake.add(300)
    assert sync(fake, database_url).exit_code == 0
    count, _ = requests_of(fake, database_url=database_url)
    assert count == 2  # 30 re-reads would cost more than the two pages down to them
    for n in range(30):
        fake.set_status(f"odd-{n}", "error")
    requests_of(fake, database_url=database_url)
    assert_table_equals_api(database_url, fake)


def test_a_run_killed_while_re_checking_stragglers_loses_nothing(database_url, fake):
    fake.add(20)
    stuck = fake.add(3, status="queued")
    fake.add(450)
    assert sync(fake, database_url).exit_code == 0
    for item in stuck:
        fake.set_status(item["id"], "completed")
    release = fake.hold(2)  # status=queued and the first re-read pass; the second re-read blocks
    process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert fake.held.wait(120), process.communicate()
    wait_until(lambda: stored(database_url)[stuck[0]["id"]]["status"] == "completed")
    process.send_signal(signal.SIGKILL)
    process.wait()
    release.set()
    rows = stored(database_url)
    assert [rows[item["id"]]["status"] for item in stuck] == ["completed", "queued", "queued"]

    _, summary = requests_of(fake, database_url=database_url)
    assert summary["updated"] == 2
    assert_table_equals_api(database_url, fake)
    assert [history(database_url, item["id"]) for item in stuck] == [[("queued", "completed")]] * 3


def test_pending_transcripts_near_the_top_are_left_to_the_walk(database_url, fake):
    fake.add(300)
    near = fake.add(5, status="queued")
    fake.add(150)
    assert sync(fake, database_url).exit_code == 0
    # Within a page of the newest stored transcript: the walk's one page costs less than a filtered listing.
    idle, _ = requests_of(fake, database_url=database_url)
    assert idle == 1
    fake.set_status(near[2]["id"], "error")
    fake.add(100)  # the walk now needs a second page to reach it
    count, summary = requests_of(fake, database_url=database_url)
    assert (count, summary["updated"]) == (2, 1)
    assert_table_equals_api(database_url, fake)


def test_a_refused_status_filter_falls_back_and_the_row_stays_exact(database_url, fake):
    fake.add(20)
    [stuck] = fake.add(1, status="queued")
    fake.add(450)
    assert sync(fake, database_url).exit_code == 0
    fake.set_status(stuck["id"], "completed")
    fake.fail_next(Fault.status(400, {"error": "'status' is not supported"}))  # the status=queued listing
    result = sync(fake, database_url)
    assert result.exit_code == 0, result.output
    assert "refused status=queued" in result.stderr
    assert stored(database_url)[stuck["id"]]["status"] == "completed"
    assert_table_equals_api(database_url, fake)
