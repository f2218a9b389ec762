"""Where the wall time of one `aai-etl sync` goes: py-spy samples of a first sync, grouped by stage.

    benchmarks/.venv-dlt/bin/pip install py-spy     # once; any py-spy on PATH also works
    .venv/bin/python benchmarks/profile_sync.py --n 100000 --db sqlite

py-spy runs with --idle, so time spent waiting on a socket (the fake API, PostgreSQL) is counted too; unlike
cProfile it does not inflate code that makes many small calls. The next page downloads in a background
thread while the main thread stores the current one, so the stages are the main thread's samples (they add
up to the wall time), and the download threads' samples are shown apart: they overlap the main thread.
"""

from __future__ import annotations

import argparse
import ast
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import AAI_ETL, API_KEY, BENCH, DB_SUFFIX, FakeAssemblyAI, drop_database, fresh_database, interpreter_of, set_db_suffix  # noqa: E402


# (stage, predicate on one sampled stack), first match wins. Frames read "function (file:line)"; stages go
# by function names, which survive edits, except the SELECT, found by its source line (see `select_lines`).
def stages(select_lines: set[int], analyze_lines: set[int]) -> list:
    def in_select(stack: str) -> bool:
        return any(int(line) in select_lines for line in re.findall(r"\(etl/store/writes\.py:(\d+)\)", stack))

    def in_analyze(stack: str) -> bool:
        return any(int(line) in analyze_lines for line in re.findall(r"\(etl/store/analyze\.py:(\d+)\)", stack))

    return [
        ("startup: imports, click, settings", lambda s: "(etl/sync/" not in s),
        ("schema check", lambda s: "ensure_schema (" in s),
        ("HTTP GET + JSON decode", lambda s: "list_transcripts (" in s),
        ("hand the next page to the download thread", lambda s: "_Downloads." in s),
        ("wait for the next page's download", lambda s: "_page (etl/walk/backwards.py" in s),
        ("parse items (etl/model/items.py)", lambda s: "parse_item (" in s),
        ("ANALYZE (PostgreSQL, long walks)", in_analyze),
        ("change counter UPDATE", lambda s: "next_change_seq (" in s),
        ("SELECT stored rows of the page's ids", lambda s: "upsert_page (" in s and in_select(s)),
        ("bulk insert of a new page (COPY / INSERT)", lambda s: "_PageSql.insert (" in s),
        ("upsert: driver executemany", lambda s: "upsert_page (" in s and "do_execute" in s),
        ("upsert: SQLAlchemy bind processing", lambda s: "upsert_page (" in s and "_init_compiled" in s),
        ("upsert: other SQLAlchemy", lambda s: "upsert_page (" in s and "Connection.execute (" in s),
        ("compare raw, build rows", lambda s: "upsert_page (" in s),
        ("COMMIT", lambda s: "Connection.commit (sqlalchemy" in s),
        ("cursor, run counters, other SQL", lambda s: "Connection.execute (" in s),
        ("other", lambda s: True),
    ]


def select_lines(aai_etl: str) -> set[int]:
    """The lines of the statement in etl/store/writes.py that reads the page's stored rows (`stored = ...`)."""
    python = interpreter_of(aai_etl)
    # cwd="/": `python -c` puts the current directory first on sys.path, which may hold another etl/.
    path = subprocess.run([python, "-c", "import etl.store.writes; print(etl.store.writes.__file__)"],
                          capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    source = Path(path).read_text()
    marker = next(number for number, text in enumerate(source.splitlines(), 1) if "stored =" in text)
    node = next(node for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Assign) and node.lineno == marker)
    return set(range(node.lineno, node.end_lineno + 1))


def analyze_lines(aai_etl: str) -> set[int]:
    """The lines of etl/store/analyze.py that run ANALYZE."""
    python = interpreter_of(aai_etl)
    path = subprocess.run([python, "-c", "import etl.store.analyze; print(etl.store.analyze.__file__)"],
                          capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    return {number for number, text in enumerate(Path(path).read_text().splitlines(), 1) if '"ANALYZE' in text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--aai-etl", default=str(AAI_ETL))
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(BENCH / ".venv-dlt" / "bin" / "py-spy"))
    parser.add_argument("--keep", type=Path, help="also save py-spy's raw samples (folded stacks) here")
    parser.add_argument("--db-suffix", default=DB_SUFFIX, help="appended to the throwaway PostgreSQL database's name")
    args = parser.parse_args()
    set_db_suffix(args.db_suffix)

    with tempfile.TemporaryDirectory(prefix="aai-profile-") as tmp, FakeAssemblyAI(api_key=API_KEY, seed=args.n) as fake:
        fake.add(args.n)
        url = fresh_database(args.db, "bench_profile", Path(tmp))
        folded = Path(tmp) / "sync.folded"
        env = {**os.environ, "ASSEMBLYAI_API_KEY": API_KEY, "ASSEMBLYAI_BASE_URL": fake.base_url,
               "AAI_ETL_DATABASE_URL": url}
        subprocess.run([args.py_spy, "record", "--idle", "--threads", "--rate", "500", "--format", "raw", "--output", str(folded),
                        "--", args.aai_etl, "sync", "--quiet", "--no-hydrate"], env=env, cwd=tmp, check=True, capture_output=True)
        drop_database(args.db, "bench_profile", Path(tmp))
        if args.keep:
            shutil.copyfile(folded, args.keep)
        table = stages(select_lines(args.aai_etl), analyze_lines(args.aai_etl))
        samples: collections.Counter[str] = collections.Counter()
        background: collections.Counter[str] = collections.Counter()  # other threads, by thread name
        for line in folded.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            # --threads puts "thread (TID): NAME" first; --idle samples a thread while it waits, too.
            thread, _, stack = stack.partition(";")
            if not thread.endswith(": MainThread"):  # py-spy names a short-lived thread only some of the time
                kind = "next-page download" if "_Downloads._run" in stack else "day downloads" if "walk_days." in stack else "other"
                background[kind] += int(count)
                continue
            samples[next(stage for stage, match in table if match(stack))] += int(count)

    total = sum(samples.values())
    print(f"aai-etl sync, first run, N={args.n}, {args.db}: main thread {total} samples at 500 Hz (~{total / 500:.2f} s)")
    for name, _ in table:
        print(f"  {name:<38} {samples[name] / 500:>6.2f} s  {100 * samples[name] / total:>5.1f} %")
    for name, count in background.most_common():
        print(f"  (background threads, {name}, overlapping the above: {count / 500:.2f} s)")


if __name__ == "__main__":
    main()
