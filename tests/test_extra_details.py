"""Sentences, paragraphs and subtitles (the extra_details setting): each kind one more request per completed
transcript, stored exactly as served, only when every part arrived, replaced on re-fetch, purged on
deletion, in the Parquet export; not asked for, not a single extra request."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq
import requests
from conftest import API_KEY, cli_env, run_cli, stored, summary_json
from sqlalchemy import create_engine, func, select, update

from etl.model.storable import escape, unescape
from etl.store.schema import transcript_paragraphs, transcript_sentences, transcript_subtitles, transcripts
from etl.tools.simulator import Fault

ALL = ("sentences", "paragraphs", "srt", "vtt")
TABLES = {"sentences": transcript_sentences, "paragraphs": transcript_paragraphs}


def run(fake, database_url, *args, kinds=ALL):
    env = cli_env(fake, database_url, AAI_ETL_BACKOFF_SECONDS="0.01", AAI_ETL_MAX_RETRIES="2",
                  AAI_ETL_EXTRA_DETAILS=",".join(kinds) or "[]")
    return run_cli([*args, "--log-format", "json"], env)


def detail_requests(fake) -> int:
    return sum(1 for request in fake.requests if request["path"] != "/v2/transcript")


def served(fake, transcript_id, part):
    """What the simulator answers for a part, asked outside the sync (after its requests are counted)."""
    answer = requests.get(f"{fake.base_url}/v2/transcript/{transcript_id}/{part}", headers={"Authorization": API_KEY}, timeout=30)
    answer.raise_for_status()
    if part in ("srt", "vtt"):
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.text
    return [
        (position, element["text"], element["start"], element["end"], element["confidence"], element["speaker"], element["channel"])
        for position, element in enumerate(answer.json()[part])
    ]


def held(database_url) -> dict[str, dict[str, Any]]:
    """kind -> transcript id -> its rows in position order (sentences, paragraphs) or its subtitles' text."""
    engine = create_engine(database_url)
    found: dict[str, dict[str, Any]] = {kind: {} for kind in ALL}
    with engine.connect() as conn:
        for kind, table in TABLES.items():
            query = select(table).order_by(table.c.transcript_id, table.c.position)
            for row in conn.execute(query).mappings():
                found[kind].setdefault(row["transcript_id"], []).append(
                    (row["position"], row["text"], row["start_ms"], row["end_ms"], row["confidence"], row["speaker"], row["channel"])
                )
        for row in conn.execute(select(transcript_subtitles)).mappings():
            found[row["format"]][row["transcript_id"]] = row["text"]
    engine.dispose()
    return found


def assert_exact(fake, database_url, ids, kinds=ALL):
    found = held(database_url)
    for kind in ALL:
        expected = {tid: served(fake, tid, kind) for tid in ids} if kind in kinds else {}
        assert found[kind] == expected, kind


def test_every_completed_transcript_gets_exactly_what_the_api_serves(database_url, fake):
    done = [item["id"] for item in fake.add(12)]
    fake.add(3, status="error")
    fake.add(2, status="processing")
    result = run(fake, database_url, "sync")
    assert result.exit_code == 0, result.output
    assert summary_json(result)["hydrated"] == 15
    assert detail_requests(fake) == 12 * (1 + len(ALL)) + 3  # an errored transcript has no sentences to ask for
    assert_exact(fake, database_url, done)
    before = detail_requests(fake)
    assert summary_json(run(fake, database_url, "sync"))["hydrated"] == 0
    assert detail_requests(fake) == before  # never fetched twice


def test_each_kind_asked_for_is_one_request_and_none_is_none(database_url, fake):
    ids = [item["id"] for item in fake.add(6)]
    result = run(fake, database_url, "sync", kinds=("srt", "sentences"))
    assert result.exit_code == 0, result.output
    assert detail_requests(fake) == 6 * 3
    assert_exact(fake, database_url, ids, kinds=("srt", "sentences"))

    more = [item["id"] for item in fake.add(5)]
    fake.requests.clear()
    assert run(fake, database_url, "sync", kinds=()).exit_code == 0
    assert detail_requests(fake) == 5  # the bodies alone
    assert not {tid for kind in held(database_url).values() for tid in kind} & set(more)


def test_a_part_that_fails_fails_its_transcript_alone_and_a_later_run_completes_it(database_url, fake):
    ids = [item["id"] for item in fake.add(10)]
    broken = ids[3]
    fake.break_transcript(broken, Fault.status(500), part="sentences")
    result = run(fake, database_url, "sync")
    assert result.exit_code == 0, result.output
    assert (summary_json(result)["hydrated"], summary_json(result)["hydrate_failures"]) == (9, 1)
    row = stored(database_url)[broken]
    assert row["hydrated_at"] is None and row["text"] is None and row["hydrate_attempts"] == 1
    assert row["hydrate_error"].startswith("its sentences: the AssemblyAI API kept failing (HTTP 500"), row["hydrate_error"]
    assert_exact(fake, database_url, [tid for tid in ids if tid != broken])  # nothing at all of the broken one

    fake.break_transcript(broken, None, part="sentences")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(transcripts).values(hydrate_after=func.current_timestamp()))
    engine.dispose()
    result = run(fake, database_url, "hydrate")
    assert summary_json(result)["hydrated"] == 1
    assert stored(database_url)[broken]["hydrated_at"] is not None
    assert_exact(fake, database_url, ids)


def test_a_new_fetch_replaces_the_rows_and_a_deletion_purges_them(database_url, fake):
    ids = [item["id"] for item in fake.add(4)]
    assert run(fake, database_url, "sync").exit_code == 0
    again, victim = ids[0], ids[1]
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(transcript_sentences.insert().values(transcript_id=again, account="default", position=99, text="stale"))
        conn.execute(update(transcript_subtitles).where(transcript_subtitles.c.transcript_id == again).values(text="stale"))
        conn.execute(update(transcripts).where(transcripts.c.id == again).values(hydrated_at=None))
    assert summary_json(run(fake, database_url, "hydrate"))["hydrated"] == 1
    assert_exact(fake, database_url, ids)

    fake.delete(victim)
    result = run(fake, database_url, "sync", "--full")  # a plain run re-reads no final row
    assert summary_json(result)["deleted"] == 1
    found = held(database_url)
    assert all(victim not in found[kind] for kind in ALL)
    assert all(set(found[kind]) == set(ids) - {victim} for kind in ALL)
    engine.dispose()


def test_the_parquet_export_carries_them_with_their_transcripts_change_seq(database_url, fake, tmp_path):
    fake.add(5)
    assert run(fake, database_url, "sync").exit_code == 0
    result = run_cli(["export", "--format", "parquet", "--output-dir", str(tmp_path)], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    with engine.connect() as conn:
        for table in (transcript_sentences, transcript_paragraphs, transcript_subtitles):
            joined = table.join(transcripts, (transcripts.c.id == table.c.transcript_id) & (transcripts.c.account == table.c.account))
            rows = [dict(row) for row in conn.execute(select(table, transcripts.c.change_seq).select_from(joined)).mappings()]
            exported = [row for part in sorted((tmp_path / table.name).iterdir()) for row in pq.read_table(part).to_pylist()]
            assert rows and sorted(exported, key=repr) == sorted(rows, key=repr), table.name
            assert pq.read_schema(next((tmp_path / table.name).iterdir())).names == [*table.columns.keys(), "change_seq"]
    engine.dispose()


def test_the_simulator_serves_parts_of_completed_transcripts_only_and_counts_every_request(fake):
    (done,), (failed,) = fake.add(1), fake.add(1, status="error")
    asked = {"Authorization": API_KEY}
    for part in ALL:
        assert requests.get(f"{fake.base_url}/v2/transcript/{done['id']}/{part}", headers=asked, timeout=30).status_code == 200
        assert requests.get(f"{fake.base_url}/v2/transcript/{failed['id']}/{part}", headers=asked, timeout=30).status_code == 400
        assert requests.get(f"{fake.base_url}/v2/transcript/no-such-id/{part}", headers=asked, timeout=30).status_code == 404
    assert [request["status"] for request in fake.requests] == [200, 400, 404] * len(ALL)
    assert served(fake, done["id"], "srt").startswith("1\n00:00:00,") and served(fake, done["id"], "vtt").startswith("WEBVTT\n\n")


def test_the_details_phase_counts_the_extra_requests_in_its_time_up_front(sqlite_url, fake):
    fake.add(20)
    # 3,000 requests a minute: 20 transcripts of five requests each take at least 2 s (the bodies alone, 0.4 s).
    env = cli_env(fake, sqlite_url, AAI_ETL_REQUESTS_PER_MINUTE="3000", AAI_ETL_PROGRESS_INTERVAL="1",
                  AAI_ETL_EXTRA_DETAILS=",".join(ALL))
    result = run_cli(["sync", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    first = next(line for line in lines if line["event"] == "progress" and line["phase"] == "hydrating")
    assert (first["done"], first["total"], first["eta_seconds"]) == (0, 20, 2)


def test_a_character_a_database_refuses_is_stored_escaped_as_in_a_body(database_url, fake):
    """PostgreSQL refuses NUL in text: without the escape the whole batch's details would be refused."""
    (item,) = fake.add(1)
    odd = "a\x00b \ud800"
    fake.break_transcript(item["id"], Fault.mangled(lambda body: {**body, "sentences": [{**body["sentences"][0], "text": odd}]}),
                          part="sentences")
    result = run(fake, database_url, "sync", kinds=("sentences",))
    assert (result.exit_code, summary_json(result)["hydrated"]) == (0, 1), result.output
    (row,) = held(database_url)["sentences"][item["id"]]
    assert row[1] == escape(odd) and unescape(row[1]) == odd
