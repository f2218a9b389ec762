"""Idle-run and start-up benchmark: what a scheduled run with nothing to do costs,
and whether that grows with the table.

    .venv/bin/python benchmarks/idle.py --n 20000 300000 --db sqlite postgresql --repeat 7

Start-up: `aai-etl --help` and an idle `aai-etl sync` on a small SQLite database, each a fresh process:
wall and CPU seconds (median of --repeat), and the modules each imports (PYTHONPROFILEIMPORTTIME), with
the heavy optional ones named if they are among them; and the floor under both, the same interpreter
importing SQLAlchemy, requests and click (and psycopg, which a PostgreSQL run also needs) and nothing else.

Idle runs: for each N and database, a fake API (etl/tools/simulator.py, in this process, zero latency) holds N
transcripts (one in 30 `error`, the rest `completed`). The database is seeded directly, not by a sync (a
300,000-transcript sync and hydration would take minutes): `aai-etl db upgrade` (the measured executable's
schema), then the fake's listing written with etl.store.writes.upsert_page, the sync's own page write, 2,000
items a transaction; the high water mark at the newest; every transcript marked hydrated but 10 whose
detail fetch is failing and waits for a retry; 13,000 earlier runs in sync_runs (90 days of a run every
10 minutes); on PostgreSQL a VACUUM ANALYZE, as autovacuum would do after that many writes. Then one idle
`aai-etl sync --quiet` (hydration on, the default) as a warm-up, and --repeat more, each a fresh
process, each checked to make exactly one request (the `after_id` request) and write nothing new.
Reported: the median wall and CPU, and the load average around each measurement (the machine may be shared).

Databases: SQLite files in a temporary directory; PostgreSQL databases `bench_idle_<suffix>` on
BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards; --suffix
defaults to this process's id, so two runs at once never share one.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env  # noqa: E402
from run import AAI_ETL, API_KEY, BENCH, FakeAssemblyAI, Spawner, drop_database, fresh_database, interpreter_of  # noqa: E402
from sqlalchemy import insert, text, update  # noqa: E402

from etl.model.items import parse_item  # noqa: E402
from etl.model.position import Boundary  # noqa: E402
from etl.store.engine import make_engine  # noqa: E402
from etl.model.position import Cursor
from etl.store.positions import save_cursor
from etl.store.schema import sync_runs, transcripts  # noqa: E402
from etl.store.writes import upsert_page  # noqa: E402

ACCOUNT = "default"
SEED_BATCH = 2_000
FAILING = 10  # transcripts whose detail fetch failed and waits for a retry: the queue must skip them
HISTORY = 13_000  # earlier runs: 90 days of a run every 10 minutes
IDLE_MAX_S = 0.5
HEAVY = ("alembic", "tqdm", "pyarrow", "prometheus_client", "etl.tools.simulator", "etl.tools.demo", "sqlalchemy", "requests")


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def seed(fake: FakeAssemblyAI, n: int, url: str) -> None:
    """N transcripts stored as a finished backfill and hydration leave them (see the docstring)."""
    for _ in range(n // 30):
        fake.add(29)
        fake.add(1, status="error")
    fake.add(n % 30)
    listing = fake.listing()  # newest first
    now = datetime.now(timezone.utc)
    engine = make_engine(url)
    with engine.connect() as conn:
        for start in range(0, len(listing), SEED_BATCH):
            items = [parse_item(raw) for raw in listing[start:start + SEED_BATCH]]
            upsert_page(conn, ACCOUNT, items, now, all_new=True)
            conn.commit()
        newest = parse_item(listing[0])
        save_cursor(conn, ACCOUNT, Cursor(high_water=Boundary(newest.row["id"], newest.row["created"])), now)
        conn.execute(update(transcripts).values(hydrated_at=transcripts.c.changed_at, text="hello"))
        failing = [parse_item(raw).row["id"] for raw in listing[len(listing) // 2:len(listing) // 2 + FAILING]]
        conn.execute(
            update(transcripts).where(transcripts.c.id.in_(failing)).values(
                hydrated_at=None, text=None, hydrate_attempts=3, hydrate_after=now + timedelta(days=1), hydrate_error="HTTP 500"
            )
        )
        conn.execute(insert(sync_runs), [
            {"account": ACCOUNT, "started_at": now - timedelta(minutes=10 * i), "finished_at": now - timedelta(minutes=10 * i - 1),
             "outcome": "succeeded", "requests": 1, "pid": 1, "hostname": "bench"}
            for i in range(HISTORY, 0, -1)
        ])
        conn.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after so many writes
    engine.dispose()


def idle_runs(spawner: Spawner, aai_etl: str, kind: str, n: int, repeat: int, workdir: Path, suffix: str) -> dict:
    name = f"bench_idle_{suffix}"
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        url = fresh_database(kind, name, workdir)
        env = child_env(fake, url)
        try:
            spawner.run([aai_etl, "db", "upgrade"], env, workdir, fake)
            seed(fake, n, url)
            # The fake's N items stay in this process: out of the collector's sight, so that a full collection
            # while it answers does not bill its time to the run measured.
            gc.collect()
            gc.freeze()
            command = [aai_etl, "sync", "--quiet"]
            spawner.run(command, env, workdir, fake)  # warm-up: the page cache, SQLite's WAL
            load_before = load()
            runs = [spawner.run(command, env, workdir, fake) for _ in range(repeat)]
            load_after = load()
        finally:
            drop_database(kind, name, workdir)
    gc.unfreeze()
    for run in runs:
        if run["requests"] != 1:
            raise RuntimeError(f"an idle run on {kind} at {n:,} made {run['requests']} requests, not 1")
    return {
        "n": n, "db": kind, "runs": len(runs),
        "wall_s": statistics.median(run["wall_s"] for run in runs),
        "cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "wall_s_all": [round(run["wall_s"], 3) for run in runs],
        "load_before": load_before, "load_after": load_after,
    }


def start_up(spawner: Spawner, aai_etl: str, repeat: int, workdir: Path) -> list[dict]:
    """`aai-etl --help` and an idle sync of a small SQLite database: time and the modules imported."""
    with FakeAssemblyAI(api_key=API_KEY) as fake:
        fake.add(1000)
        url = f"sqlite:///{workdir / 'start.db'}"
        env = child_env(fake, url)
        spawner.run([aai_etl, "sync", "--quiet"], env, workdir, fake)
        results = []
        interpreter = interpreter_of(aai_etl)
        commands = (
            ("--help", [aai_etl, "--help"]),
            ("idle sync, 1,000 rows", [aai_etl, "sync", "--quiet"]),
            # The floor under any idle run of a tool built on these libraries: importing them and nothing else.
            ("import sqlalchemy, requests, click", [interpreter, "-c", "import sqlalchemy, requests, click"]),
            ("the same and psycopg", [interpreter, "-c", "import sqlalchemy, requests, click, psycopg"]),
        )
        for label, command in commands:
            spawner.run(command, env, workdir, fake)  # warm-up
            load_before = load()
            runs = [spawner.run(command, env, workdir, fake) for _ in range(repeat)]
            profile = subprocess.run(command, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, cwd=workdir, capture_output=True, text=True)
            modules = [line.split("|")[-1].strip() for line in profile.stderr.splitlines() if line.startswith("import time:")][1:]
            results.append({
                "command": label,
                "wall_s": statistics.median(run["wall_s"] for run in runs),
                "cpu_s": statistics.median(run["cpu_s"] for run in runs),
                "modules": len(modules),
                "heavy": [name for name in HEAVY if name in modules],
                "load_before": load_before, "load_after": load(),
            })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 300_000], help="transcripts stored")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=7, help="idle runs measured per case; the median is reported")
    parser.add_argument("--skip", nargs="*", choices=["start", "idle"], default=[], help="leave a part out")
    parser.add_argument("--suffix", default=str(os.getpid()), help="of the throwaway PostgreSQL database's name")
    parser.add_argument("--aai-etl", default=str(AAI_ETL), help="the aai-etl executable to measure")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "idle.json")
    args = parser.parse_args()

    start, idle = [], []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-idle-") as tmp:
            if "start" not in args.skip:
                print(f"start-up (load {load()}) ...", flush=True)
                start = start_up(spawner, args.aai_etl, args.repeat, Path(tmp))
            if "idle" not in args.skip:
                for kind in args.db:
                    for n in args.n:
                        print(f"idle run, {n:,} transcripts, {kind} (load {load()}) ...", flush=True)
                        idle.append(idle_runs(spawner, args.aai_etl, kind, n, args.repeat, Path(tmp), args.suffix))
    finally:
        spawner.close()

    if start:
        print(f"\n{'command':<36}  {'wall s':>7}  {'cpu s':>6}  {'modules':>7}  heavy modules imported   load average (1, 5, 15 min)")
        for r in start:
            print(f"{r['command']:<36}  {r['wall_s']:>7.3f}  {r['cpu_s']:>6.3f}  {r['modules']:>7}  "
                  f"{', '.join(r['heavy']) or '-':<23}  {r['load_before']} -> {r['load_after']}")
    if idle:
        print(f"\n{'N':>8}  {'db':<10}  {'idle wall s':>11}  {'cpu s':>6}  {'target':<9}  load average (1, 5, 15 min)")
        for r in idle:
            verdict = "met" if r["wall_s"] < IDLE_MAX_S else "MISSED"
            print(f"{r['n']:>8,}  {r['db']:<10}  {r['wall_s']:>11.3f}  {r['cpu_s']:>6.3f}  <{IDLE_MAX_S} {verdict:<5}  "
                  f"{r['load_before']} -> {r['load_after']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "aai_etl": args.aai_etl,
        "command": " ".join(sys.argv),
    }
    args.out.write_text(json.dumps({"meta": meta, "start": start, "idle": idle}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
