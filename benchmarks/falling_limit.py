"""The pacer against a server whose rate limit falls mid-run, far below the request budget.

    .venv/bin/python benchmarks/falling_limit.py                 # SQLite and PostgreSQL, with and without Retry-After
    .venv/bin/python benchmarks/falling_limit.py --db sqlite --n 300 --fall-after 100   # one database, shorter

The fake API (etl/tools/simulator.py, in this process) holds N completed transcripts, answers after `--latency`
seconds (50 ms) and limits requests to `--before` a second (80); after `--fall-after` detail requests the
limit falls to `--after` a second (5), its 429s saying Retry-After or not. `aai-etl hydrate` runs as a
subprocess with a budget above both (`--budget`, 12,000 a minute: 200 a second) and default settings
otherwise. Reported: the share of all requests answered 429 (target: "a few percent", read as at most 5%;
also the share from SETTLING seconds after the fall, once the requests already in flight at the old pace
have been answered), throughput after the
fall as a share of what the server allowed then (its rate over that time plus the one second's burst it
grants; target: at least 90%), and how many transcripts were charged a failed attempt (target: none).
Results go to benchmarks/results/falling_limit.json (or --out).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env, hydrated_rows, rows_where, stamp_requests  # noqa: E402
from run import AAI_ETL, API_KEY, BENCH, FakeAssemblyAI, Spawner, drop_database, fresh_database, write_results  # noqa: E402

MAX_429_SHARE, MIN_ALLOWED_SHARE = 0.05, 0.90
SETTLING = 2.0  # seconds after the fall in which the requests already in flight at the old pace are answered


def measure(spawner: Spawner, kind: str, args: argparse.Namespace, retry_after: bool, workdir: Path) -> dict:
    with FakeAssemblyAI(api_key=API_KEY, seed=args.n) as fake:
        fake.add(args.n)
        url = fresh_database(kind, "bench_falling", workdir)
        spawner.run([str(AAI_ETL_EXE), "sync", "--quiet", "--no-hydrate"], child_env(fake, url), workdir, fake)  # not timed
        fake.latency = args.latency
        fake.limit_rate(args.before, retry_after=retry_after)
        fake.limit_rate(args.after, retry_after=retry_after, after_requests=args.fall_after)
        stamps = stamp_requests(fake)
        result = spawner.run([str(AAI_ETL_EXE), "hydrate", "--quiet"], child_env(fake, url, str(args.budget)), workdir, fake)
        hydrated, charged = hydrated_rows(url), rows_where(url, "hydrate_attempts > 0")
        drop_database(kind, "bench_falling", workdir)
    # Requests are answered in about the order they arrive, so the first answered after the fall-th one is
    # the first under the low limit; the time from there to the last answer is the time it ruled.
    fallen = stamps[args.fall_after :]
    seconds = fallen[-1][0] - fallen[0][0]
    allowed = args.after * (seconds + 1)  # its rate over that time, plus the one second's burst it grants
    accepted = sum(1 for _, _, status in fallen if status != 429)
    refused = sum(1 for _, _, status in stamps if status == 429)
    settled = [status for at, _, status in fallen if at > fallen[0][0] + SETTLING]
    return {
        "db": kind, "retry_after": retry_after, "n": args.n, "hydrated": hydrated, "charged": charged, **result,
        "requests": len(stamps), "refused_429": refused, "share_429": refused / len(stamps),
        "refused_429_after_fall": sum(1 for _, _, status in fallen if status == 429),
        "share_429_settled": settled.count(429) / len(settled),
        "seconds_after_fall": seconds, "accepted_after_fall": accepted, "share_of_allowed": accepted / allowed,
    }


def main() -> None:
    global AAI_ETL_EXE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=600, help="transcripts to hydrate")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake waits per request")
    parser.add_argument("--before", type=float, default=80, help="the server's requests a second at first")
    parser.add_argument("--after", type=float, default=5, help="the server's requests a second after the fall")
    parser.add_argument("--fall-after", type=int, default=200, help="detail requests before the limit falls")
    parser.add_argument("--budget", type=int, default=12000, help="the request budget, a minute")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "falling_limit.json")
    parser.add_argument("--aai-etl", default=str(AAI_ETL), help="the aai-etl executable to measure")
    args = parser.parse_args()
    AAI_ETL_EXE = args.aai_etl

    results = []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                for retry_after in (True, False):
                    print(f"{kind}, Retry-After {'given' if retry_after else 'absent'} ...", flush=True)
                    results.append(measure(spawner, kind, args, retry_after, Path(tmp)))
    finally:
        spawner.close()

    for r in results:
        met = r["share_429"] <= MAX_429_SHARE and r["share_of_allowed"] >= MIN_ALLOWED_SHARE and r["charged"] == 0
        print(f"{r['db']:<10} Retry-After {'given ' if r['retry_after'] else 'absent'}: {r['hydrated']} of {r['n']} "
              f"hydrated in {r['wall_s']:.1f} s, {r['refused_429']} of {r['requests']} requests answered 429 "
              f"({r['share_429']:.1%}; {r['refused_429_after_fall']} after the fall; "
              f"{r['share_429_settled']:.1%} from {SETTLING:g} s after it), after the fall "
              f"{r['accepted_after_fall']} accepted in {r['seconds_after_fall']:.1f} s = {r['share_of_allowed']:.0%} "
              f"of what the server allowed, {r['charged']} charged an attempt; "
              f"targets (<= {MAX_429_SHARE:.0%} 429, 'a few', >= {MIN_ALLOWED_SHARE:.0%}, none charged): "
              f"{'met' if met else 'MISSED'}")
    write_results(args.out, results, args.aai_etl)


AAI_ETL_EXE = str(AAI_ETL)

if __name__ == "__main__":
    main()
