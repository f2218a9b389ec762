"""Does `partitions = "auto"` pick the faster walk, at every latency? The first sync with auto, serial and by
days, and dlt, side by side against one fake, at several latencies, account shapes and databases.

    .venv/bin/python benchmarks/walk_choice.py --out benchmarks/results/walk_choice.jsonl   # the whole matrix
    .venv/bin/python benchmarks/walk_choice.py --db sqlite --latency 0.1 --shape 60          # one cell
    .venv/bin/python benchmarks/walk_choice.py --profile                                     # listing threads

For each database and account shape, the fake (etl/tools/simulator.py, in this process) holds `--n`
completed transcripts spread over the shape's UTC days (60: a steady account, about 1.7 pages a day; 2: a
burst, about 50 pages a day). For each latency it answers every request after that many seconds, and each
mode runs one fresh first sync, `aai-etl sync --quiet --no-hydrate`, on its own fresh database:
- auto, serial, days: AAI_ETL_PARTITIONS set to each, every other setting the default, the request budget
  included (`requests_per_minute`, 2,000 a minute), so the figures are what users get;
- dlt: benchmarks/dlt_pipeline.py, its serial walk, which has no budget.
Every run must store exactly `--n` rows, a serial walk must never list by day and a walk by days must,
or the script stops. Recorded per run: wall and CPU seconds, the requests the fake answered, and whether
the walk listed by day (a request with `created_on`); for auto also how many pages it read serially first.
With `--repeat K` each mode runs K times, the modes in a rotated order each time, and the tables show
the median wall.

Targets, per cell: auto within 10% of the faster of serial and days; at 0 ms, auto in at most half of
dlt's time; at 100 ms, auto in at most a quarter of dlt's time and at most 1.3x its budget floor (its
requests over the budget's rate).

`--profile` measures the CPU of a walk by days' listing threads alone (no database): 32 days at once (the
`partition_days` default) against the number the budget keeps in flight (rate x latency, and one more),
at 0 and 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env  # noqa: E402
from run import AAI_ETL, API_KEY, BENCH, DLT_PYTHON, FakeAssemblyAI, Spawner, count_rows, drop_database  # noqa: E402
from run import ensure_dlt_venv, fresh_database  # noqa: E402

from etl.api.client import ApiClient  # noqa: E402
from etl.config import Settings  # noqa: E402
from etl.walk.days import days as days_of  # noqa: E402
from etl.walk.days import walk_days  # noqa: E402
from etl.walk.planner import days_in_flight  # noqa: E402

MODES = ("auto", "serial", "days", "dlt")
BUDGET = Settings().requests_per_minute  # the setting's default: the pace users get (2,000 a minute)
WITHIN_FASTER = 1.10  # auto / min(serial, days)
DLT_SHARE = {0.0: 0.5, 0.1: 0.25}  # latency -> the most of dlt's time auto may take
FLOOR_SHARE = {0.1: 1.3}  # latency -> the most of its budget floor auto may take
PROFILE_THREADS = 32  # partition_days' default
SYNC = [str(AAI_ETL), "sync", "--quiet", "--no-hydrate"]


def shaped_fake(n: int, days: int) -> FakeAssemblyAI:
    """A fake holding n completed transcripts spread over `days` UTC days, the newest about a day old."""
    fake = FakeAssemblyAI(api_key=API_KEY, seed=n)
    fake.clock = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days + 1)
    fake.add(n, spread=timedelta(days=days))
    return fake


def one_run(spawner: Spawner, fake: FakeAssemblyAI, kind: str, mode: str, extra: dict[str, str],
            args: argparse.Namespace, workdir: Path) -> dict:
    """One first sync (or dlt) on a fresh database; raises unless it stored exactly n rows."""
    url = fresh_database(kind, args.db_name, workdir)
    pipelines = tempfile.mkdtemp(prefix="dlt-pipelines-", dir=workdir)
    env = {**child_env(fake, url, str(args.budget)), **extra, "DLT_PIPELINES_DIR": pipelines,
           "RUNTIME__DLTHUB_TELEMETRY": "false"}
    command = [str(DLT_PYTHON), str(BENCH / "dlt_pipeline.py")] if mode == "dlt" else SYNC
    load = os.getloadavg()[0]
    before = len(fake.requests)
    result = spawner.run(command, env, workdir, fake)
    served = fake.requests[before:]
    rows = count_rows(url, "dlt" if mode == "dlt" else "aai-etl")
    drop_database(kind, args.db_name, workdir)
    if rows != args.n:
        raise RuntimeError(f"{mode} stored {rows} of {args.n} transcripts on {kind} at {fake.latency:g} s")
    by_day = [i for i, r in enumerate(served) if "created_on" in r["params"]]
    return {
        "wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "peak_rss_mb": result["peak_rss_mb"],
        "requests": result["requests"], "day_requests": len(by_day), "by_days": bool(by_day),
        # The pages a walk read serially before it went on by days (auto's switch), or all of them.
        "serial_pages": by_day[0] if by_day else len(served),
        "status_429": sum(1 for r in served if r["status"] == 429), "rows": rows,
        "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def matrix(spawner: Spawner, args: argparse.Namespace, workdir: Path, out) -> list[dict]:
    runs = []
    for kind in args.db:
        for days in args.shape:
            with shaped_fake(args.n, days) as fake:
                for latency in args.latency:
                    fake.latency = latency
                    for repeat in range(args.repeat):
                        shift = repeat % len(args.modes)  # each mode in turn runs first
                        for mode in (*args.modes[shift:], *args.modes[:shift]):
                            extra = {} if mode == "dlt" else {"AAI_ETL_PARTITIONS": mode}
                            run = {"db": kind, "n": args.n, "shape_days": days, "latency_s": latency, "mode": mode,
                                   "repeat": repeat, "budget_per_min": args.budget,
                                   **one_run(spawner, fake, kind, mode, extra, args, workdir)}
                            if mode == "serial" and run["by_days"] or mode == "days" and not run["by_days"]:
                                raise RuntimeError(f"partitions = {mode} walked {'by days' if run['by_days'] else 'serially'}")
                            print(json.dumps(run), file=out, flush=True)
                            print(f"{kind} {days}d {latency * 1000:g} ms {mode:<6} {run['wall_s']:6.2f} s "
                                  f"{run['requests']:>4} requests{' by days' if run['by_days'] else ''}", flush=True)
                            runs.append(run)
    return runs


def profile(spawner: Spawner, args: argparse.Namespace, workdir: Path, out) -> list[dict]:
    """The listing threads of a walk by days, alone: every day of the window fetched in this process with
    walk_days at PROFILE_THREADS days at once against the number the budget keeps in flight at that latency
    (what a walk uses), storing nothing. The CPU is this process's: the fake's serving, the same
    requests either way, is in both."""
    runs = []
    for days in args.shape:
        with shaped_fake(args.n, days) as fake:
            for latency in args.latency:
                fake.latency = latency
                allowed = days_in_flight(args.budget / 60, latency, PROFILE_THREADS)
                for repeat in range(args.repeat):
                    for threads in (PROFILE_THREADS, allowed)[:: 1 if repeat % 2 == 0 else -1]:
                        run = {"profile": True, "n": args.n, "shape_days": days, "latency_s": latency,
                               "threads": threads, "repeat": repeat, "budget_per_min": args.budget,
                               **walk_all_days(fake, threads, args)}
                        print(json.dumps(run), file=out, flush=True)
                        print(f"{days}d {latency * 1000:g} ms {threads:>2} days at once {run['wall_s']:6.2f} s "
                              f"CPU {run['cpu_s']:.2f} s", flush=True)
                        runs.append(run)
    return runs


def walk_all_days(fake: FakeAssemblyAI, threads: int, args: argparse.Namespace) -> dict:
    now = datetime.now(timezone.utc)
    with ApiClient(fake.base_url, API_KEY, requests_per_minute=args.budget) as client:
        positions: dict = {day: None for day in days_of(now)}
        wall, cpu = time.perf_counter(), time.process_time()
        listed = sum(len(page.items) for batch in walk_days(client, positions, at_once=lambda: threads, now=now) for page in batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if listed != args.n:
            raise RuntimeError(f"the days listed {listed} of {args.n} transcripts")
        return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "requests": client.requests_made}


# -- tables ----------------------------------------------------------------------------------------

def median_of(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]


def verdict(ratio: float, most: float) -> str:
    return f"{ratio:.2f} (<= {most:g}): {'met' if ratio <= most else 'MISSED'}"


def choice(runs: list[dict]) -> str:
    went = [run for run in runs if run["by_days"]]
    if not went:
        return "serial"
    pages = sorted({run["serial_pages"] for run in went})
    named = f"days after {'/'.join(map(str, pages))} pages"
    return named if len(went) == len(runs) else f"{named} ({len(went)} of {len(runs)})"


def tables(runs: list[dict]) -> str:
    """A markdown table per database: one row per latency and shape, the median run of each mode."""
    out = []
    for kind in dict.fromkeys(run["db"] for run in runs):
        out += [f"\n### {kind}\n",
                "| latency | shape | auto s | serial s | days s | dlt s | auto's choice | requests auto / serial / days"
                " | budget floor s | auto / faster walk | auto / dlt | auto / budget floor |",
                "|---:|---|---:|---:|---:|---:|---|---:|---:|---|---|---|"]
        cells = dict.fromkeys((run["latency_s"], run["shape_days"], run["n"]) for run in runs if run["db"] == kind)
        for latency, days, n in sorted(cells, key=lambda cell: cell[0]):  # shapes in the order they ran
            by_mode = {mode: [r for r in runs if (r["db"], r["latency_s"], r["shape_days"], r["mode"]) == (kind, latency, days, mode)]
                       for mode in MODES}
            med = {mode: median_of(found) for mode, found in by_mode.items() if found}
            wall = {mode: f"{run['wall_s']:.2f}" for mode, run in med.items()}
            auto = med.get("auto")
            floor = auto["requests"] / (auto["budget_per_min"] / 60) if auto else None
            faster = min((m for m in ("serial", "days") if m in med), key=lambda m: med[m]["wall_s"], default=None)
            vs_faster = vs_dlt = vs_floor = "-"
            if auto and faster:
                vs_faster = f"{verdict(auto['wall_s'] / med[faster]['wall_s'], WITHIN_FASTER)} ({faster})"
            if auto and "dlt" in med:
                ratio = auto["wall_s"] / med["dlt"]["wall_s"]
                vs_dlt = verdict(ratio, DLT_SHARE[latency]) if latency in DLT_SHARE else f"{ratio:.2f}"
            if auto and floor:
                ratio = auto["wall_s"] / floor
                vs_floor = verdict(ratio, FLOOR_SHARE[latency]) if latency in FLOOR_SHARE else f"{ratio:.2f}"
            requests = " / ".join(str(med[m]["requests"]) if m in med else "-" for m in ("auto", "serial", "days"))
            out.append(
                f"| {latency * 1000:g} ms | {n:,} over {days} days | {wall.get('auto', '-')} | {wall.get('serial', '-')} |"
                f" {wall.get('days', '-')} | {wall.get('dlt', '-')} | {choice(by_mode['auto']) if auto else '-'} |"
                f" {requests} | {f'{floor:.1f}' if floor else '-'} | {vs_faster} | {vs_dlt} | {vs_floor} |"
            )
    return "\n".join(out)


def profile_table(runs: list[dict]) -> str:
    out = ["\n### walk by days: listing threads, nothing stored\n",
           "| latency | shape | days at once | wall s | CPU s | requests |", "|---:|---|---:|---:|---:|---:|"]
    cells = dict.fromkeys((run["latency_s"], run["shape_days"], run["n"], run["threads"]) for run in runs)
    for latency, days, n, threads in sorted(cells, key=lambda cell: (cell[0], -cell[3])):
        found = [r for r in runs if (r["latency_s"], r["shape_days"], r["threads"]) == (latency, days, threads)]
        med = median_of(found)
        out.append(f"| {latency * 1000:g} ms | {n:,} over {days} days | {threads} | {med['wall_s']:.2f} |"
                   f" {statistics.median(r['cpu_s'] for r in found):.2f} | {med['requests']} |")
    return "\n".join(out)


def report(runs: list[dict]) -> str:
    listing = [run for run in runs if not run.get("profile")]
    threads = [run for run in runs if run.get("profile")]
    return (tables(listing) if listing else "") + (profile_table(threads) if threads else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="transcripts in the fake")
    parser.add_argument("--shape", type=int, nargs="+", default=[60, 2], help="UTC days the transcripts span")
    parser.add_argument("--latency", type=float, nargs="+", help="seconds per request (default 0 0.02 0.05 0.1 0.3; "
                        "with --profile, 0 0.1)")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; the tables show the median wall")
    parser.add_argument("--budget", type=float, default=BUDGET,
                        help="aai-etl's requests_per_minute (default: the setting's default)")
    parser.add_argument("--profile", action="store_true", help="32 listing threads against rate x latency, no database")
    parser.add_argument("--db-name", default=f"bench_walk_{os.getpid()}_{int(time.time())}",
                        help="the throwaway database's name (default: pid and time: unique)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "walk_choice.jsonl", help="raw runs, JSON lines")
    parser.add_argument("--table", type=Path, help="print the tables of this results file, run nothing")
    args = parser.parse_args()
    if args.table:
        print(report([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return
    args.latency = args.latency or ([0.0, 0.1] if args.profile else [0.0, 0.02, 0.05, 0.1, 0.3])
    if "dlt" in args.modes and not args.profile:
        ensure_dlt_venv()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp, args.out.open("w") as out:
            runs = (profile if args.profile else matrix)(spawner, args, Path(tmp), out)
    finally:
        spawner.close()
    print(f"\nbudget {args.budget:,.0f} requests a minute ({args.budget / 60:.1f}/s); raw runs in {args.out}")
    print(report(runs))


if __name__ == "__main__":
    main()
