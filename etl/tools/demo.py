"""`aai-etl demo`: the whole loop against a simulated API, for someone without an API key yet.

The simulator (etl/tools/simulator.py) serves real HTTP on loopback; everything after that is the production
path: the same client, sync, hydration and schema as `aai-etl sync`.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from etl.api.client import ApiClient
from etl.details.hydrate import HydrateOptions
from etl.errors import UsageError
from etl.outputs import stats
from etl.outputs.report import text_table
from etl.store.engine import make_engine
from etl.sync import SyncOptions, run_sync
from etl.sync.record import RunStats
from etl.tools.simulator import FakeAssemblyAI

ACCOUNT = "default"  # what `aai-etl status` shows without a config file
DEMO_KEY = "demo-key-not-a-real-one"
# The simulated API runs in this process, on loopback: no account budget to leave room in.
DEMO_BUDGET = 600_000.0
# The demo's mark in its database's header (SQLite's application_id: "AAId"): only a file that carries it is
# replaced, so a --path pointing at a real database is refused rather than overwritten.
APPLICATION_ID = int.from_bytes(b"AAId", "big")
SAMPLE_QUERY = """SELECT status, count(*) AS transcripts, round(sum(audio_duration) / 60.0, 1) AS audio_minutes
FROM transcripts GROUP BY status ORDER BY transcripts DESC"""


def run(path: Path, say: Callable[[str], None], on_sync: Callable[[str, RunStats], None]) -> None:
    """Three syncs of a simulated account into a new SQLite file at `path`, narrated through `say`."""
    if path.exists() and not made_by_demo(path):
        raise UsageError(
            f"{path} is not a database the demo made, and the demo replaces only its own: give --path a new file"
        )
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.commit()
        # Into the file itself at once: a demo stopped halfway leaves a file the next demo can tell as its own.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    rng = random.Random(7)
    with FakeAssemblyAI(api_key=DEMO_KEY, latency=0.002, seed=7) as api:
        api.malformed_bodies = False  # a first look shows clean data; the tests serve the drifted shapes
        start = datetime.now(timezone.utc).replace(tzinfo=None, hour=8, minute=0, second=0) - timedelta(days=7)
        for day in range(7):  # a week of work, a few dozen transcripts a day, the last ones still running
            api.clock = max(api.clock, start + timedelta(days=day))
            api.add(30 + rng.randrange(10), status="completed")
            api.add(rng.randrange(4), status="error")
        api.add(8, status="processing")
        api.add(6, status="queued")

        def sync(step: str) -> None:
            say(f"\n{step}")
            with ApiClient(api.base_url, DEMO_KEY, max_retries=2, backoff_seconds=0.05, requests_per_minute=DEMO_BUDGET) as client:
                stats_ = run_sync(engine, client, ACCOUNT, SyncOptions(hydration=HydrateOptions(workers=8, store_words=True)))
            on_sync(ACCOUNT, stats_)

        say(f"A simulated AssemblyAI API is listening on {api.base_url} with {len(api.listing())} transcripts.")
        sync("1. The first sync: every transcript of the last 90 days, then the details of the finished ones.")

        pending = [item for item in api.listing() if item["status"] in ("queued", "processing")]
        for item in pending:
            api.set_status(item["id"], "processing" if item["status"] == "queued" else rng.choice(["completed", "completed", "error"]))
        api.add(25, status="queued")
        api.delete(rng.choice(api.listing()[30:150])["id"])  # within the newest page: a plain sync sees it
        sync(f"2. Meanwhile {len(pending)} transcripts moved on, 25 arrived and one was deleted. The next sync:")

        sync("3. Nothing changed since: an idle sync costs one request.")

    with engine.connect() as conn:
        rows = conn.execute(text(SAMPLE_QUERY)).all()
        daily = stats.daily(conn, *_days(conn), [ACCOUNT])
    engine.dispose()
    say("\nWhat an analyst sees, for example:\n" + SAMPLE_QUERY)
    say(text_table(["status", "transcripts", "audio_minutes"], [["-" if v is None else str(v) for v in row] for row in rows]))
    say("\n`aai-etl stats` on the same data:\n" + stats.render(daily, "table"))
    say(f"\nThe database is {path}. Look around:\n" + "\n".join(f"  {command}" for command in look_around(path)))
    say("With a real key: ASSEMBLYAI_API_KEY=... aai-etl sync")


def made_by_demo(path: Path) -> bool:
    """Whether the file is a SQLite database marked as the demo's (SQLite's application_id, in its header)."""
    with path.open("rb") as file:
        header = file.read(72)
    return header[:16] == b"SQLite format 3\x00" and int.from_bytes(header[68:72], "big") == APPLICATION_ID


def look_around(path: Path) -> list[str]:
    """Commands that show the demo's database: the ones the demo prints (and the tests run)."""
    url = shlex.quote(f"sqlite:///{path}")
    return [
        f"aai-etl status --database-url {url}",
        f"aai-etl stats --database-url {url}",
        f"aai-etl export --database-url {url} --format csv --output demo-export.csv",
        f"sqlite3 {shlex.quote(str(path))} 'SELECT id, status, created, text FROM transcripts LIMIT 5'",
    ]


def _days(conn) -> tuple[date, date]:
    first, last = conn.execute(text("SELECT min(date(created)), max(date(created)) FROM transcripts")).one()
    return date.fromisoformat(first), date.fromisoformat(last)

