"""Messages that read right: counts agree with their nouns, timestamps are ISO 8601 wherever machines read them."""

from __future__ import annotations

import json
import re
from datetime import datetime

from conftest import cli_env, run_cli, sync


def test_one_page_is_one_page(database_url, fake):
    fake.add(3)
    result = sync(fake, database_url)
    assert re.fullmatch(
        r"sync of 'default' done: 3 new, 0 updated, 0 unchanged, 0 bad values, 1 page, 1 request, \d+\.\ds\n", result.stdout
    )
    shown = run_cli(["status"], cli_env(fake, database_url)).stdout
    assert re.search(r"succeeded: 3 new, .* 0 bad values, 1 page, 1 request$", shown, re.MULTILINE), shown


def test_status_json_timestamps_are_iso_like_the_export(database_url, fake):
    fake.add(2, status="queued")
    sync(fake, database_url)
    env = cli_env(fake, database_url)
    (account,) = json.loads(run_cli(["status", "--json"], env).stdout)["accounts"]
    exported = json.loads(run_cli(["export"], env).stdout.splitlines()[0])
    for value in (account["high_water"]["created"], account["oldest_pending_created"], account["last_runs"][0]["started_at"]):
        assert "T" in value and datetime.fromisoformat(value).utcoffset().total_seconds() == 0, value
    assert account["oldest_pending_created"] == min(
        json.loads(line)["created"] for line in run_cli(["export"], env).stdout.splitlines()
    )
    assert "T" in exported["created"]
    # People still get the short form.
    assert re.search(r"oldest created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", run_cli(["status"], env).stdout, re.MULTILINE)
