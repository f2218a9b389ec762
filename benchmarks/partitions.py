"""First sync by day partitions (issue 9, part 3) beside the serial walk and dlt, and the idle run after it;
on PostgreSQL, with each number of writer connections asked for (issue 13, parallel writers).

    .venv/bin/python benchmarks/partitions.py                   # defaults below
    .venv/bin/python benchmarks/partitions.py --n 20000 --days 60 --latency 0 0.1 0.3 --rate-limit 0 80 --db sqlite
    .venv/bin/python benchmarks/partitions.py --db postgresql --latency 0 0.1 --writers 1 4 --tools by_days --repeat 3

The fake (etl/simulator.py, in this process) holds N completed transcripts spread over `--days` UTC days,
answering each request after `--latency` seconds, with a server rate limit of `--rate-limit` requests a
second (0: none). At each latency and limit, one subprocess each, on a fresh database:
- aai-etl serial: `aai-etl sync --quiet --no-hydrate` with `partition_days = 0` (the walk);
- aai-etl by days: the same with `partition_days = --partition-days`, on PostgreSQL once for each
  `--writers` count (`partition_writers`; SQLite has one writer, so it runs once);
- idle: the by-days command again, nothing new;
- dlt: benchmarks/dlt_pipeline.py (the serial walk through dlt's rest_api source).
`--tools` picks some of serial, by_days, dlt. `--repeat K` runs them all K times in turn and keeps
each one's median.
Every run must store exactly N rows. Shown beside them: the serial-walk floor (pages x latency), the
rate-limit floor (requests / limit), and the machine's 1-minute load average when the row was
measured (the figures are only comparable on an idle machine). Target: at 100 ms, the by-days first sync in at most a quarter of
dlt's time. aai-etl runs with `--budget` requests a minute (default: run.py's UNPACED).
Throwaway PostgreSQL databases are named bench_part_<tool><--db-suffix> (default: _<pid>), so that
runs on a shared server never drop each other's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env  # noqa: E402
from run import (  # noqa: E402
    AAI_ETL as AAI_ETL_PATH,
    API_KEY,
    BENCH,
    DLT_PYTHON,
    UNPACED,
    FakeAssemblyAI,
    Spawner,
    count_rows,
    drop_database,
    ensure_dlt_venv,
    fresh_database,
)


AAI_ETL = str(AAI_ETL_PATH)
PAGE = 200
TARGET_DLT_SHARE = 0.25


def measure(spawner: Spawner, args: argparse.Namespace, kind: str, latency: float, limit: float, workdir: Path) -> dict:
    with FakeAssemblyAI(api_key=API_KEY, seed=args.n, rate_limit=limit or None) as fake:
        fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=args.days + 1)
        fake.add(args.n, spread=timedelta(days=args.days))
        fake.latency = latency
        row: dict = {"db": kind, "latency_s": latency, "rate_limit": limit or None}
        sync = [AAI_ETL, "sync", "--quiet", "--no-hydrate"]
        runs: list[tuple[str, dict[str, str], list[str]]] = []
        if "serial" in args.tools:
            runs.append(("serial", {"AAI_ETL_PARTITION_DAYS": "0"}, sync))
        if "by_days" in args.tools:
            for writers in args.writers if kind == "postgresql" else [1]:
                extra = {"AAI_ETL_PARTITION_DAYS": str(args.partition_days), "AAI_ETL_PARTITION_WRITERS": str(writers)}
                runs.append((f"by_days_w{writers}", extra, sync))
        if "dlt" in args.tools:
            runs.append(("dlt", {"RUNTIME__DLTHUB_TELEMETRY": "false"}, [str(DLT_PYTHON), str(BENCH / "dlt_pipeline.py")]))
        walls: dict[str, list[float]] = {tool: [] for tool, _, _ in runs}
        idles: dict[str, list[float]] = {tool: [] for tool, _, _ in runs}
        for _ in range(args.repeat):  # the tools in turn, so that a change in the machine's load hits each alike
            for tool, extra, command in runs:
                name = f"bench_part_{tool}{args.db_suffix}"
                url = fresh_database(kind, name, workdir)
                pipelines = tempfile.mkdtemp(prefix="dlt-pipelines-", dir=workdir)
                env = {**child_env(fake, url, args.budget), **extra, "DLT_PIPELINES_DIR": pipelines}
                result = spawner.run(command, env, workdir, fake)
                rows = count_rows(url, "dlt" if tool == "dlt" else "aai-etl")
                if rows != args.n:
                    raise RuntimeError(f"{tool} stored {rows} of {args.n} transcripts on {kind}")
                walls[tool].append(result["wall_s"])
                row[f"{tool}_requests"] = result["requests"]
                if tool.startswith("by_days"):
                    idles[tool].append(spawner.run(command, env, workdir, fake)["wall_s"])
                drop_database(kind, name, workdir)
        for tool in walls:
            row[f"{tool}_s"] = round(statistics.median(walls[tool]), 2)
            if idles[tool]:
                row[f"{tool}_idle_s"] = round(statistics.median(idles[tool]), 2)
        row["serial_floor_s"] = -(-args.n // PAGE) * latency
        by_days = [key for key in row if key.startswith("by_days_w") and key.endswith("_s") and "idle" not in key]
        if by_days and limit:
            row["rate_floor_s"] = row[by_days[-1].removesuffix("_s") + "_requests"] / limit
        if by_days and "dlt_s" in row:
            row["by_days_over_dlt"] = row[by_days[-1]] / row["dlt_s"]
            row["met"] = row["by_days_over_dlt"] <= TARGET_DLT_SHARE
        row["load_1m"] = round(os.getloadavg()[0], 2)
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--rate-limit", type=float, nargs="+", default=[0.0], help="requests a second; 0: none")
    parser.add_argument("--partition-days", type=int, default=32)
    parser.add_argument("--budget", default=UNPACED, help="aai-etl's requests_per_minute")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4], help="partition_writers to measure (PostgreSQL)")
    parser.add_argument("--tools", nargs="+", choices=["serial", "by_days", "dlt"], default=["serial", "by_days", "dlt"])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median is kept")
    parser.add_argument("--db-suffix", default=f"_{os.getpid()}", help="appended to the throwaway databases' names")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "partitions.json")
    args = parser.parse_args()
    if "dlt" in args.tools:
        ensure_dlt_venv()
    spawner = Spawner()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                for limit in args.rate_limit:
                    for latency in args.latency:
                        row = measure(spawner, args, kind, latency, limit, Path(tmp))
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    finally:
        spawner.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "days": args.days, "budget": args.budget, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
