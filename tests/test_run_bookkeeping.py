"""A failed run's counters count only what it committed, not the page whose commit failed; PostgreSQL's
statistics stay fresh after a large hydration, as after a large listing."""

from __future__ import annotations

from conftest import cli_env, empty_database, run_cli, stored, sync, wait_until
from sqlalchemy import create_engine, select, text

from etl.store.schema import sync_runs

# The database fails the transaction of the run's second page: the counters' write is its last statement.
SQLITE_FAULT = """
CREATE TRIGGER fail_second_page BEFORE UPDATE ON sync_runs
WHEN NEW.pages = 2 AND NEW.outcome = 'running'
BEGIN SELECT RAISE(ABORT, 'simulated fault on the second page'); END
"""
POSTGRES_FAULT = [
    """
    CREATE FUNCTION fail_second_page() RETURNS trigger AS $$
    BEGIN
        IF NEW.pages = 2 AND NEW.outcome = 'running' THEN
            RAISE EXCEPTION 'simulated fault on the second page';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER fail_second_page BEFORE UPDATE ON sync_runs FOR EACH ROW EXECUTE FUNCTION fail_second_page()",
]


def test_a_failed_page_is_not_counted(database_url, fake):
    assert run_cli(["db", "upgrade"], cli_env(fake, database_url)).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for statement in POSTGRES_FAULT if conn.dialect.name == "postgresql" else [SQLITE_FAULT]:
            conn.execute(text(statement))
    fake.add(600)
    result = sync(fake, database_url)
    assert result.exit_code == 1
    assert "simulated fault on the second page" in result.stderr
    with engine.connect() as conn:
        (run,) = conn.execute(select(sync_runs)).all()
    engine.dispose()
    assert run.outcome == "failed"
    assert (run.pages, run.inserted) == (1, 200) == (1, len(stored(database_url)))


def test_postgresql_statistics_are_refreshed_after_a_large_hydration(tmp_path, fake):
    database_url = empty_database("postgresql", tmp_path)
    fake.add(1100)
    assert sync(fake, database_url).exit_code == 0
    engine = create_engine(database_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT now()")).scalar()
    result = run_cli(["hydrate", "--log-format", "json"], cli_env(fake, database_url))  # no listing: no insert
    assert result.exit_code == 0, result.output

    def analyzed_since() -> bool:
        with engine.connect() as conn:
            last = conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'transcripts'")
            ).scalar()
        return last is not None and last > before

    wait_until(analyzed_since)
    engine.dispose()


def test_a_run_whose_end_cannot_be_recorded_did_not_succeed(database_url, fake):
    """A database error on the run's last write (its outcome, warning and writers' counts) was logged at debug
    level, and the command printed its summary and exited 0. Here the database refuses only the write of the
    outcome `succeeded` (a trigger, standing in for a lock timeout or a full disk at that instant)."""
    from conftest import cli_env, run_cli, stored
    from sqlalchemy import create_engine, func, select, text

    from etl.store.schema import sync_runs

    fake.add(10)
    assert run_cli(["sync", "--no-hydrate"], cli_env(fake, database_url)).exit_code == 0
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if database_url.startswith("sqlite"):
            conn.execute(text(
                "CREATE TRIGGER refuse_success BEFORE UPDATE ON sync_runs WHEN NEW.outcome = 'succeeded' "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            ))
        else:
            conn.execute(text(
                "CREATE FUNCTION refuse_success() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.outcome = 'succeeded' THEN RAISE EXCEPTION 'database or disk is full' USING ERRCODE = '53100'; END IF; "
                "RETURN NEW; END $$; "
                "CREATE TRIGGER refuse_success BEFORE UPDATE ON sync_runs FOR EACH ROW EXECUTE FUNCTION refuse_success()"
            ))
    fake.add(5)
    result = run_cli(["sync", "--no-hydrate"], cli_env(fake, database_url))
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "aai-etl: error: database error: database or disk is full; everything committed so far is kept"
    )
    assert len(stored(database_url)) == 15  # the pages committed
    with engine.connect() as conn:
        last = conn.execute(select(sync_runs).order_by(sync_runs.c.id.desc()).limit(1)).mappings().one()
        assert conn.execute(select(func.count()).select_from(sync_runs)).scalar() == 2
    engine.dispose()
    assert (last["outcome"], last["error"]) == ("failed", "database error: database or disk is full")
