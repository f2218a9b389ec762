"""Hydration benchmark: how fast `aai-etl hydrate` fetches transcript details, and whether the listing pays for it.

    .venv/bin/python benchmarks/hydrate.py                      # both parts, defaults below
    .venv/bin/python benchmarks/hydrate.py --db sqlite postgresql --n 2000 --listing-n 20000 --repeat 3

1. Throughput. The fake API (etl/tools/simulator.py, in this process) answers every request after `--latency`
   seconds (50 ms), and holds N completed transcripts. `aai-etl sync --no-hydrate` stores the list (not
   timed); then `aai-etl hydrate --quiet`, default settings (at most 64 fetches in flight), runs as a
   timed subprocess on that database. Reported: transcripts/s (N / wall, start-up included), requests,
   CPU, peak RSS. With 64 in flight and 50 ms per request the ceiling is 1,280 requests/s.
2. Listing cost of hydration. Zero latency, `--listing-n` transcripts, fresh database each run:
   `aai-etl sync --quiet --no-hydrate` against `aai-etl sync --quiet` (hydration on). For both, the
   listing phase is the time from the child's start until the fake logged its last `/v2/transcript` list
   request (the fake logs a request just before it sends the answer, so the storing of the last page is
   not included, in either mode). The `--no-hydrate` run's whole wall time is shown too.

3. The request budget. `--budget-latency` (300 ms) per request, a server rate limit of
   `--server-limit` requests a second (80), `--budget-n` (2,400) completed transcripts: `aai-etl hydrate`
   with AAI_ETL_REQUESTS_PER_MINUTE=3600 and default settings otherwise. Reported: transcripts/s against
   the budget's rate (target: at least 85%, 51/s) and the share of requests answered 429 (target: under
   1%); then the same with a budget over the server's limit (6,000 a minute), to show the 429s slowing it.

Parts 1 and 2 run with an unreachable budget (run.py's UNPACED): they measure the machinery.
Children run through benchmarks/spawner.py, as in run.py (its docstring says why); results go to
benchmarks/results/hydrate.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import AAI_ETL, API_KEY, BENCH, UNPACED, FakeAssemblyAI, Spawner, drop_database, fresh_database  # noqa: E402

LIST_PATH = "/v2/transcript"
TARGET_PER_S = 120.0
WORKERS = 64  # hydrate_workers' default: the most fetches in flight
BUDGET_SHARE, MAX_429_SHARE = 0.85, 0.01


def child_env(fake: FakeAssemblyAI, url: str, budget: str = UNPACED) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AAI_ETL_", "ASSEMBLYAI_"))},
        "ASSEMBLYAI_API_KEY": API_KEY,
        "ASSEMBLYAI_BASE_URL": fake.base_url,
        "AAI_ETL_DATABASE_URL": url,
        "AAI_ETL_REQUESTS_PER_MINUTE": budget,
    }


def hydrated_rows(url: str) -> int:
    return rows_where(url, "hydrated_at IS NOT NULL")


def rows_where(url: str, condition: str) -> int:
    query = f"SELECT count(*) FROM transcripts WHERE {condition}"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(query).fetchone()[0]
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def stamp_requests(fake: FakeAssemblyAI) -> list[tuple[float, str, int]]:
    """Wrap the fake's request log: (time.monotonic(), path, status) of each request as it was logged."""
    stamps: list[tuple[float, str, int]] = []
    log = fake._log

    def logged(path: str, params: dict[str, str], status: int) -> None:
        stamps.append((time.monotonic(), path, status))
        log(path, params, status)

    fake._log = logged  # the handler calls fake._log(...): an instance attribute wins over the method
    return stamps


def median_run(runs: list[dict], key: str) -> dict:
    chosen = dict(sorted(runs, key=lambda run: run[key])[len(runs) // 2])
    chosen[f"{key}_all"] = [run[key] for run in runs]
    return chosen


def throughput(spawner: Spawner, kind: str, n: int, latency: float, repeat: int, workdir: Path) -> dict:
    runs = []
    with FakeAssemblyAI(api_key=API_KEY, latency=latency, seed=n) as fake:
        fake.add(n)  # status "completed": every one is due for hydration
        for _ in range(repeat):
            url = fresh_database(kind, "bench_hydrate", workdir)
            env = child_env(fake, url)
            spawner.run([AAI_ETL_EXE, "sync", "--quiet", "--no-hydrate"], env, workdir, fake)  # not timed
            before = len(fake.requests)
            result = spawner.run([AAI_ETL_EXE, "hydrate", "--quiet"], env, workdir, fake)
            served = fake.requests[before:]
            details = sum(1 for r in served if r["path"].rstrip("/") != LIST_PATH)
            hydrated = hydrated_rows(url)
            drop_database(kind, "bench_hydrate", workdir)
            if hydrated != n:
                raise RuntimeError(f"hydrate stored details of {hydrated} of {n} transcripts on {kind}")
            runs.append({**result, "detail_requests": details, "list_requests": len(served) - details,
                         "transcripts_per_s": n / result["wall_s"]})
    chosen = median_run(runs, "wall_s")
    return {"part": "throughput", "db": kind, "n": n, "latency_s": latency, "workers": WORKERS,
            "ceiling_per_s": WORKERS / latency if latency else None, **chosen}


def budget(spawner: Spawner, kind: str, n: int, latency: float, server_limit: float, per_minute: int,
           workdir: Path) -> dict:
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n)
        url = fresh_database(kind, "bench_budget", workdir)
        spawner.run([AAI_ETL_EXE, "sync", "--quiet", "--no-hydrate"], child_env(fake, url), workdir, fake)  # not timed
        fake.latency = latency
        fake.limit_rate(server_limit)
        before = len(fake.requests)
        result = spawner.run([AAI_ETL_EXE, "hydrate", "--quiet"], child_env(fake, url, str(per_minute)), workdir, fake)
        served = fake.requests[before:]
        hydrated = hydrated_rows(url)
        drop_database(kind, "bench_budget", workdir)
    if hydrated != n:
        raise RuntimeError(f"hydrate stored details of {hydrated} of {n} transcripts on {kind}")
    refused = sum(1 for r in served if r["status"] == 429)
    return {"part": "budget", "db": kind, "n": n, "latency_s": latency, "server_limit_per_s": server_limit,
            "budget_per_min": per_minute, **result, "transcripts_per_s": n / result["wall_s"],
            "share_of_budget": n / result["wall_s"] / (per_minute / 60), "refused_429": refused,
            "share_429": refused / len(served)}


def listing_cost(spawner: Spawner, kind: str, n: int, repeat: int, workdir: Path) -> list[dict]:
    modes = {"sync --no-hydrate": ["sync", "--quiet", "--no-hydrate"], "sync (hydration on)": ["sync", "--quiet"]}
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n)
        stamps = stamp_requests(fake)
        for _ in range(repeat):
            for mode, args in modes.items():  # alternated, so drift in the machine hits both alike
                url = fresh_database(kind, "bench_listing", workdir)
                first_stamp = len(stamps)
                before = len(fake.requests)
                result = spawner.run([AAI_ETL_EXE, *args], child_env(fake, url), workdir, fake)
                served = fake.requests[before:]
                lists = [at for at, path, _ in stamps[first_stamp:] if path.rstrip("/") == LIST_PATH]
                drop_database(kind, "bench_listing", workdir)
                runs[mode].append({
                    **result,
                    "listing_s": lists[-1] - result["started_at"],
                    "list_requests": len(lists),
                    "detail_requests": len(served) - len(lists),
                })
    return [{"part": "listing", "db": kind, "n": n, "mode": mode, **median_run(mode_runs, "listing_s")}
            for mode, mode_runs in runs.items()]


def main() -> None:
    global AAI_ETL_EXE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="transcripts to hydrate (part 1)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake waits per request (part 1)")
    parser.add_argument("--listing-n", type=int, default=20000, help="transcripts in the listing comparison (part 2)")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--listing-db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--budget-n", type=int, default=2400, help="transcripts to hydrate (part 3)")
    parser.add_argument("--budget-latency", type=float, default=0.3, help="seconds per request (part 3)")
    parser.add_argument("--server-limit", type=float, default=80, help="the fake's requests a second (part 3)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[3600, 6000], help="requests a minute (part 3)")
    parser.add_argument("--skip", choices=["throughput", "listing", "budget"], nargs="+", default=[],
                        help="leave parts out")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "hydrate.json")
    parser.add_argument("--aai-etl", default=str(AAI_ETL), help="the aai-etl executable to measure")
    args = parser.parse_args()
    AAI_ETL_EXE = args.aai_etl

    results = []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            if "throughput" not in args.skip:
                for kind in args.db:
                    print(f"hydrate N={args.n} latency={args.latency}s {kind} ...", flush=True)
                    results.append(throughput(spawner, kind, args.n, args.latency, args.repeat, Path(tmp)))
            if "listing" not in args.skip:
                for kind in args.listing_db:
                    print(f"listing N={args.listing_n} {kind}, hydration off / on ...", flush=True)
                    results.extend(listing_cost(spawner, kind, args.listing_n, args.repeat, Path(tmp)))
            if "budget" not in args.skip:
                for kind in args.db:
                    for per_minute in args.budgets:
                        print(f"budget {per_minute}/min, N={args.budget_n}, {args.budget_latency}s, server limit "
                              f"{args.server_limit:.0f}/s, {kind} ...", flush=True)
                        results.append(budget(spawner, kind, args.budget_n, args.budget_latency, args.server_limit,
                                              per_minute, Path(tmp)))
    finally:
        spawner.close()

    for r in (r for r in results if r["part"] == "throughput"):
        verdict = "ok" if r["transcripts_per_s"] >= TARGET_PER_S else "MISS"
        print(f"\nhydrate {r['db']}: N={r['n']}, {r['latency_s'] * 1000:.0f} ms/request, {r['workers']} workers: "
              f"{r['wall_s']:.2f} s (runs {', '.join(f'{w:.2f}' for w in r['wall_s_all'])}), "
              f"{r['transcripts_per_s']:.0f} transcripts/s (target >= {TARGET_PER_S:.0f}: {verdict}; "
              f"ceiling {r['ceiling_per_s']:.0f}/s), {r['detail_requests']} detail + {r['list_requests']} list requests, "
              f"cpu {r['cpu_s']:.2f} s, peak RSS {r['peak_rss_mb']:.1f} MB")
    listing = [r for r in results if r["part"] == "listing"]
    if listing:
        print(f"\n{'db':<10}  {'N':>7}  {'mode':<20}  {'listing s':>9}  {'all runs':<36}  {'wall s':>7}  "
              f"{'list req':>8}  {'detail req':>10}")
        for r in listing:
            runs = " ".join(f"{s:.2f}" for s in r["listing_s_all"])
            print(f"{r['db']:<10}  {r['n']:>7}  {r['mode']:<20}  {r['listing_s']:>9.2f}  {runs:<36}  "
                  f"{r['wall_s']:>7.2f}  {r['list_requests']:>8}  {r['detail_requests']:>10}")
        for kind in sorted({r["db"] for r in listing}):
            off, on = (next(r for r in listing if r["db"] == kind and r["mode"] == m)
                       for m in ("sync --no-hydrate", "sync (hydration on)"))
            print(f"  {kind}: listing phase with hydration on / off = {on['listing_s'] / off['listing_s']:.3f}; "
                  f"stdev over runs: off {statistics.pstdev(off['listing_s_all']):.3f} s, "
                  f"on {statistics.pstdev(on['listing_s_all']):.3f} s")

    for r in (r for r in results if r["part"] == "budget"):
        under = r["budget_per_min"] / 60 <= r["server_limit_per_s"]
        verdict = (f"target >= {BUDGET_SHARE:.0%} of the budget and < {MAX_429_SHARE:.0%} 429: "
                   + ("met" if r["share_of_budget"] >= BUDGET_SHARE and r["share_429"] < MAX_429_SHARE else "MISSED")
                   if under else "over the server's limit: no target, the 429s slow it")
        print(f"\nbudget {r['db']}: N={r['n']}, {r['latency_s'] * 1000:.0f} ms/request, server limit "
              f"{r['server_limit_per_s']:.0f}/s, budget {r['budget_per_min']}/min ({r['budget_per_min'] / 60:.0f}/s): "
              f"{r['wall_s']:.1f} s, {r['transcripts_per_s']:.1f} transcripts/s = {r['share_of_budget']:.0%} of the budget, "
              f"{r['refused_429']} of {r['requests']} requests answered 429 ({r['share_429']:.2%}); {verdict}; "
              f"cpu {r['cpu_s']:.2f} s, peak RSS {r['peak_rss_mb']:.1f} MB")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "aai_etl": args.aai_etl,
            "repeat": args.repeat, "command": " ".join(sys.argv)}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


AAI_ETL_EXE = str(AAI_ETL)

if __name__ == "__main__":
    main()
