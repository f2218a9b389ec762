"""Straggler benchmark: what one transcript stuck pending deep in the listing costs.

    .venv/bin/python benchmarks/stragglers.py                   # defaults below
    .venv/bin/python benchmarks/stragglers.py --n 20000 --depth 16000 --latency 0 0.1 0.3 --db sqlite postgresql

The fake (etl/tools/simulator.py, in this process) holds N completed transcripts and one `queued` transcript
with `--depth` newer ones above it. `aai-etl sync --no-hydrate` stores them at zero latency (not timed).
Then, at each `--latency`, one subprocess each of:
- idle: `aai-etl sync --quiet --no-hydrate` with nothing new (target: at most 3 requests);
- finished: the same after the stuck transcript has completed (target: at most 5 requests, row exact).
Shown beside them: the walk down to the straggler that the run made before (its floor was the oldest
pending transcript): depth / 200 + 1 pages, and that many times the latency. Budget: run.py's UNPACED.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env  # noqa: E402
from run import AAI_ETL, API_KEY, BENCH, FakeAssemblyAI, Spawner, drop_database, fresh_database, write_results  # noqa: E402

PAGE = 200
TARGET_IDLE, TARGET_FINISHED = 3, 5


def stored_raw(url: str, transcript_id: str) -> dict:
    query = "SELECT raw FROM transcripts WHERE id = %s"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return json.loads(conn.execute(query.replace("%s", "?"), (transcript_id,)).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query, (transcript_id,)).fetchone()[0]


def measure(spawner: Spawner, kind: str, n: int, depth: int, latency: float, workdir: Path) -> dict:
    command = [AAI_ETL_EXE, "sync", "--quiet", "--no-hydrate"]
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n - depth - 1)
        [stuck] = fake.add(1, status="queued")
        fake.add(depth)
        url = fresh_database(kind, "bench_stragglers", workdir)
        env = child_env(fake, url)
        spawner.run(command, env, workdir, fake)  # the backfill, not timed
        fake.latency = latency
        idle = spawner.run(command, env, workdir, fake)
        fake.set_status(stuck["id"], "completed")
        finished = spawner.run(command, env, workdir, fake)
        exact = stored_raw(url, stuck["id"]) == next(item for item in fake.listing() if item["id"] == stuck["id"])
        drop_database(kind, "bench_stragglers", workdir)
    walk_pages = depth // PAGE + 1
    return {"db": kind, "n": n, "depth": depth, "latency_s": latency, "idle": idle, "finished": finished,
            "exact": exact, "walk_pages_before": walk_pages, "walk_floor_s_before": walk_pages * latency}


def main() -> None:
    global AAI_ETL_EXE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--depth", type=int, default=16000, help="transcripts newer than the stuck one")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "stragglers.json")
    parser.add_argument("--aai-etl", default=str(AAI_ETL), help="the aai-etl executable to measure")
    args = parser.parse_args()
    AAI_ETL_EXE = args.aai_etl

    results = []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                for latency in args.latency:
                    print(f"stragglers N={args.n} depth={args.depth} latency={latency}s {kind} ...", flush=True)
                    results.append(measure(spawner, kind, args.n, args.depth, latency, Path(tmp)))
    finally:
        spawner.close()

    print(f"\n{'db':<10}  {'latency':>7}  {'idle req':>8}  {'idle s':>6}  {'finished req':>12}  {'finished s':>10}  "
          f"{'exact':>5}  {'walk before: pages':>18}  {'its floor s':>11}  targets (<= {TARGET_IDLE}, <= {TARGET_FINISHED})")
    for r in results:
        met = r["idle"]["requests"] <= TARGET_IDLE and r["finished"]["requests"] <= TARGET_FINISHED and r["exact"]
        print(f"{r['db']:<10}  {r['latency_s'] * 1000:>5.0f}ms  {r['idle']['requests']:>8}  {r['idle']['wall_s']:>6.2f}  "
              f"{r['finished']['requests']:>12}  {r['finished']['wall_s']:>10.2f}  {str(r['exact']):>5}  "
              f"{r['walk_pages_before']:>18}  {r['walk_floor_s_before']:>11.1f}  {'met' if met else 'MISSED'}")

    write_results(args.out, results, args.aai_etl)


AAI_ETL_EXE = str(AAI_ETL)

if __name__ == "__main__":
    main()
