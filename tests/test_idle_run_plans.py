"""An idle run that does not grow with the table: every query an idle `aai-etl sync --metrics-file` makes of
the tables that grow (transcripts, sync_runs) is planned through an index, without statistics, with fresh
ones and with stale ones. Checked on a real database of each kind holding 20,000 transcripts and 5,000
earlier runs, with EXPLAIN QUERY PLAN (SQLite) and EXPLAIN (PostgreSQL) of each statement as the run sent it."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from conftest import API_KEY, cli_env, run_cli
from sqlalchemy import Engine, case, event, insert, text, update

from etl.model.items import parse_item
from etl.model.position import Boundary
from etl.store import migrate
from etl.store.engine import make_engine
from etl.model.position import Cursor
from etl.store.positions import save_cursor
from etl.store.schema import sync_runs, transcripts
from etl.store.writes import upsert_page
from etl.tools.simulator import FakeAssemblyAI

N = 20_000
RUNS = 5_000
FAILING = 10  # details failing and waiting for a retry: in the queue's index, not due
# The indexes an idle run may read each growing table by: its primary key (by id), or an index whose reads do
# not grow with the table: the partial indexes hold only the rows asked for; (hydrated_at, account), searched
# for hydrated_at IS NULL, only the transcripts without details; sync_runs' (account, outcome, finished_at)
# finds the runs still marked running, and the last success, without reading the account's history.
BOUNDED = {
    "transcripts": (
        "pk_transcripts", "sqlite_autoindex_transcripts_1", "ix_transcripts_pending", "ix_transcripts_hydration_queue",
        "ix_transcripts_hydrated_at_account",
    ),
    "sync_runs": ("pk_sync_runs", "INTEGER PRIMARY KEY", "ix_sync_runs_account_outcome_finished_at"),
}


@pytest.fixture
def idle_account(database_url):
    """A database as a finished backfill and hydration leave it, and the API that lists the same transcripts."""
    with FakeAssemblyAI(api_key=API_KEY) as fake:
        fake.add(N - N // 20)
        fake.add(N // 20, status="error")
        engine = make_engine(database_url)
        with engine.connect() as conn:
            migrate.ensure_schema(conn)
            if conn.dialect.name == "postgresql":
                # The statistics are the test's to set: autovacuum must not analyze behind its back.
                for table in BOUNDED:
                    conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
            _store(conn, fake.listing())
            conn.commit()
        yield engine, fake
        engine.dispose()


def _store(conn, listing: list[dict]) -> None:
    """The listing stored and hydrated (but FAILING), with the high water mark at its newest and RUNS earlier runs."""
    now = datetime.now(timezone.utc)
    for start in range(0, len(listing), 2000):
        upsert_page(conn, "default", [parse_item(raw) for raw in listing[start:start + 2000]], now)
    newest = parse_item(listing[0]).row
    save_cursor(conn, "default", Cursor(high_water=Boundary(newest["id"], newest["created"])), now)
    conn.execute(update(transcripts).values(hydrated_at=transcripts.c.changed_at))
    failing = [raw["id"] for raw in listing[N // 2:N // 2 + FAILING]]
    conn.execute(
        update(transcripts).where(transcripts.c.id.in_(failing))
        .values(hydrated_at=None, hydrate_attempts=2, hydrate_after=now + timedelta(days=1), hydrate_error="HTTP 500")
    )
    conn.execute(insert(sync_runs), [
        {"account": "default", "started_at": now - timedelta(minutes=10 * i), "finished_at": now - timedelta(minutes=10 * i - 1),
         "outcome": "succeeded"}
        for i in range(RUNS, 0, -1)
    ])


def _statistics(engine: Engine, kind: str, fake: FakeAssemblyAI) -> None:
    """None; fresh (ANALYZE now); stale: analyzed when the table held a tenth of its rows, as when it has grown
    since autovacuum's last look; or, on SQLite, statistics that claim every row `pending` or `awaiting
    details` (analyzed while they were, then made final and hydrated again)."""
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if kind == "none":
            assert not postgres or conn.execute(text("SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                                                     "WHERE relname = 'transcripts'")).one() == (None, None)
            assert postgres or not conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar()
            return
        claim = {"pending": {"status": "queued"}, "awaiting details": {"hydrated_at": None}}.get(kind)
        if kind == "stale":
            conn.execute(text("DELETE FROM sync_runs WHERE id > :keep"), {"keep": RUNS // 10})
            conn.execute(transcripts.delete().where(transcripts.c.id.not_in([raw["id"] for raw in fake.listing()[:N // 10]])))
        elif claim:
            conn.execute(update(transcripts).values(**claim))
        conn.commit()
        conn.execute(text("ANALYZE"))
        conn.commit()
        if kind == "stale":
            conn.execute(text("DELETE FROM sync_runs"))
            _store(conn, fake.listing())
        elif claim:
            final = case((transcripts.c.error.is_(None), "completed"), else_="error")  # as the fake lists them
            conn.execute(update(transcripts).values(status=final, hydrated_at=transcripts.c.changed_at))
            failing = [raw["id"] for raw in fake.listing()[N // 2:N // 2 + FAILING]]
            conn.execute(update(transcripts).where(transcripts.c.id.in_(failing)).values(hydrated_at=None))
        conn.commit()


def _idle_statements(database_url: str, fake: FakeAssemblyAI, tmp_path) -> list[tuple[str, object]]:
    """Every statement an idle sync with metrics sends, with its parameters."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters[0] if executemany else parameters))

    before = len(fake.requests)
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        result = run_cli(["sync", "--metrics-file", str(tmp_path / "aai_etl.prom")], cli_env(fake, database_url))
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    assert result.exit_code == 0, result.output
    assert len(fake.requests) - before == 1  # idle: the after_id request alone
    assert "0 new, 0 updated" in result.stdout
    return sent


def _reads_growing_table(statement: str) -> bool:
    return not statement.lstrip().upper().startswith("INSERT") and any(re.search(rf"\b{table}\b", statement) for table in BOUNDED)


def _unbounded(conn, statement: str, parameters) -> list[str]:
    """The plan's steps that read a growing table other than through one of its BOUNDED indexes."""
    if conn.dialect.name == "sqlite":
        steps = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters or ())]
        return [
            step for step in steps
            if (table := re.match(r"(?:SCAN|SEARCH) (\w+)", step)) and table[1] in BOUNDED
            and not any(re.search(rf"USING (COVERING )?(INDEX )?{index}\b", step) for index in BOUNDED[table[1]])
        ]
    [[plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters or ()).one()
    bad: list[str] = []

    def indexes(node: dict) -> set[str]:
        own = {node["Index Name"]} if "Index Name" in node else set()
        return own.union(*(indexes(child) for child in node.get("Plans", [])))

    def visit(node: dict) -> None:
        table = node.get("Relation Name")
        if table in BOUNDED and node["Node Type"] != "ModifyTable":  # the UPDATE itself: its scan is a child
            used = indexes(node) if node["Node Type"] == "Bitmap Heap Scan" else {node.get("Index Name")}
            if not used or not used <= set(BOUNDED[table]):
                bad.append(f"{node['Node Type']} on {table} using {sorted(filter(None, used)) or 'no index'}")
        for child in node.get("Plans", []):
            visit(child)

    visit(plan["Plan"])
    return bad


@pytest.mark.parametrize("statistics", ["none", "fresh", "stale"])
def test_every_idle_run_query_uses_an_index(idle_account, database_url, statistics, tmp_path):
    _check_idle_run(*idle_account, database_url, statistics, tmp_path)


@pytest.mark.parametrize("statistics", ["pending", "awaiting details"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_even_statistics_that_claim_every_row_is_asked_for(idle_account, database_url, statistics, tmp_path):
    """PostgreSQL given such statistics may read these sets by `created` until its next ANALYZE (the sync runs
    one after hydrating 1,000 details); SQLite keeps to the partial indexes."""
    _check_idle_run(*idle_account, database_url, statistics, tmp_path)


def _check_idle_run(engine: Engine, fake: FakeAssemblyAI, database_url: str, statistics: str, tmp_path) -> None:
    _statistics(engine, statistics, fake)
    statements = [(sql, params) for sql, params in _idle_statements(database_url, fake, tmp_path) if _reads_growing_table(sql)]
    # Pending transcripts, the hydration queue (backlog and chunk), the run record, the metrics' three figures.
    assert len(statements) >= 8, statements
    with engine.connect() as conn:
        problems = {sql: bad for sql, params in statements if (bad := _unbounded(conn, sql, params))}
    assert problems == {}, json.dumps(problems, indent=1)
