"""Numbers of any size or form are read, stored and exported exact, and compare the same on both databases."""

from __future__ import annotations

import json
from decimal import Decimal

from conftest import cli_env, run_cli, summary_json, sync
from sqlalchemy import select, text

from etl.model.storable import dumps, loads, number
from etl.store.engine import make_engine
from etl.store.schema import transcript_bodies, transcripts
from etl.tools.simulator import Fault, JsonText

LONG_INTEGER = "9" * 5000  # past Python's 4,300 digits: json.loads refuses it
LONG_DECIMAL = "0." + "3" * 5000  # float() makes it 0.333...: not what was sent
HUGE_DECIMAL = "1" * 5000 + ".5"  # float() makes it Infinity


def test_every_way_of_writing_a_number_reads_as_one_exact_value():
    for written, same in [("1e23", "100000000000000000000000"), ("1.0", "1"), ("2.5E-3", "0.0025"), ("1.50", "1.5"),
                          ("1e5000", "1" + "0" * 5000), ("-0.0", "0"), ("0.1" + "0" * 30, "0.1")]:
        assert number(written) == number(same), written
    assert number("0.93") == 0.93 and isinstance(number("0.93"), float)
    assert number("12345678901234567890.5") == Decimal("12345678901234567890.5")
    value = loads(f'{{"a": [{LONG_INTEGER}, {LONG_DECIMAL}, {HUGE_DECIMAL}, 1e23, 0.5]}}')
    assert value == {"a": [Decimal(LONG_INTEGER), Decimal(LONG_DECIMAL), Decimal(HUGE_DECIMAL), 10**23, 0.5]}
    assert loads(dumps(value)) == value
    assert json.loads(dumps({"n": Decimal(LONG_DECIMAL)}), parse_float=Decimal) == {"n": Decimal(LONG_DECIMAL)}


def raw_and_bodies(database_url):
    engine = make_engine(database_url, read_only=True)
    with engine.connect() as conn:
        raws = {row.id: row for row in conn.execute(select(transcripts))}
        bodies = {row.transcript_id: row.body for row in conn.execute(select(transcript_bodies))}
    engine.dispose()
    return raws, bodies


def test_numbers_of_any_length_are_stored_exact_and_never_retried(database_url, fake):
    """More than 4,300 digits made json.loads raise: the page was retried until it failed, on every run. A
    5,000-digit decimal became Infinity: SQLite stored non-JSON, PostgreSQL refused the item on every run."""
    fake.add(3)
    (long,) = fake.add(1, extra_long=JsonText(LONG_INTEGER), extra_decimal=JsonText(LONG_DECIMAL))
    (huge,) = fake.add(1, extra_huge=JsonText(HUGE_DECIMAL))

    def odd_numbers(body):
        return body | {"confidence": JsonText(HUGE_DECIMAL), "audio_duration": JsonText(LONG_INTEGER),
                       "extra": JsonText(LONG_DECIMAL)}

    fake.break_transcript(long["id"], Fault.mangled(odd_numbers))
    env = cli_env(fake, database_url)
    result = run_cli(["sync", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    summary = summary_json(result)
    assert (summary["inserted"], summary["hydrated"], summary["hydrate_failures"]) == (5, 5, 0)
    assert [r for r in fake.requests if r["path"] == "/v2/transcript"][0]["status"] == 200
    assert sum(1 for r in fake.requests if r["path"] == "/v2/transcript") == 1  # read once, not retried

    raws, bodies = raw_and_bodies(database_url)
    assert raws[long["id"]].raw["extra_long"] == Decimal(LONG_INTEGER)
    assert raws[long["id"]].raw["extra_decimal"] == Decimal(LONG_DECIMAL)
    assert raws[huge["id"]].raw["extra_huge"] == Decimal(HUGE_DECIMAL)
    body = bodies[long["id"]]
    assert (body["confidence"], body["audio_duration"], body["extra"]) == (
        Decimal(HUGE_DECIMAL), Decimal(LONG_INTEGER), Decimal(LONG_DECIMAL)
    )
    # No column holds them: NULL with a warning, the body and `raw` exact.
    assert (raws[long["id"]].confidence, raws[long["id"]].audio_duration) == (None, None)
    for name in ("confidence", "audio_duration"):
        assert f"transcript {long['id']}: {name} " in result.output and "is not a number a column holds: stored as NULL" in result.output

    exported = run_cli(["export", "--format", "jsonl"], env)
    assert exported.exit_code == 0, exported.output
    for line in exported.stdout.splitlines():
        row = json.loads(line, parse_int=Decimal, parse_float=Decimal, parse_constant=pytest_fail)
        if row["id"] == huge["id"]:
            assert row["raw"]["extra_huge"] == Decimal(HUGE_DECIMAL)

    again = run_cli(["sync", "--full", "--log-format", "json"], env)
    assert again.exit_code == 0, again.output
    assert summary_json(again)["updated"] == 0


def pytest_fail(name):
    raise AssertionError(f"{name} exported: not JSON")


def test_a_large_float_in_an_unknown_key_is_not_a_change(database_url, fake):
    """jsonb gives 1e23 back as 100000000000000000000000, which compared unequal to the float received: on
    PostgreSQL every run rewrote the row, counted it updated and moved its change_seq."""
    fake.add(2)
    (odd,) = fake.add(1, x=JsonText("1e23"), y=JsonText("1.10"), z=JsonText("12345678901234567890.123456789"))
    env = cli_env(fake, database_url)
    assert sync(fake, database_url).exit_code == 0
    engine = make_engine(database_url, read_only=True)

    def change_seq():
        with engine.connect() as conn:
            return conn.execute(text("SELECT change_seq, changed_at FROM transcripts WHERE id = :id"), {"id": odd["id"]}).one()

    before = change_seq()
    for _ in range(2):
        result = run_cli(["sync", "--no-hydrate", "--full", "--log-format", "json"], env)
        assert result.exit_code == 0, result.output
        assert (summary_json(result)["updated"], summary_json(result)["unchanged"]) == (0, 3)
    assert change_seq() == before
    engine.dispose()


def test_nan_and_infinity_are_never_stored(database_url, fake):
    """Not JSON, though some servers send them: the item, or the transcript's details, refused alone."""
    fake.add(2)
    (item,) = fake.add(1, extra=JsonText("NaN"))
    (detailed,) = fake.add(1)
    fake.break_transcript(detailed["id"], Fault.mangled(lambda body: body | {"extra": JsonText("-Infinity")}))
    result = run_cli(["sync", "--log-format", "json"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    summary = summary_json(result)
    assert (summary["inserted"], summary["bad_values"], summary["hydrate_failures"]) == (3, 1, 1)
    raws, bodies = raw_and_bodies(database_url)
    assert item["id"] not in raws and detailed["id"] not in bodies
    assert f"transcript {item['id']}: not stored, it holds NaN or Infinity, which are not JSON" in result.stderr
    assert raws[detailed["id"]].hydrate_error == "its body holds NaN or Infinity, which are not JSON"


def test_a_value_stored_before_nan_was_refused_is_not_exported_as_json(sqlite_url, fake):
    """SQLite took Infinity in `raw` from earlier versions: the export says so in one line, never writes it."""
    (item,) = fake.add(1)
    assert sync(fake, sqlite_url).exit_code == 0
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE transcripts SET raw = :raw"), {"raw": f'{{"id": "{item["id"]}", "x": Infinity}}'})
    engine.dispose()
    result = run_cli(["export", "--format", "jsonl"], cli_env(fake, sqlite_url))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"cannot export transcript {item['id']}: it holds NaN or Infinity, which JSON cannot carry" in result.stderr
