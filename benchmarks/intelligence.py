"""Audio intelligence benchmark: what deriving the tables costs a hydration, and Parquet against JSON Lines.

    .venv/bin/python benchmarks/intelligence.py --db sqlite postgresql --n 3000 --export-n 100000 --repeat 3

1. Deriving. The fake API (etl/tools/simulator.py, in this process, zero latency) holds N completed transcripts,
   three in four of them with audio intelligence in their bodies (etl.tools.simulator.intelligence_profile).
   On a fresh database `aai-etl sync --no-hydrate` stores the list (not timed); then `aai-etl hydrate
   --quiet` runs as a timed subprocess, with `derived_tables = []` (deriving off) and with the default (all
   seven tables), alternated; with `--baseline EXE`, also that aai-etl (e.g. one installed from main,
   which has no deriving at all). Reported: transcripts/s = N / wall (start-up included). Target: deriving
   adds at most 10% to the hydration's time.
2. Export. `--export-n` transcripts listed by `aai-etl sync --no-hydrate`, their bodies (as the fake serves
   them) written straight into transcript_bodies and the rows marked hydrated, then `aai-etl derive` fills
   the tables from them (timed: the backfill's speed). Then, alternated, timed: `aai-etl export --format
   jsonl --output FILE` (the transcripts table), benchmarks/jsonl_all.py (the same rows as the Parquet
   export, every table, as JSON Lines written the way aai-etl writes them) and `aai-etl export --format
   parquet --output-dir DIR` (the transcripts table and every other table's rows). Target: Parquet at least
   5x faster than JSON Lines of the same rows.

Children run through benchmarks/spawner.py, as in run.py; results go to
benchmarks/results/intelligence.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hydrate import child_env, hydrated_rows, median_run  # noqa: E402
from run import AAI_ETL, API_KEY, BENCH, PROJECT_PYTHON, FakeAssemblyAI, Spawner, drop_database, fresh_database  # noqa: E402

DERIVE_MAX_SLOWDOWN = 1.10
PARQUET_MIN_SPEEDUP = 5.0


def deriving(spawner: Spawner, kind: str, n: int, repeat: int, baseline: str | None, workdir: Path) -> list[dict]:
    off = workdir / "derive-off.toml"
    off.write_text("derived_tables = []\n")
    modes = {"deriving off": (str(AAI_ETL), ["--config", str(off)]), "deriving on": (str(AAI_ETL), [])}
    if baseline:
        modes["baseline (no deriving code)"] = (baseline, [])
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n)
        for _ in range(repeat):
            for mode, (exe, options) in modes.items():
                url = fresh_database(kind, "bench_derive", workdir)
                env = child_env(fake, url)
                spawner.run([exe, "sync", "--quiet", "--no-hydrate"], env, workdir, fake)
                result = spawner.run([exe, "hydrate", "--quiet", *options], env, workdir, fake)
                hydrated = hydrated_rows(url)
                drop_database(kind, "bench_derive", workdir)
                if hydrated != n:
                    raise RuntimeError(f"{mode}: hydrated {hydrated} of {n} on {kind}")
                runs[mode].append({**result, "transcripts_per_s": n / result["wall_s"]})
    return [{"part": "derive", "db": kind, "n": n, "mode": mode, **median_run(mode_runs, "wall_s")}
            for mode, mode_runs in runs.items()]


def store_bodies(fake: FakeAssemblyAI, url: str) -> int:
    """Every listed transcript's body into transcript_bodies, marked hydrated: a database hydrated before
    the derived tables existed (what `aai-etl derive` is for)."""
    now = datetime.now(timezone.utc)
    ids = [item["id"] for item in fake.listing()]
    rows = [("default", tid, fake._transcript(tid)[1].decode()) for tid in ids]
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            conn.executemany("INSERT INTO transcript_bodies (account, transcript_id, body) VALUES (?, ?, ?)", rows)
            conn.execute("UPDATE transcripts SET hydrated_at = ?", (now.replace(tzinfo=None).isoformat(sep=" "),))
            conn.commit()
        return len(rows)
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany("INSERT INTO transcript_bodies (account, transcript_id, body) VALUES (%s, %s, %s::jsonb)", rows)
        cursor.execute("UPDATE transcripts SET hydrated_at = %s", (now,))
    return len(rows)


def exporting(spawner: Spawner, kind: str, n: int, repeat: int, workdir: Path) -> list[dict]:
    results = []
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n)
        url = fresh_database(kind, "bench_export", workdir)
        env = child_env(fake, url)
        spawner.run([str(AAI_ETL), "sync", "--quiet", "--no-hydrate"], env, workdir, fake)
        store_bodies(fake, url)
        derived = spawner.run([str(AAI_ETL), "derive", "--quiet"], env, workdir, fake)
        results.append({"part": "backfill", "db": kind, "n": n, **derived, "transcripts_per_s": n / derived["wall_s"]})
        runs: dict[str, list[dict]] = {"jsonl": [], "jsonl (every table)": [], "parquet": []}
        for _ in range(repeat):
            target = workdir / "export.jsonl"
            runs["jsonl"].append(spawner.run(
                [str(AAI_ETL), "export", "--quiet", "--format", "jsonl", "--output", str(target)], env, workdir, fake))
            target.unlink()
            every = workdir / "export-jsonl"
            runs["jsonl (every table)"].append(spawner.run(
                [str(PROJECT_PYTHON), str(BENCH / "jsonl_all.py"), url, str(every)], env, workdir, fake))
            shutil.rmtree(every)
            directory = workdir / "export-parquet"
            runs["parquet"].append(spawner.run(
                [str(AAI_ETL), "export", "--quiet", "--format", "parquet", "--output-dir", str(directory)], env, workdir, fake))
            rows = {table.name: sum(_count(path) for path in table.glob("*.parquet")) for table in directory.iterdir()}
            shutil.rmtree(directory)
        drop_database(kind, "bench_export", workdir)
        for fmt, fmt_runs in runs.items():
            results.append({"part": "export", "db": kind, "n": n, "format": fmt, **median_run(fmt_runs, "wall_s"),
                            "rows": {"transcripts": n} if fmt == "jsonl" else rows})
    return results


def _count(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="transcripts to hydrate (part 1)")
    parser.add_argument("--export-n", type=int, default=100_000, help="transcripts to export (part 2)")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--baseline", help="another aai-etl executable to hydrate with, e.g. one installed from main")
    parser.add_argument("--skip", choices=["derive", "export"], help="leave one part out")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "intelligence.json")
    args = parser.parse_args()

    results: list[dict] = []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                if args.skip != "derive":
                    print(f"hydrate N={args.n} {kind}, deriving off / on ...", flush=True)
                    results.extend(deriving(spawner, kind, args.n, args.repeat, args.baseline, Path(tmp)))
                if args.skip != "export":
                    print(f"export N={args.export_n} {kind}, jsonl / parquet ...", flush=True)
                    results.extend(exporting(spawner, kind, args.export_n, args.repeat, Path(tmp)))
    finally:
        spawner.close()

    for kind in args.db:
        mine = [r for r in results if r["db"] == kind]
        derive = {r["mode"]: r for r in mine if r["part"] == "derive"}
        for mode, r in derive.items():
            print(f"{kind} hydrate N={r['n']} {mode:<28} {r['wall_s']:6.2f} s  {r['transcripts_per_s']:7.0f}/s  "
                  f"runs {', '.join(f'{w:.2f}' for w in r['wall_s_all'])}")
        if derive:
            on = derive["deriving on"]["wall_s"]
            for base in ("deriving off", "baseline (no deriving code)"):
                if base in derive:
                    ratio = on / derive[base]["wall_s"]
                    verdict = "met" if ratio <= DERIVE_MAX_SLOWDOWN else "MISSED"
                    print(f"  {kind}: deriving on / {base} = {ratio:.3f} (target <= {DERIVE_MAX_SLOWDOWN}: {verdict})")
        for r in (r for r in mine if r["part"] == "backfill"):
            print(f"{kind} aai-etl derive (backfill) N={r['n']}: {r['wall_s']:.2f} s, {r['transcripts_per_s']:.0f} transcripts/s")
        exports = {r["format"]: r for r in mine if r["part"] == "export"}
        for fmt, r in exports.items():
            print(f"{kind} export {fmt:<8} {r['wall_s']:6.2f} s  runs {', '.join(f'{w:.2f}' for w in r['wall_s_all'])}  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB  rows {r['rows']}")
        for base in ("jsonl (every table)", "jsonl") if exports else ():
            speedup = exports[base]["wall_s"] / exports["parquet"]["wall_s"]
            verdict = "met" if speedup >= PARQUET_MIN_SPEEDUP else "MISSED"
            print(f"  {kind}: {base} / parquet = {speedup:.2f}x (target >= {PARQUET_MIN_SPEEDUP}: {verdict})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
            "command": " ".join(sys.argv)}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
