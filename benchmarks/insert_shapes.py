"""Statement shapes for a page of new transcripts, without HTTP or parsing: which is cheapest per database.

    .venv/bin/python benchmarks/insert_shapes.py --db sqlite postgresql --n 20000 --repeat 3

N made-up rows, 200 a page, go into a fresh aai-etl schema (migrated as a sync would), one commit per page,
as each shape below: `upsert` (the executemany of `INSERT ... ON CONFLICT DO UPDATE` every page used before
the bulk path), `insert` (a plain executemany INSERT: SQLite's bulk path), `multi` (one INSERT with a VALUES
row per transcript), `copy` (PostgreSQL's `COPY ... FROM STDIN`: its bulk path), and `noidx` (the upsert
into a table without its four secondary indexes: what building them after a backfill could save at most).
Reports wall time, this process's CPU and, on PostgreSQL, the server backend's CPU (from /proc), the
best of `--repeat` runs. `--pragma NAME=VALUE` (repeatable) sets a SQLite pragma on the connection first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DB_SUFFIX, drop_database, fresh_database, set_db_suffix  # noqa: E402

from etl.store import migrate  # noqa: E402
from etl.store.engine import connect, make_engine  # noqa: E402
from etl.store.writes import _PageSql  # noqa: E402

SECONDARY = ("ix_transcripts_status_created", "ix_transcripts_created", "ix_transcripts_change_seq", "ix_transcripts_hydrated_at_account")


def pages(sql: _PageSql, n: int) -> list[list[tuple]]:
    """n rows as the sync would store them, newest first, random uuids as ids."""
    rng, now = random.Random(1), datetime.now(timezone.utc)
    result = []
    for page in range(n // 200):
        rows = []
        for i in range(200):
            tid = str(uuid.UUID(int=rng.getrandbits(128)))
            created = now - timedelta(seconds=page * 200 + i)
            raw = {"id": tid, "resource_url": f"https://api.assemblyai.com/v2/transcript/{tid}", "status": "completed",
                   "created": created.isoformat(), "audio_url": "https://example.com/audio/1.mp3",
                   "completed": created.isoformat(), "error": None}
            t = sql._time
            rows.append(("default", tid, "completed", t(created), t(created), raw["audio_url"], raw["resource_url"], None,
                         json.dumps(raw), t(now), t(now), None, None, page, 0))
        result.append(rows)
    return result


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, shape: str, data: list[list[tuple]], pragmas: list[str], workdir: Path) -> tuple[float, float, float]:
    sql = _PageSql(kind)
    columns = ", ".join(_PageSql._COLUMNS)
    mark = "%s" if sql.postgres else "?"
    url = fresh_database(kind, "bench_shapes", workdir).replace("postgresql://", "postgresql+psycopg://")
    engine = make_engine(url)
    try:
        with connect(engine) as conn:
            migrate.ensure_schema(conn)
            if shape == "noidx":
                for index in SECONDARY:
                    conn.exec_driver_sql(f"DROP INDEX {index}")
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() if sql.postgres else None
            conn.commit()
            dbapi = conn.connection.dbapi_connection
            for pragma in pragmas:
                dbapi.execute(f"PRAGMA {pragma}")
            started, cpu0, backend0 = time.perf_counter(), cpu(), backend_cpu(backend)
            for rows in data:
                cursor = dbapi.cursor()
                if shape in ("upsert", "noidx"):
                    cursor.executemany(sql.upsert_sql, rows)
                elif shape == "insert":
                    cursor.executemany(sql.insert_sql, rows)
                elif shape == "multi":
                    values = ", ".join(["(" + ", ".join([mark] * len(_PageSql._COLUMNS)) + ")"] * len(rows))
                    cursor.execute(f"INSERT INTO transcripts ({columns}) VALUES {values}", [v for row in rows for v in row])
                elif shape == "copy":
                    with cursor.copy(sql.copy_sql) as copy:
                        for row in rows:
                            copy.write_row(row)
                dbapi.commit()
            measured = (time.perf_counter() - started, cpu() - cpu0, backend_cpu(backend) - backend0)
            assert conn.exec_driver_sql("SELECT count(*) FROM transcripts").scalar() == sum(map(len, data))
    finally:
        engine.dispose()
        drop_database(kind, "bench_shapes", workdir)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=None, help="default: every shape the database has")
    parser.add_argument("--pragma", action="append", default=[], help="a SQLite pragma, e.g. wal_autocheckpoint=10000")
    parser.add_argument("--db-suffix", default=DB_SUFFIX, help="appended to the throwaway PostgreSQL database's name")
    args = parser.parse_args()
    set_db_suffix(args.db_suffix)
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="aai-shapes-") as tmp:
        for kind in args.db:
            data = pages(_PageSql(kind), args.n)
            shapes = args.shapes or (["upsert", "copy", "noidx"] if kind == "postgresql" else ["upsert", "insert", "multi", "noidx"])
            best: dict[str, list[tuple[float, float, float]]] = {shape: [] for shape in shapes}
            for _ in range(args.repeat):  # shapes interleaved, so that a change in the machine's load hits all alike
                for shape in shapes:
                    best[shape].append(measure(kind, shape, data, args.pragma if kind == "sqlite" else [], Path(tmp)))
            for shape, runs in best.items():
                wall, own, backend = (min(run[i] for run in runs) for i in range(3))
                print(f"{kind:<10} {shape:<7} N={args.n}: wall {wall:.2f} s, CPU {own:.2f} s, server CPU {backend:.2f} s (best of {args.repeat})")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
