"""The stored cursor leaves the 90-day listing: the run notices, syncs what is listed, says so, never loops."""

from __future__ import annotations

import signal

from conftest import assert_table_equals_api, cli_env, spawn, stored, summary_json, sync, wait_until

from etl.tools.simulator import Fault


def test_high_water_mark_aged_out_during_an_outage(database_url, fake):
    old = fake.add(300)
    sync(fake, database_url)
    for item in old[100:]:  # the high water mark and everything after it age out...
        fake.expire(item["id"])
    for item in old[:100]:
        fake.expire(item["id"])
    fake.add(500)  # ...while 500 new transcripts arrive
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    summary = summary_json(result)
    assert summary["inserted"] == 500
    assert summary["requests"] == 4  # after_id=<the aged-out mark> refused (400), then the walk's three pages
    assert f"the stored cursor (transcript {old[-1]['id']}" in summary["warning"]
    assert "may have been missed while the job was down" in summary["warning"]
    assert "may have been missed" in result.stderr
    listed = {item["id"] for item in fake.listing()}
    assert listed <= set(stored(database_url))
    assert sync(fake, database_url).exit_code == 0  # and the next run is an ordinary one
    assert "missed" not in sync(fake, database_url).stderr


def test_interrupted_walk_whose_position_left_the_listing(database_url, fake):
    items = fake.add(1000)
    release = fake.hold(2)
    process = spawn(["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert fake.held.wait(120)
    wait_until(lambda: len(stored(database_url)) == 400)  # two pages committed, the third held
    process.send_signal(signal.SIGKILL)
    process.wait()
    release.set()
    # The stored position (the oldest of the second page) is now answered with a 400.
    position = items[-400]["id"]
    fake.fail_next(Fault.status(400, {"error": f"Transcript {position} not found"}))
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert f"the API rejected transcript {position} as a cursor" in result.stderr
    assert "walking again from the newest transcript" in result.stderr
    assert_table_equals_api(database_url, fake)


def test_a_cursor_rejected_twice_fails_the_run_instead_of_looping(database_url, fake):
    fake.add(1000)
    rejected = Fault.status(400, {"error": "'before_id' is not valid"})
    fake.fail_next(Fault.none(), rejected, Fault.none(), rejected)
    result = sync(fake, database_url)
    assert result.exit_code == 1
    assert "the API rejected transcript" in result.stderr.strip().splitlines()[-1]
    assert len(fake.requests) == 4  # page, rejected, newest page again, rejected: then it stops
    assert sync(fake, database_url).exit_code == 0
    assert_table_equals_api(database_url, fake)
