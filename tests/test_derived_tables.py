"""Audio intelligence tables: exactly the rows each body holds, replaced on re-fetch, purged on deletion,
malformed parts skipped with a warning, a setting to choose them, and a backfill from stored bodies."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from conftest import API_KEY, cli_env, run_cli
from sqlalchemy import create_engine, delete, select, update

from etl.config import DERIVED_TABLE_NAMES
from etl.details import derive
from etl.store.engine import make_engine
from etl.store.schema import DERIVED_TABLES, FEATURE_FLAGS, transcripts
from etl.tools.simulator import intelligence_profile

PROFILES = ("none", "all", "some", "malformed")


def body_of(fake, transcript_id):
    return requests.get(f"{fake.base_url}/v2/transcript/{transcript_id}", headers={"Authorization": API_KEY}).json()


def expected_rows(body: dict) -> dict[str, list[tuple]]:
    """What each table must hold for a body, read independently of etl.details.derive (the simulator's malformed
    parts are a part of the wrong shape, which stores nothing, or one unreadable value, stored as NULL)."""
    def listed(name):
        part = body.get(name)
        return part if isinstance(part, list) and all(isinstance(e, dict) for e in part) else []

    def number(value):
        return float(value) if isinstance(value, (int, float)) else None

    highlights = (body.get("auto_highlights_result") or {}).get("results") or []
    topics = (body.get("iab_categories_result") or {}).get("summary") or {}
    safety = body.get("content_safety_labels") or {}
    severities = safety.get("severity_score_summary") if isinstance(safety.get("severity_score_summary"), dict) else {}
    return {
        "utterances": [(u["speaker"], u["channel"], u["start"], u["end"], u["confidence"], u["text"]) for u in listed("utterances")],
        "sentiments": [
            (s["sentiment"], number(s["confidence"]), s["speaker"], s["channel"], s["start"], s["end"], s["text"])
            for s in listed("sentiment_analysis_results")
        ],
        "entities": [(e["entity_type"], e["text"], e["start"], e["end"]) for e in listed("entities")],
        "highlights": [
            (h["text"], h["count"], h.get("rank"), h["timestamps"][0]["start"], [[t["start"], t["end"]] for t in h["timestamps"]])
            for h in highlights
        ],
        # Highest score first: the order of a JSON object's keys is not kept by PostgreSQL's JSONB.
        "topics": sorted(topics.items(), key=lambda pair: -pair[1]),
        "content_safety": [
            (label, confidence, *(severities.get(label, {}).get(level) for level in ("low", "medium", "high")))
            for label, confidence in sorted((safety.get("summary") or {}).items(), key=lambda pair: -pair[1])
        ],
        "chapters": [(c["start"], c["end"], c["gist"], c["headline"], c["summary"]) for c in listed("chapters")],
    }


_VALUE_COLUMNS = {
    "utterances": ("speaker", "channel", "start_ms", "end_ms", "confidence", "text"),
    "sentiments": ("sentiment", "confidence", "speaker", "channel", "start_ms", "end_ms", "text"),
    "entities": ("entity_type", "text", "start_ms", "end_ms"),
    "highlights": ("text", "count", "rank", "first_start_ms", "timestamps"),
    "topics": ("label", "relevance"),
    "content_safety": ("label", "confidence", "severity_low", "severity_medium", "severity_high"),
    "chapters": ("start_ms", "end_ms", "gist", "headline", "summary"),
}


def stored_rows(database_url: str) -> dict[str, dict[str, list[tuple]]]:
    """table -> transcript id -> its rows' values in position order."""
    engine = create_engine(database_url)
    found: dict[str, dict[str, list[tuple]]] = {}
    with engine.connect() as conn:
        for name, table in DERIVED_TABLES.items():
            mine = found.setdefault(name, {})
            for row in conn.execute(select(table).order_by(table.c.transcript_id, table.c.position)).mappings():
                rows = mine.setdefault(row["transcript_id"], [])
                assert row["position"] == len(rows)  # positions are 0, 1, 2, ... in the body's order
                rows.append(tuple(row[column] for column in _VALUE_COLUMNS[name]))
    engine.dispose()
    return found


def transcript_rows(database_url: str) -> dict[str, dict]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = {row["id"]: dict(row) for row in conn.execute(select(transcripts)).mappings()}
    engine.dispose()
    return rows


def assert_tables_match_bodies(database_url, fake, ids, tables=DERIVED_TABLE_NAMES):
    found = stored_rows(database_url)
    rows = transcript_rows(database_url)
    for transcript_id in ids:
        body = body_of(fake, transcript_id)
        expected = expected_rows(body)
        for name in DERIVED_TABLE_NAMES:
            want = expected[name] if name in tables else []
            assert found[name].get(transcript_id, []) == want, (name, transcript_id, intelligence_profile(transcript_id))
        row = rows[transcript_id]
        assert {flag: row[flag] for flag in FEATURE_FLAGS} == {flag: body[flag] for flag in FEATURE_FLAGS}
        assert (row["audio_channels"], row["language_confidence"], row["summary"]) == (
            body["audio_channels"], body["language_confidence"], body["summary"])
        assert row["derived_at"] is not None


def sync_with_details(fake, database_url, *args, config=None):
    options = ["--config", config] if config else []
    result = run_cli(["sync", *options, *args], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    return result


def test_a_sync_fills_exactly_the_rows_the_bodies_hold(database_url, fake):
    items = fake.add(40)
    fake.add(2, status="error")
    result = sync_with_details(fake, database_url)
    ids = [item["id"] for item in items]
    assert {intelligence_profile(i) for i in ids} == set(PROFILES)  # every kind of body is in the test
    assert_tables_match_bodies(database_url, fake, ids)
    found = stored_rows(database_url)
    assert all(found[name] for name in DERIVED_TABLE_NAMES)  # no table is trivially empty
    # Each kind of trouble is named once, with a transcript that has it and how many others; the rest of the body is kept.
    malformed = [i for i in ids if intelligence_profile(i) == "malformed"]
    assert len(malformed) > 1
    warnings = result.stderr.splitlines()
    for trouble in ("entities is not a list of objects; no entities rows stored",
                    "chapters is not a list of objects; no chapters rows stored",
                    "iab_categories was requested but the body has no iab_categories_result; no topics rows stored",
                    "1 unreadable value in sentiment_analysis_results stored as NULL",
                    "1 unreadable value in content_safety_labels stored as NULL"):
        (line,) = [line for line in warnings if trouble in line]
        assert line.startswith("aai-etl: warning: transcript ") and line.split()[3].rstrip(":") in malformed
    assert sum("warning" in line for line in warnings) == 5
    for transcript_id in malformed:
        assert found["utterances"][transcript_id] and found["sentiments"][transcript_id][0][1] is None
    untouched = [i for i in ids if intelligence_profile(i) in ("none", "all", "some")]
    assert not any(transcript_id in result.stderr for transcript_id in untouched)
    # "Not requested" and "no rows" are told apart by the flags.
    rows = transcript_rows(database_url)
    assert all(rows[i]["speaker_labels"] is False for i in ids if intelligence_profile(i) == "none")


def test_a_new_fetch_replaces_the_rows_and_a_deletion_purges_them(database_url, fake):
    items = fake.add(12)
    sync_with_details(fake, database_url)
    ids = [item["id"] for item in items]
    engine = make_engine(database_url)
    with engine.begin() as conn:  # rows that no body holds, and rows missing: a new fetch must mend both
        utterances = DERIVED_TABLES["utterances"]
        conn.execute(delete(utterances).where(utterances.c.position == 0))
        conn.execute(DERIVED_TABLES["topics"].insert().values(transcript_id=ids[0], account="default", position=99, label="stale"))
        conn.execute(update(transcripts).values(hydrated_at=None))
    engine.dispose()
    result = run_cli(["hydrate"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    assert_tables_match_bodies(database_url, fake, ids)

    gone = ids[:6]
    for transcript_id in gone:
        fake.delete(transcript_id)
    sync_with_details(fake, database_url, "--full")  # a deletion of a final transcript is found by a full walk
    found = stored_rows(database_url)
    rows = transcript_rows(database_url)
    for transcript_id in gone:
        assert all(transcript_id not in found[name] for name in DERIVED_TABLE_NAMES)
        assert all(rows[transcript_id][flag] is None for flag in (*FEATURE_FLAGS, "summary", "language_confidence"))
    assert_tables_match_bodies(database_url, fake, ids[6:])


def test_the_setting_chooses_the_tables(database_url, fake, tmp_path):
    config = tmp_path / "some.toml"
    config.write_text('derived_tables = ["utterances", "topics"]\n')
    items = fake.add(12)
    sync_with_details(fake, database_url, config=str(config))
    assert_tables_match_bodies(database_url, fake, [i["id"] for i in items], tables=("utterances", "topics"))


def test_an_unknown_table_in_the_setting_is_refused(fake, sqlite_url, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text('derived_tables = ["utterance"]\n')
    result = run_cli(["sync", "--config", str(config)], cli_env(fake, sqlite_url))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"aai-etl: error: config file {config}, key 'derived_tables': unknown name 'utterance' (did you mean 'utterances'?)"
    )


def test_the_setting_and_the_schema_name_the_same_tables():
    assert DERIVED_TABLE_NAMES == derive.ALL_TABLES


def forget_derived(database_url):
    """The state of a database hydrated before the derived tables existed."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in DERIVED_TABLES.values():
            conn.execute(delete(table))
        conn.execute(update(transcripts).values(
            derived_at=None, summary=None, audio_channels=None, language_confidence=None,
            **{flag: None for flag in FEATURE_FLAGS},
        ))
    engine.dispose()


def test_derive_backfills_from_stored_bodies_without_requests(database_url, fake):
    items = fake.add(30)
    sync_with_details(fake, database_url)
    ids = [item["id"] for item in items]
    forget_derived(database_url)

    requests_before = len(fake.requests)
    result = run_cli(["derive"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "'default': tables derived for 30 transcripts from their stored bodies"
    assert len(fake.requests) == requests_before  # no API request
    assert_tables_match_bodies(database_url, fake, ids)
    again = run_cli(["derive"], cli_env(fake, database_url))
    assert again.stdout.strip() == "'default': tables derived for 0 transcripts from their stored bodies"


def test_derive_resumes_after_a_committed_batch(database_url, fake, monkeypatch):
    items = fake.add(20)
    sync_with_details(fake, database_url)
    forget_derived(database_url)
    monkeypatch.setattr(derive, "BACKFILL_BATCH", 7)
    def stop_after_first(done):
        if done > 7:
            raise KeyboardInterrupt

    engine = make_engine(database_url)
    with engine.connect() as conn, pytest.raises(KeyboardInterrupt):
        derive.backfill(conn, "default", derive.Deriver(), datetime.now(timezone.utc), on_batch=stop_after_first)
    engine.dispose()
    assert sum(row["derived_at"] is not None for row in transcript_rows(database_url).values()) == 7
    result = run_cli(["derive"], cli_env(fake, database_url))
    assert result.stdout.strip() == "'default': tables derived for 13 transcripts from their stored bodies"
    assert_tables_match_bodies(database_url, fake, [i["id"] for i in items])


def test_without_stored_bodies_derive_says_how_to_fetch_again(database_url, fake, tmp_path):
    config = tmp_path / "nobodies.toml"
    config.write_text("store_bodies = false\n")
    items = fake.add(10)
    sync_with_details(fake, database_url, config=str(config))
    forget_derived(database_url)
    env = cli_env(fake, database_url)
    result = run_cli(["derive", "--config", str(config)], env)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "aai-etl: warning: 'default': 10 transcripts were fetched with store_bodies off, so their tables can only "
        "come from a new fetch: run `aai-etl derive --refetch`, then `aai-etl hydrate` (one request each)"
    )
    queued = run_cli(["derive", "--refetch", "--config", str(config)], env)
    assert queued.stdout.strip() == "'default': 10 transcripts queued; `aai-etl hydrate` fetches them again"
    assert run_cli(["hydrate", "--config", str(config)], env).exit_code == 0
    assert_tables_match_bodies(database_url, fake, [i["id"] for i in items])


def test_derive_again_fills_a_table_turned_on_later(database_url, fake, tmp_path):
    config = tmp_path / "few.toml"
    config.write_text('derived_tables = ["topics"]\n')
    items = fake.add(12)
    sync_with_details(fake, database_url, config=str(config))
    ids = [item["id"] for item in items]
    assert_tables_match_bodies(database_url, fake, ids, tables=("topics",))
    nothing_new = run_cli(["derive"], cli_env(fake, database_url))
    assert nothing_new.stdout.strip() == "'default': tables derived for 0 transcripts from their stored bodies"
    again = run_cli(["derive", "--again"], cli_env(fake, database_url))
    # Bodies of an odd shape were told of when first stored: derived again, they are counted, not warned of.
    odd = sum(intelligence_profile(i) == "malformed" for i in ids)
    assert odd and again.stderr == ""
    assert again.stdout.strip() == (
        f"'default': tables derived for 12 transcripts from their stored bodies "
        f"({odd} with a body of an unexpected shape, as said when first stored)"
    )
    assert_tables_match_bodies(database_url, fake, ids)


def test_derived_tables_must_be_a_list_of_names(fake, sqlite_url, tmp_path):
    config = tmp_path / "string.toml"
    config.write_text('derived_tables = "utterances"\n')
    result = run_cli(["sync", "--config", str(config)], cli_env(fake, sqlite_url))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"aai-etl: error: config file {config}, key 'derived_tables': expected a list of names, got 'utterances'"
    )


def test_derive_quiet_says_nothing(fake, sqlite_url):
    fake.add(3)
    sync_with_details(fake, sqlite_url)
    result = run_cli(["derive", "--quiet"], cli_env(fake, sqlite_url))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
