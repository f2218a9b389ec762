"""On PostgreSQL writers commit at once: none queues on another's row lock. The change feed skips no write
that was in flight during an export, and a run's counters still count only what committed."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone

from conftest import API_KEY, assert_table_equals_api, cli_env, empty_database, run_cli, spawn, stored, summary_json, sync, wait_until
from sqlalchemy import create_engine, select, text
from test_export import export, rows_and_watermark

from etl.model.items import parse_item
from etl.store.schema import sync_partitions, sync_run_writers, sync_runs
from etl.store.writes import upsert_page
from etl.tools.simulator import FakeAssemblyAI


def test_writers_commit_at_once_and_an_export_meanwhile_skips_the_held_write(tmp_path, fake):
    url = empty_database("postgresql", tmp_path)
    fake.add(3, status="processing")
    assert sync(fake, url).exit_code == 0
    _, first = rows_and_watermark(export(fake, url))
    held_item, other_item = (parse_item({**raw, "status": "completed"}) for raw in fake.listing()[:2])
    now = datetime.now(timezone.utc)
    engine = create_engine(url)
    with engine.connect() as held, engine.connect() as other:
        upsert_page(held, "default", [held_item], now)  # its change_seq taken, its write not committed
        # The old counter's row lock made this wait for `held` to commit; fail rather than wait.
        other.execute(text("SET lock_timeout = '10s'"))
        upsert_page(other, "default", [other_item], now)
        other.commit()
        held_seq = held.execute(text("SELECT change_seq FROM transcripts WHERE id = :id"), {"id": held_item.id}).scalar()
        other_seq = stored(url)[other_item.id]["change_seq"]
        assert other_seq > held_seq > first  # the later number committed first

        during, watermark = rows_and_watermark(export(fake, url, "--since", str(first)))
        assert (during, watermark) == ([], first)  # below the write still in flight, so below `other` too
        held.commit()
    engine.dispose()
    after, last = rows_and_watermark(export(fake, url, "--since", str(watermark)))
    assert [(row["id"], row["change_seq"], row["status"]) for row in after] == [
        (held_item.id, held_seq, "completed"), (other_item.id, other_seq, "completed"),
    ]
    assert last == other_seq


def test_a_walk_by_days_stores_every_page_while_the_runs_row_is_locked_and_counts_them_after_a_kill(tmp_path):
    url = empty_database("postgresql", tmp_path)
    with FakeAssemblyAI(api_key=API_KEY, latency=0.005) as fake:
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=7)
        fake.add(2000, spread=timedelta(days=6))
        env = cli_env(fake, url, AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="8", AAI_ETL_PARTITION_WRITERS="3")
        assert run_cli(["db", "upgrade"], env).exit_code == 0
        engine = create_engine(url)
        with engine.connect() as gate, engine.connect() as runs_row:
            # The walk waits to begin (its days are not inserted yet) until the run's row is locked as a
            # page's counter update would lock it.
            gate.execute(text("LOCK TABLE sync_partitions IN EXCLUSIVE MODE"))
            process = spawn(["sync", "--no-hydrate"], env)
            wait_until(lambda: _running_runs(engine) == 1)
            runs_row.execute(text("SELECT id FROM sync_runs WHERE outcome = 'running' FOR NO KEY UPDATE"))
            gate.rollback()

            def all_days_done() -> bool:
                with engine.connect() as conn:
                    done = conn.execute(select(sync_partitions.c.done)).scalars().all()
                return bool(done) and all(done)

            wait_until(all_days_done, timeout=60)
            assert len(stored(url)) == 2000  # every page committed, none waiting on the run's row
            process.send_signal(signal.SIGKILL)
            process.wait()
            runs_row.rollback()
        # `status` counts what the dead run's writers committed, before any run has folded it in.
        (run,) = json.loads(run_cli(["status", "--json"], env).stdout)["accounts"][0]["last_runs"]
        assert (run["outcome"], run["inserted"], run["pages"]) == ("running", 2000, _pages(engine))

        result = sync(fake, url, "--log-format", "json", AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="8", AAI_ETL_PARTITION_WRITERS="3")
        assert result.exit_code == 0, result.output
        assert summary_json(result)["inserted"] == 0
        assert_table_equals_api(url, fake)
        with engine.connect() as conn:
            abandoned = conn.execute(select(sync_runs).order_by(sync_runs.c.id)).first()
            leftover = conn.execute(select(sync_run_writers)).all()
        engine.dispose()
        assert (abandoned.outcome, abandoned.inserted) == ("abandoned", 2000)  # exactly what committed
        assert leftover == []


def test_a_walk_by_days_with_a_pool_counts_exactly_and_leaves_no_writer_rows(database_url):
    with FakeAssemblyAI(api_key=API_KEY) as fake:
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=7)
        fake.add(1500, spread=timedelta(days=6))
        result = sync(fake, database_url, "--log-format", "json", AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="8", AAI_ETL_PARTITION_WRITERS="4")
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake)
        engine = create_engine(database_url)
        with engine.connect() as conn:
            (run,) = conn.execute(select(sync_runs)).all()
            leftover = conn.execute(select(sync_run_writers)).all()
        engine.dispose()
        summary = summary_json(result)
        assert (run.outcome, run.inserted, run.pages, run.requests) == ("succeeded", 1500, summary["pages"], summary["requests"])
        assert summary["inserted"] == 1500 and leftover == []


def _running_runs(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(sync_runs.c.id).where(sync_runs.c.outcome == "running")).all())


def _pages(engine) -> int:
    """The pages the writer connections committed, by their own counters."""
    with engine.connect() as conn:
        return sum(conn.execute(select(sync_run_writers.c.pages)).scalars())


def test_sigterm_during_a_walk_by_days_with_a_pool_counts_exactly_what_committed(database_url):
    with FakeAssemblyAI(api_key=API_KEY, latency=0.005) as fake:
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=7)
        fake.add(2000, spread=timedelta(days=6))
        env = cli_env(fake, database_url, AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="4", AAI_ETL_PARTITION_WRITERS="4")
        release = fake.hold(12)
        process = spawn(["sync", "--no-hydrate"], env)
        assert fake.held.wait(120), process.communicate()
        process.send_signal(signal.SIGTERM)
        release.set()
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        engine = create_engine(database_url)
        with engine.connect() as conn:
            (run,) = conn.execute(select(sync_runs)).all()
            leftover = conn.execute(select(sync_run_writers)).all()
        engine.dispose()
        kept = len(stored(database_url))
        assert kept < 2000  # stopped half way
        assert (run.outcome, run.inserted, leftover) == ("failed", kept, [])
        result = sync(fake, database_url, "--log-format", "json", AAI_ETL_PARTITIONS="days", AAI_ETL_PARTITION_DAYS="4", AAI_ETL_PARTITION_WRITERS="4")
        assert result.exit_code == 0, result.output
        assert summary_json(result)["inserted"] == 2000 - kept
        assert_table_equals_api(database_url, fake)
