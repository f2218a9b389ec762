"""Every value the API sends is storable, or costs only its own item: never the page, never the next run."""

from __future__ import annotations

from conftest import cli_env, run_cli, stored, summary_json, sync
from sqlalchemy import create_engine, select

from etl.model.storable import escape, escape_json, unescape
from etl.store.schema import transcript_bodies
from etl.tools.simulator import Fault, JsonText


def test_escape_is_reversible_and_leaves_ordinary_text_alone():
    for text in ["plain", "", "nul\x00here", "lone\ud800surrogate", "low\udfff", "marker\uffffitself", "\uffff0000"]:
        assert unescape(escape(text)) == text
        assert "\x00" not in escape(text) and not any("\ud800" <= c <= "\udfff" for c in escape(text))
    assert escape("https://example.com/a.mp3 ünïcödé 🎙") == "https://example.com/a.mp3 ünïcödé 🎙"
    value = {"k\x00": ["a", {"b": "c\ud800"}], "n": 1}
    assert escape_json(value) == {"k\uffff0000": ["a", {"b": "c\uffffD800"}], "n": 1}
    plain = {"a": ["b", {"c": "d"}]}
    assert escape_json(plain) is plain


def test_nul_and_lone_surrogates_are_stored_escaped_and_the_sync_goes_on(database_url, fake):
    fake.add(150)
    nul_id = {**fake.add(1)[0]}
    fake.expire(nul_id["id"])
    nul_id["id"] = "nul\x00id-0001"
    fake.add_raw(nul_id)
    (nul_error,) = fake.add(1, status="error", error="bad file\x00 at byte 3")
    (surrogate,) = fake.add(1, audio_url="https://example.com/\ud800.mp3")
    odd_key = {**fake.add(1)[0]}
    fake.expire(odd_key["id"])
    odd_key["id"], odd_key["extra\ud83d"] = "odd-key-0001", "x"
    fake.add_raw(odd_key)
    fake.add(150)

    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert len(rows) == 304
    assert rows[escape("nul\x00id-0001")]["raw"] == escape_json(nul_id)
    assert unescape(rows[nul_error["id"]]["error"]) == "bad file\x00 at byte 3"
    assert unescape(rows[surrogate["id"]]["audio_url"]) == surrogate["audio_url"]
    assert rows[surrogate["id"]]["raw"] == escape_json(surrogate)
    assert rows["odd-key-0001"]["raw"] == escape_json(odd_key)

    again = sync(fake, database_url, "--log-format", "json")
    assert again.exit_code == 0, again.output
    assert summary_json(again)["updated"] == 0  # stored in escaped form, compared in escaped form
    fake.add(5)
    assert summary_json(sync(fake, database_url, "--log-format", "json"))["inserted"] == 5


def test_an_id_too_long_to_be_a_key_is_skipped_with_a_warning_and_counted(database_url, fake):
    fake.add(100)
    long_item = {**fake.add(1)[0]}
    fake.expire(long_item["id"])
    long_item["id"] = "x" * 3001
    fake.add_raw(long_item)
    fake.add(100)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert "skipped a list item without a usable id (missing, not text, or too long to be a key)" in result.stderr
    assert summary_json(result)["bad_values"] == 1
    assert len(stored(database_url)) == 200
    assert sync(fake, database_url).exit_code == 0


def test_a_value_the_database_refuses_costs_only_its_own_item(database_url, fake):
    """PostgreSQL's numeric holds 131,072 digits before the point: 1e200000 is JSON that its jsonb refuses."""
    fake.add(100)
    (infinite,) = fake.add(1, extra=JsonText("1e200000"))
    fake.add(100)
    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    listed = {item["id"] for item in fake.listing()}
    if database_url.startswith("sqlite"):
        assert set(rows) == listed
    else:
        assert set(rows) == listed - {infinite["id"]}
        assert f"transcript {infinite['id']}: not stored, the database refused it" in result.stderr
        assert summary_json(result)["bad_values"] == 1
        assert summary_json(result)["inserted"] == 200
    assert sync(fake, database_url).exit_code == 0


def test_details_with_nul_and_lone_surrogates_are_hydrated(database_url, fake):
    (nul_error,) = fake.add(1, status="error", error="bad file\x00 at byte 3")
    (surrogate,) = fake.add(1, audio_url="https://example.com/\ud800.mp3")
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    with engine.connect() as conn:
        bodies = {row.transcript_id: row.body for row in conn.execute(select(transcript_bodies))}
    engine.dispose()
    assert unescape(bodies[nul_error["id"]]["error"]) == "bad file\x00 at byte 3"
    assert unescape(bodies[surrogate["id"]]["audio_url"]) == surrogate["audio_url"]
    assert all(row["hydrated_at"] is not None for row in stored(database_url).values())


def test_details_the_database_refuses_cost_only_their_own_transcript(database_url, fake):
    odd, *others = fake.add(3)
    fake.break_transcript(odd["id"], Fault.mangled(lambda body: {**body, "extra": JsonText("1e200000")}))
    for _ in range(2):  # and the next run is not held up either
        result = run_cli(["sync"], cli_env(fake, database_url))
        assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert all(rows[item["id"]]["hydrated_at"] is not None for item in others)
    if database_url.startswith("postgresql"):
        assert rows[odd["id"]]["hydrated_at"] is None
        assert rows[odd["id"]]["hydrate_error"].startswith("the database refused its details")


def test_a_failing_database_ends_the_run_and_costs_no_transcript(fake, tmp_path):
    """Only a value the database refuses costs its item. A failure of the database itself (here a lock timeout,
    while an analyst's CREATE INDEX holds SHARE on transcripts; equally a statement timeout, a deadlock, a full
    disk) refused every item of the page alike: the run skipped them all with warnings, exited 0 and moved its
    cursor past them, and no later plain run listed them again. Now the run ends, one line, nothing of the
    page committed, and the next run stores them: on the first backfill's bulk path, a later run's upsert and
    the details' update alike."""
    import psycopg
    from conftest import assert_table_equals_api, empty_database
    from sqlalchemy.engine import make_url

    url = empty_database("postgresql", tmp_path)
    impatient = make_url(url).update_query_dict({"options": "-c lock_timeout=300"}).render_as_string(hide_password=False)
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert sync(fake, impatient, "--no-hydrate").exit_code == 0  # the schema, before the analyst's lock
    for command, arriving in ((["sync", "--no-hydrate"], 5), (["sync", "--no-hydrate"], 5), (["hydrate"], 0)):
        fake.add(arriving)
        with psycopg.connect(plain) as analyst:
            analyst.execute("LOCK TABLE transcripts IN SHARE MODE")  # what CREATE INDEX (not CONCURRENTLY) holds
            during = run_cli(command, cli_env(fake, impatient))
        assert during.exit_code == 1, during.output
        assert during.stderr.strip().splitlines()[-1] == (
            "aai-etl: error: database error: canceling statement due to lock timeout; everything committed so far is kept"
        )
        assert "not stored" not in during.stderr and "refused its details" not in during.stderr
        assert run_cli(command, cli_env(fake, impatient)).exit_code == 0
    assert_table_equals_api(url, fake)
    rows = stored(url)
    assert all(row["hydrated_at"] is not None and row["hydrate_attempts"] == 0 for row in rows.values())


def test_numbers_no_column_holds_are_null_and_cost_nothing_else(database_url, fake):
    """JSON allows any number. A word's start of 10**30 made SQLite's driver raise OverflowError, which is no
    database error: the sync ended in a traceback, and every later run fetched the same body first and ended
    the same way, so the account's details never got past it (PostgreSQL refused it, costing the transcript).
    Past 32 bits PostgreSQL refused the details. An integer of 400 digits as a number raised in Python itself.
    Each such value is now NULL, and counted; Infinity and NaN, which are not JSON, cost their body alone."""
    from etl.store.schema import DERIVED_TABLES, transcript_words

    items = fake.add(5)

    def huge(body):
        body["audio_duration"] = 10**400
        body["words"][0].update(start=10**30, end=2**31, confidence=10**400)
        body.update(speaker_labels=True, utterances=[
            {"speaker": "A", "channel": None, "start": 1e30, "end": 2**31 - 1, "confidence": 10**400, "text": "odd", "words": []}
        ])
        return body

    def not_finite(body):
        body["words"][0].update(start=float("inf"), end=float("nan"))
        return body

    fake.break_transcript(items[2]["id"], Fault.mangled(huge))
    fake.break_transcript(items[3]["id"], Fault.mangled(not_finite))
    for _ in range(2):
        result = run_cli(["sync"], cli_env(fake, database_url, AAI_ETL_STORE_WORDS="true"))
        assert result.exit_code == 0, result.output
    rows = stored(database_url)
    # Infinity and NaN are not JSON: neither database is given the body.
    assert rows.pop(items[3]["id"])["hydrate_error"] == "its body holds NaN or Infinity, which are not JSON"
    assert all(row["hydrated_at"] is not None for row in rows.values()), [row["hydrate_error"] for row in rows.values()]
    assert rows[items[2]["id"]]["audio_duration"] is None

    def first_words(transcript_id):
        engine = create_engine(database_url)
        with engine.connect() as conn:
            words = conn.execute(
                select(transcript_words).where(transcript_words.c.transcript_id == transcript_id).order_by(transcript_words.c.position)
            ).mappings().all()
        engine.dispose()
        return [(w["start_ms"], w["end_ms"]) for w in words[:1]]

    assert first_words(items[2]["id"]) == [(None, None)]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        utterances = DERIVED_TABLES["utterances"]
        found = conn.execute(select(utterances).where(utterances.c.transcript_id == items[2]["id"])).mappings().all()
    engine.dispose()
    assert [(u["start_ms"], u["end_ms"], u["confidence"]) for u in found] == [(None, 2**31 - 1, None)]  # the largest kept
