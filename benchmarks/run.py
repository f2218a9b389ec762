"""Speed benchmark: aai-etl against a dlt rest_api pipeline and a bare requests+driver loop.

    .venv/bin/python benchmarks/run.py --n 1000 20000 100000 --db sqlite postgresql

For each N and database kind one fake AssemblyAI API (etl/tools/simulator.py, in this process, zero latency)
holds N transcripts; each tool then runs as a subprocess on its own fresh empty database, so wall time
includes interpreter start and imports, as a cron job pays them. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
from etl.tools.simulator import FakeAssemblyAI  # noqa: E402  (the project's venv has etl installed

PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
AAI_ETL = ROOT / ".venv" / "bin" / "aai-etl"
DLT_VENV = BENCH / ".venv-dlt"
DLT_PYTHON = DLT_VENV / "bin" / "python"
UNPACED = "6000000"  # a request budget no run here comes near: the machinery's own speed is measured
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
API_KEY = "bench-key-0123456789"
# Appended to every throwaway PostgreSQL database's name (--db-suffix, or BENCH_DB_SUFFIX for the other
# scripts): two benchmarks on one server then never drop each other's databases.
DB_SUFFIX = os.environ.get("BENCH_DB_SUFFIX", "")
TOOLS = ("aai-etl", "aai-etl idle", "dlt", "bare")
BASELINE = "aai-etl baseline"  # --baseline: another aai-etl, measured in the same run

# Targets (README explains them).
DLT_OVER_AAI_MIN = 2.0
AAI_OVER_BARE_MAX = 1.5
IDLE_MAX_S = 1.0
RSS_GROWTH_MAX = 1.25  # "flat": peak RSS at the largest N within 25% of the smallest N's


def write_results(out: Path, results: list[dict], aai_etl: str, **meta) -> None:
    """The results as JSON, with when, which executable and the command that produced them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "aai_etl": aai_etl, **meta,
            "command": " ".join(sys.argv)}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {out}")


def ensure_dlt_venv() -> None:
    if DLT_PYTHON.exists():
        return
    print(f"creating {DLT_VENV} and installing dlt into it (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
    pip = [str(DLT_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "dlt[sqlalchemy,postgres]", "requests"], check=True)


# -- databases -----------------------------------------------------------------------------------

def set_db_suffix(suffix: str) -> None:
    global DB_SUFFIX
    DB_SUFFIX = suffix


def fresh_database(kind: str, name: str, workdir: Path) -> str:
    """The URL of a new, empty database called `name`."""
    if kind == "sqlite":
        for stale in workdir.glob(f"{name}*"):
            stale.unlink()
        return f"sqlite:///{workdir / name}.db"
    name += DB_SUFFIX
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(kind: str, name: str, workdir: Path) -> None:
    if kind == "sqlite":
        for path in workdir.glob(f"{name}*"):
            path.unlink()
    else:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}{DB_SUFFIX}" WITH (FORCE)')


def count_rows(url: str, tool: str) -> int:
    """Rows in the tool's transcripts table: a check that every tool really stored all N."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if tool == "dlt":  # dlt's sqlalchemy destination keeps each dataset in its own attached file
            path = path.removesuffix(".db") + "__aai.db"
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute("SELECT count(*) FROM transcripts").fetchone()[0]
    import psycopg

    table = "aai.transcripts" if tool == "dlt" else "transcripts"
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _postgres_admin(*statements: str) -> None:
    try:
        import psycopg
    except ImportError:
        sys.exit("PostgreSQL runs need psycopg: run this script with .venv/bin/python")
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:  # CREATE DATABASE refuses a transaction
        for statement in statements:
            conn.execute(statement)


# -- one measurement -----------------------------------------------------------------------------

def interpreter_of(aai_etl: str) -> str:
    """The Python that runs an installed `aai-etl` script: the one its #! line names."""
    return Path(aai_etl).read_text().splitlines()[0].removeprefix("#!").strip()


def compile_bytecode(aai_etl: str) -> None:
    """Compile the measured aai-etl's own modules, its migrations included, as installing its wheel does.

    An editable install leaves them as source, and with PYTHONDONTWRITEBYTECODE set (some shells and
    containers set it) every run compiled some 40 modules again: a tenth of a second that no installed
    aai-etl pays, while dlt and the drivers come from site-packages that pip compiled."""
    program = "import compileall, etl, etl.migrations.versions as v; [compileall.compile_dir(p, quiet=1) for p in (*etl.__path__, *v.__path__)]"
    subprocess.run([interpreter_of(aai_etl), "-c", program], check=True)


class Spawner:
    """Runs each measured child from benchmarks/spawner.py, a small process (its docstring says why)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(BENCH / "spawner.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.compiled: set[str] = set()

    def run(self, command: list[str], env: dict[str, str], cwd: Path, fake: FakeAssemblyAI) -> dict:
        if Path(command[0]).name == "aai-etl" and command[0] not in self.compiled:
            compile_bytecode(command[0])
            self.compiled.add(command[0])
        before = len(fake.requests)
        self.process.stdin.write(json.dumps({"command": command, "env": env, "cwd": str(cwd)}) + "\n")
        self.process.stdin.flush()
        result = json.loads(self.process.stdout.readline())
        if result.pop("returncode"):
            raise RuntimeError(f"{' '.join(command)} failed:\n{result['output']}")
        del result["output"]
        return {**result, "requests": len(fake.requests) - before}

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def measure_all(
    spawner: Spawner, aai_etl: str, n: int, kind: str, repeat: int, workdir: Path, baseline: str | None = None
) -> list[dict]:
    """Every tool against one fake holding n transcripts; with repeat > 1, the run with the median wall."""
    results = []
    with FakeAssemblyAI(api_key=API_KEY, seed=n) as fake:
        fake.add(n)
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AAI_ETL_", "ASSEMBLYAI_"))},
            "ASSEMBLYAI_API_KEY": API_KEY,
            "ASSEMBLYAI_BASE_URL": fake.base_url,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            # The fake answers at once: the request budget (2,000 a minute) would be all this measured.
            "AAI_ETL_REQUESTS_PER_MINUTE": UNPACED,
        }
        tools = (*TOOLS, BASELINE) if baseline else TOOLS
        runs: dict[str, list[dict]] = {tool: [] for tool in tools}
        for _ in range(repeat):
            for tool, name, command in (
                ("aai-etl", "bench_aai", [aai_etl, "sync", "--quiet", "--no-hydrate"]),
                *([(BASELINE, "bench_aai_base", [baseline, "sync", "--quiet", "--no-hydrate"])] if baseline else []),
                ("dlt", "bench_dlt", [str(DLT_PYTHON), str(BENCH / "dlt_pipeline.py")]),
                ("bare", "bench_bare", [str(PROJECT_PYTHON), str(BENCH / "bare_loop.py")]),
            ):
                url = fresh_database(kind, name, workdir)
                pipelines = Path(tempfile.mkdtemp(prefix="dlt-pipelines-", dir=workdir))
                env = {**base_env, "AAI_ETL_DATABASE_URL": url, "DLT_PIPELINES_DIR": str(pipelines)}
                runs[tool].append({**spawner.run(command, env, workdir, fake), "rows": count_rows(url, tool)})
                if tool == "aai-etl":  # same command again, nothing new: the cost of a no-op cron run
                    runs["aai-etl idle"].append({**spawner.run(command, env, workdir, fake), "rows": count_rows(url, tool)})
                drop_database(kind, name, workdir)
                shutil.rmtree(pipelines)
        for tool in tools:
            for run in runs[tool]:
                if run["rows"] != n:
                    raise RuntimeError(f"{tool} stored {run['rows']} of {n} transcripts on {kind}")
            chosen = sorted(runs[tool], key=lambda run: run["wall_s"])[len(runs[tool]) // 2]
            rate = n / chosen["wall_s"] if tool != "aai-etl idle" else None
            walls = [run["wall_s"] for run in runs[tool]]
            results.append({"n": n, "db": kind, "tool": tool, **chosen, "transcripts_per_s": rate,
                            "wall_s_all": walls, "wall_s_stdev": statistics.pstdev(walls)})
    return results


# -- report --------------------------------------------------------------------------------------

def summarize(results: list[dict]) -> list[dict]:
    """The target checks: one line per (N, db) for the ratios, one per (db, tool) for RSS across N."""
    by_key = {(r["n"], r["db"], r["tool"]): r for r in results}
    checks = []
    for n, kind in sorted({(r["n"], r["db"]) for r in results}, key=lambda k: (k[1], k[0])):
        wall = {tool: by_key[n, kind, tool]["wall_s"] for tool in TOOLS}
        checks.append({
            "n": n, "db": kind,
            "dlt_over_aai": wall["dlt"] / wall["aai-etl"],
            "aai_over_bare": wall["aai-etl"] / wall["bare"],
            "idle_wall_s": wall["aai-etl idle"],
            **({"baseline_over_aai": by_key[n, kind, BASELINE]["wall_s"] / wall["aai-etl"]}
               if (n, kind, BASELINE) in by_key else {}),
        })
    for kind in sorted({r["db"] for r in results}):
        for tool in TOOLS:
            rss = {r["n"]: r["peak_rss_mb"] for r in results if r["db"] == kind and r["tool"] == tool}
            if len(rss) > 1:
                checks.append({"db": kind, "tool": tool, "peak_rss_mb_by_n": rss,
                               "rss_growth": rss[max(rss)] / rss[min(rss)]})
    return checks


def print_report(results: list[dict], checks: list[dict]) -> None:
    print(f"\n{'N':>7}  {'db':<10}  {'tool':<13}  {'wall s':>7}  {'transcripts/s':>13}  {'requests':>8}  "
          f"{'peak RSS MB':>11}  {'cpu s':>6}")
    for r in sorted(results, key=lambda r: (r["db"], r["n"], (*TOOLS, BASELINE).index(r["tool"]))):
        rate = f"{r['transcripts_per_s']:,.0f}" if r["transcripts_per_s"] else "-"
        print(f"{r['n']:>7}  {r['db']:<10}  {r['tool']:<13}  {r['wall_s']:>7.2f}  {rate:>13}  {r['requests']:>8}  "
              f"{r['peak_rss_mb']:>11.1f}  {r['cpu_s']:>6.2f}")

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISS"

    print(f"\n{'N':>7}  {'db':<10}  {'dlt/aai (>=2)':>14}  {'aai/bare (<=1.5)':>17}  {'idle s (<1)':>12}")
    for c in (c for c in checks if "n" in c):
        print(f"{c['n']:>7}  {c['db']:<10}  "
              f"{c['dlt_over_aai']:>9.2f} {verdict(c['dlt_over_aai'] >= DLT_OVER_AAI_MIN):>4}  "
              f"{c['aai_over_bare']:>12.2f} {verdict(c['aai_over_bare'] <= AAI_OVER_BARE_MAX):>4}  "
              f"{c['idle_wall_s']:>7.2f} {verdict(c['idle_wall_s'] < IDLE_MAX_S):>4}"
              + (f"   baseline/aai {c['baseline_over_aai']:.2f}" if "baseline_over_aai" in c else ""))
    print(f"\npeak RSS MB across N (flat: largest N within {RSS_GROWTH_MAX}x of smallest)")
    for c in (c for c in checks if "rss_growth" in c):
        series = "  ".join(f"{n}: {mb:.1f}" for n, mb in sorted(c["peak_rss_mb_by_n"].items()))
        print(f"  {c['db']:<10}  {c['tool']:<13}  {series}   x{c['rss_growth']:.2f} "
              f"{verdict(c['rss_growth'] <= RSS_GROWTH_MAX)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 20000, 100000], help="transcripts in the fake")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the median wall is reported")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument("--aai-etl", default=str(AAI_ETL),
                        help="the aai-etl executable to measure, e.g. one installed from another checkout")
    parser.add_argument("--baseline", help="another aai-etl executable to measure in the same run (e.g. of the commit before)")
    parser.add_argument("--db-suffix", default=DB_SUFFIX,
                        help="appended to the throwaway PostgreSQL databases' names (bench_aai, ...)")
    args = parser.parse_args()
    set_db_suffix(args.db_suffix)

    ensure_dlt_venv()
    results = []
    spawner = Spawner()
    try:
        with tempfile.TemporaryDirectory(prefix="aai-bench-") as tmp:
            for kind in args.db:
                for n in args.n:
                    print(f"N={n} {kind} ... (load average {os.getloadavg()[0]:.1f})", flush=True)
                    results.extend(measure_all(spawner, args.aai_etl, n, kind, args.repeat, Path(tmp), args.baseline))
    finally:
        spawner.close()
    checks = summarize(results)
    print_report(results, checks)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "dlt": subprocess.run([str(DLT_PYTHON), "-c", "import dlt; print(dlt.__version__)"],
                              capture_output=True, text=True).stdout.strip(),
        "repeat": args.repeat,
        "aai_etl": args.aai_etl,
        "baseline": args.baseline,
        "load_average": os.getloadavg(),
        "command": " ".join(sys.argv),
    }
    args.out.write_text(json.dumps({"meta": meta, "results": results, "checks": checks}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
