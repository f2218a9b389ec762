"""API error text is redacted and capped where it is stored, not only where it is printed."""

from __future__ import annotations

from conftest import API_KEY, cli_env, run_cli, stored, sync
from sqlalchemy import create_engine, select

from etl.store.schema import sync_runs
from etl.tools.simulator import Fault


def run_errors(database_url) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        errors = [row.error for row in conn.execute(select(sync_runs)) if row.error]
    engine.dispose()
    return errors


def test_an_error_echoing_the_key_is_stored_without_it(database_url, fake):
    fake.add(3)
    fake.fail_next(Fault.echo_auth(400))
    result = sync(fake, database_url)
    assert result.exit_code == 1
    (error,) = run_errors(database_url)
    assert "received headers: Authorization: ***" in error
    assert API_KEY not in error

    (item,) = fake.add(1)
    fake.break_transcript(item["id"], Fault.echo_auth(400))
    assert run_cli(["sync"], cli_env(fake, database_url)).exit_code == 0
    hydrate_error = stored(database_url)[item["id"]]["hydrate_error"]
    assert "Authorization: ***" in hydrate_error and API_KEY not in hydrate_error
    status = run_cli(["status"], cli_env(fake, database_url))
    assert API_KEY not in status.output


def test_a_huge_error_message_is_capped_everywhere(database_url, fake):
    huge = Fault.status(400, {"error": "x" * 5_000_000})
    fake.add(2)
    fake.fail_next(huge)
    result = sync(fake, database_url)
    assert result.exit_code == 1
    assert len(result.stderr) < 1_000
    assert "(5,000,000 characters in all)" in result.stderr
    (error,) = run_errors(database_url)
    assert len(error) < 1_000

    (item,) = fake.add(1)
    fake.break_transcript(item["id"], huge)
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0
    assert len(result.stderr) < 2_000
    assert len(stored(database_url)[item["id"]]["hydrate_error"]) < 1_000


def test_a_database_error_is_stored_and_probed_as_one_line(database_url, fake):
    """A run ended by a database error stored SQLAlchemy's whole text: the driver's message, then the statement,
    its parameters (transcript values) and a link, each on a line of its own, which `status` and the
    `status --max-age` probe printed. It is stored as the command's error line says it."""
    from sqlalchemy import text

    added = fake.add(5, status="processing")
    assert sync(fake, database_url).exit_code == 0
    fake.set_status(added[0]["id"], "completed")
    engine = create_engine(database_url)
    with engine.begin() as conn:  # the status change's record fails inside the database, as a full disk would
        if database_url.startswith("sqlite"):
            conn.execute(text(
                "CREATE TRIGGER fail BEFORE INSERT ON transcript_status_changes BEGIN SELECT RAISE(ABORT, 'disk is full'); END"
            ))
        else:
            conn.execute(text(
                "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk is full'; END $$;"
                "CREATE TRIGGER fail BEFORE INSERT ON transcript_status_changes FOR EACH ROW EXECUTE FUNCTION fail()"
            ))
    engine.dispose()
    result = sync(fake, database_url)
    assert result.exit_code == 1, result.output
    assert run_errors(database_url) == ["database error: disk is full"]
    probe = run_cli(["status", "--max-age", "2h"], cli_env(fake, database_url))
    assert probe.exit_code == 1
    assert len(probe.stderr.strip().splitlines()) == 1 and "database error: disk is full" in probe.stderr, probe.stderr

    # A run recorded by aai-etl 0.1.0, with SQLAlchemy's whole text: the probe and `status` still say one line of it.
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sync_runs.update().values(
            error="OperationalError: (sqlite3.OperationalError) disk is full\n[SQL: INSERT ...]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)"
        ))
    engine.dispose()
    probe = run_cli(["status", "--max-age", "2h"], cli_env(fake, database_url))
    assert len(probe.stderr.strip().splitlines()) == 1 and probe.stderr.strip().endswith("(sqlite3.OperationalError) disk is full")
    shown = run_cli(["status"], cli_env(fake, database_url)).stdout
    assert "[SQL" not in shown and "Background" not in shown and "disk is full" in shown
