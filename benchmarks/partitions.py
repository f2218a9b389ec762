"""The first sync with the default walk (by days when they pay), the idle and straggler runs after it and
hydration, beside the serial walk and dlt, at several latencies, with and without a server rate limit
(the shape of a real account).

    .venv/bin/python benchmarks/partitions.py                   # defaults below: the whole matrix
    .venv/bin/python benchmarks/partitions.py --db sqlite --latency 0.1 --rate-limit 0   # one cell

For each database, server limit and latency, the fake (etl/tools/simulator.py, in this process) holds N
completed transcripts spread over `--days` UTC days, one of them `queued` `--depth` transcripts deep, and
answers each request after the latency, at most `--rate-limit` requests a second (0: none). One
subprocess each, each on a fresh database (names end in `--suffix`, so that concurrent runs of several
checkouts never share one):
- first sync: `aai-etl sync --quiet --no-hydrate` with the defaults (`partitions = "auto"`: by days when its
  first pages show the days are faster, as at 100 ms with this account); `by_days` says whether it did;
- idle: the same again, nothing new but the stuck transcript (target: at most 3 requests);
- straggler: the same after the stuck transcript completed (target: at most 5 requests, the row exact);
- serial: the first sync with `partitions = "serial"`; dlt: benchmarks/dlt_pipeline.py (its serial walk);
- hydration: `aai-etl hydrate --quiet` of `--hydrate-n` transcripts listed beforehand (not timed), with
  the default budget (2,000 requests a minute) or, under a server limit, `--limit-budget`.
Every run must store exactly N rows. Shown beside them: the serial-walk floor (pages x latency), the
rate-limit floor (requests / limit) and the budget floor (requests / budget). Target: at 100 ms, the
first sync in at most a quarter of dlt's time. The listing runs use `--budget` requests a minute
(default: run.py's UNPACED, the machinery's own speed); under a server limit, `--limit-budget`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env, hydrated_rows  # noqa: E402
from run import (  # noqa: E402
    AAI_ETL as AAI_ETL_PATH,
)
from run import (
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
from stragglers import stored_raw  # noqa: E402

AAI_ETL = str(AAI_ETL_PATH)
PAGE = 200
DEFAULT_BUDGET = 2000  # requests a minute: the setting's default
TARGET_DLT_SHARE = 0.25
TARGET_IDLE, TARGET_STRAGGLER = 3, 5
SYNC = [AAI_ETL, "sync", "--quiet", "--no-hydrate"]


def spread_fake(args: argparse.Namespace, n: int, limit: float) -> FakeAssemblyAI:
    fake = FakeAssemblyAI(api_key=API_KEY, seed=n, rate_limit=limit or None)
    fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=args.days + 1)
    fake.add(n, spread=timedelta(days=args.days))
    return fake


def writers(args: argparse.Namespace) -> dict[str, str]:
    """The writer connections of a walk by days on PostgreSQL, when asked for (compare 1 with the default)."""
    return {} if args.writers is None else {"AAI_ETL_PARTITION_WRITERS": str(args.writers)}


def listing(spawner: Spawner, args: argparse.Namespace, kind: str, latency: float, limit: float, workdir: Path) -> dict:
    budget = args.limit_budget if limit else args.budget
    row: dict = {"db": kind, "latency_s": latency, "rate_limit": limit or None, "budget_per_min": float(budget)}
    with spread_fake(args, args.n, limit) as fake:
        stuck = fake.listing()[args.depth]
        fake.set_status(stuck["id"], "queued")
        fake.latency = latency
        name = f"bench_part_{args.suffix}"
        for tool, extra, command in (
            ("first", {}, SYNC),
            ("serial", {"AAI_ETL_PARTITIONS": "serial"}, SYNC),
            ("dlt", {"RUNTIME__DLTHUB_TELEMETRY": "false"}, [str(DLT_PYTHON), str(BENCH / "dlt_pipeline.py")]),
        ):
            if tool in args.skip:
                continue
            url = fresh_database(kind, name, workdir)
            pipelines = tempfile.mkdtemp(prefix="dlt-pipelines-", dir=workdir)
            env = {**child_env(fake, url, str(budget)), **writers(args), **extra, "DLT_PIPELINES_DIR": pipelines}
            before = len(fake.requests)
            result = spawner.run(command, env, workdir, fake)
            rows = count_rows(url, "dlt" if tool == "dlt" else "aai-etl")
            if rows != args.n:
                raise RuntimeError(f"{tool} stored {rows} of {args.n} transcripts on {kind}")
            row[f"{tool}_s"], row[f"{tool}_requests"] = result["wall_s"], result["requests"]
            row[f"{tool}_cpu_s"] = result["cpu_s"]  # the process's own CPU: less at the mercy of the machine's load
            row[f"{tool}_429"] = sum(1 for r in fake.requests[before:] if r["status"] == 429)
            if tool == "first":
                row["by_days"] = any("created_on" in r["params"] for r in fake.requests[before:])
                idle = spawner.run(SYNC, env, workdir, fake)
                row["idle_s"], row["idle_requests"] = idle["wall_s"], idle["requests"]
                fake.set_status(stuck["id"], "completed")
                done = spawner.run(SYNC, env, workdir, fake)
                row["straggler_s"], row["straggler_requests"] = done["wall_s"], done["requests"]
                current = next(item for item in fake.listing() if item["id"] == stuck["id"])
                row["straggler_exact"] = stored_raw(url, stuck["id"]) == current
                fake.set_status(stuck["id"], "queued")  # as it was, for the serial walk and dlt
            drop_database(kind, name, workdir)
    pages = -(-args.n // PAGE)
    row["serial_floor_s"] = pages * latency
    if "first" not in args.skip:
        row["rate_floor_s"] = row["first_requests"] / limit if limit else None
        row["budget_floor_s"] = row["first_requests"] / (float(budget) / 60)
        if "dlt" not in args.skip:
            row["first_over_dlt"] = row["first_s"] / row["dlt_s"]
            row["met_quarter_of_dlt"] = row["first_over_dlt"] <= TARGET_DLT_SHARE
        row["met_idle"] = row["idle_requests"] <= TARGET_IDLE
        row["met_straggler"] = row["straggler_requests"] <= TARGET_STRAGGLER and row["straggler_exact"]
    return row


def hydration(spawner: Spawner, args: argparse.Namespace, kind: str, latency: float, limit: float, workdir: Path) -> dict:
    budget = float(args.limit_budget if limit else DEFAULT_BUDGET)
    name = f"bench_part_hydrate_{args.suffix}"
    with spread_fake(args, args.hydrate_n, limit) as fake:
        url = fresh_database(kind, name, workdir)
        env = child_env(fake, url, UNPACED)
        spawner.run(SYNC, env, workdir, fake)  # the listing, not timed
        fake.latency = latency
        before = len(fake.requests)
        result = spawner.run([AAI_ETL, "hydrate", "--quiet"], child_env(fake, url, str(budget)), workdir, fake)
        served = fake.requests[before:]
        hydrated = hydrated_rows(url)
        drop_database(kind, name, workdir)
    if hydrated != args.hydrate_n:
        raise RuntimeError(f"hydrate stored details of {hydrated} of {args.hydrate_n} transcripts on {kind}")
    return {
        "hydrate_s": result["wall_s"], "hydrate_requests": len(served),
        "hydrate_429": sum(1 for r in served if r["status"] == 429),
        "hydrate_per_s": args.hydrate_n / result["wall_s"], "hydrate_budget_per_min": budget,
        "hydrate_budget_floor_s": len(served) / (budget / 60),
        "hydrate_rate_floor_s": len(served) / limit if limit else None,
        "hydrate_latency_floor_s": latency,  # the pace is the budget's, not the latency's, up to ~1 s
    }


def cpu(row: dict, tool: str) -> str:
    return f", CPU {row[tool + '_cpu_s']:.1f} s" if f"{tool}_cpu_s" in row else ""


def table(rows: list[dict]) -> str:
    """The README's table of these rows (markdown)."""
    lines = [
        "| db | per request | server limit | first sync (requests) | serial walk | dlt | serial floor | rate floor |"
        " first / dlt (target <= 0.25) | idle run (<= 3) | straggler done (<= 5, exact) | hydration (budget floor) | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        limit = f"{r['rate_limit']:g}/s, budget {r['budget_per_min']:,.0f}/min" if r["rate_limit"] else "none"
        met = "met" if r.get("met_quarter_of_dlt") else "missed"
        hydrate = (
            f"{r['hydrate_per_s']:.1f}/s ({r['hydrate_requests'] / r['hydrate_budget_floor_s']:.1f}/s), {r['hydrate_429']} x 429"
            if "hydrate_s" in r else ""
        )
        rate_floor = f"{r['rate_floor_s']:.1f} s" if r.get("rate_floor_s") else "-"
        lines.append(
            f"| {r['db']} | {r['latency_s'] * 1000:g} ms | {limit} | {r['first_s']:.1f} s ({r['first_requests']}"
            f"{', by days' if r['by_days'] else ''}{cpu(r, 'first')}) | {r.get('serial_s', 0):.1f} s{cpu(r, 'serial')} |"
            f" {r.get('dlt_s', 0):.1f} s{cpu(r, 'dlt')} |"
            f" {r['serial_floor_s']:g} s | {rate_floor} | {r.get('first_over_dlt', 0):.2f}: {met} |"
            f" {r['idle_requests']} requests, {r['idle_s']:.1f} s | {r['straggler_requests']} requests,"
            f" {'exact' if r['straggler_exact'] else 'NOT exact'} | {hydrate} | {r['load_1min'][0]:g}-{r['load_1min'][1]:g} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--depth", type=int, default=16000, help="transcripts newer than the stuck one")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--rate-limit", type=float, nargs="+", default=[0.0, 80.0], help="requests a second; 0: none")
    parser.add_argument("--budget", default=UNPACED, help="aai-etl's requests_per_minute for listing runs, no server limit")
    parser.add_argument("--limit-budget", default="4000", help="requests_per_minute under a server limit (below it)")
    parser.add_argument("--writers", type=int, help="aai-etl's partition_writers (PostgreSQL); default: the setting's")
    parser.add_argument("--hydrate-n", type=int, default=600, help="transcripts hydrated per cell")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--skip", nargs="+", choices=["first", "serial", "dlt", "hydrate"], default=[])
    parser.add_argument("--suffix", default=f"{os.getpid()}_{int(time.time())}",
                        help="ends every throwaway database's name (default: pid and time: unique)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "partitions.json")
    parser.add_argument("--table", type=Path, help="print the README table of this results file, run nothing")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())["rows"]))
        return
    if "dlt" not in args.skip:
        ensure_dlt_venv()
    spawner = Spawner()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                for limit in args.rate_limit:
                    for latency in args.latency:
                        load = os.getloadavg()[0]
                        row = listing(spawner, args, kind, latency, limit, Path(tmp))
                        if "hydrate" not in args.skip:
                            row.update(hydration(spawner, args, kind, latency, limit, Path(tmp)))
                        row["load_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # before and after
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    finally:
        spawner.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "days": args.days, "depth": args.depth, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
