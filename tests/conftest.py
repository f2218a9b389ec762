"""Fixtures: a fresh database of each kind, a fake AssemblyAI API on loopback, and ways to run the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, make_url, select, text

from etl.cli import cli
from etl.store.schema import transcripts
from etl.tools.simulator import FakeAssemblyAI

API_KEY = "test-key-5e1f0c3a9b7d4e2f8a6c"
# The PostgreSQL tests wipe the public schema of this database before each test: point it at a throw-away one.
POSTGRES_URL = os.environ.get("AAI_ETL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/aai_etl_test")
# .ci/run sets this: in CI a missing PostgreSQL is a failure, not a skip.
POSTGRES_REQUIRED = os.environ.get("AAI_ETL_REQUIRE_POSTGRES") == "1"


def _postgres_problem() -> str | None:
    """None when the test database is usable (created if the server lacks it), else why not."""
    url = make_url(POSTGRES_URL)
    try:
        with create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT").connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as exc:  # any reason at all means: no usable server
        return f"PostgreSQL at {url.render_as_string(hide_password=True)} is not usable: {str(exc).splitlines()[0]}"
    return None


_POSTGRES_PROBLEM = _postgres_problem()


def empty_database(kind: str, directory: Path) -> str:
    """A URL of an empty database: a new SQLite file, or the PostgreSQL test database with its schema wiped."""
    if kind == "sqlite":
        fd, path = tempfile.mkstemp(suffix=".db", dir=directory)
        os.close(fd)
        os.unlink(path)
        return f"sqlite:///{path}"
    if _POSTGRES_PROBLEM:
        if POSTGRES_REQUIRED:
            pytest.fail(_POSTGRES_PROBLEM)
        pytest.skip(_POSTGRES_PROBLEM)
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    return empty_database(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'transcripts.db'}"


@pytest.fixture
def fake() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI(api_key=API_KEY) as api:
        yield api


@pytest.fixture(params=["oldest", "newest"])
def fake_either_after_id(request) -> Iterator[FakeAssemblyAI]:
    """The fake under both undocumented after_id behaviours: the sync must be exact under each."""
    with FakeAssemblyAI(api_key=API_KEY, after_id_mode=request.param) as api:
        yield api


def cli_env(fake: FakeAssemblyAI, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "ASSEMBLYAI_API_KEY": API_KEY,
        "ASSEMBLYAI_BASE_URL": fake.base_url,
        "AAI_ETL_DATABASE_URL": database_url,
        "AAI_ETL_MAX_RETRIES": "3",
        # The simulated API is on this machine: no budget to share (tests of the budget set their own).
        "AAI_ETL_REQUESTS_PER_MINUTE": "600000",
    }
    env.update(extra)
    return env


def clean_env(env: dict[str, str]) -> dict[str, str | None]:
    """`env` for click's runner, with every variable of ours the test process has (CI's AAI_ETL_REQUIRE_DOCS,
    say) unset: a command sees only what the test gives it, and warns of no variable it does not know."""
    return {**{name: None for name in os.environ if name.startswith(("ASSEMBLYAI_", "AAI_ETL_"))}, **env}


def run_cli(args: list[str], env: dict[str, str]) -> Result:
    """The CLI in-process through click's runner, with a clean environment of our own."""
    return CliRunner().invoke(cli, args, env=clean_env(env), catch_exceptions=False)


def sync(fake: FakeAssemblyAI, database_url: str, *args: str, **extra: str) -> Result:
    """`aai-etl sync` of the list alone: the tests of hydration (details) ask for it themselves."""
    return run_cli(["sync", "--no-hydrate", *args], cli_env(fake, database_url, **extra))


def spawn(args: list[str], env: dict[str, str], **popen) -> subprocess.Popen:
    """The installed console script in a real process (for kills and overlaps)."""
    full_env = {name: value for name, value in os.environ.items() if not name.startswith(("ASSEMBLYAI_", "AAI_ETL_"))}
    full_env.update(env)
    script = Path(sys.executable).with_name("aai-etl")
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([str(script), *args], env=full_env, **popen)


def mkdocs_hooks() -> ModuleType:
    """The documentation site's hooks (mkdocs_hooks.py at the root), loaded from their file: putting the root on
    sys.path would make importlib.metadata find the checkout's aai_etl.egg-info instead of the installed aai-etl."""
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", Path(__file__).resolve().parent.parent / "mkdocs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def required(found: str | None, missing: str, variable: str) -> str:
    """What a test needs from outside the package (a tool in a virtual environment of its own, a built site):
    `found`, or else a failure where CI sets `variable` to 1, a skip that says `missing` elsewhere."""
    if found:
        return found
    if os.environ.get(variable) == "1":
        pytest.fail(missing)
    pytest.skip(missing)


def wait_until(condition, timeout: float = 120.0) -> None:
    """Poll until condition() is true: a run commits each page while the next one downloads. The timeout only
    ends a wait that would never end (a broken run); it says nothing about how soon the condition should hold."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {timeout:.0f}s: the awaited state never came"
        time.sleep(0.02)


def kill_when(process: subprocess.Popen, condition) -> None:
    """SIGKILL the process as soon as condition() holds, or once it has ended. Between looks the test blocks on
    the process for half a millisecond rather than spin: a spinning test takes a core from the run it waits on."""
    while not condition():
        try:
            process.wait(timeout=0.0005)
            break  # it ended: nothing left to catch
        except subprocess.TimeoutExpired:
            pass
    process.send_signal(signal.SIGKILL)
    process.wait()


def lock_released(database_url: str) -> bool:
    """PostgreSQL ends a killed run's session, and with it the run lock, once it notices: a moment later."""
    if not database_url.startswith("postgresql"):
        return True
    engine = create_engine(database_url)
    with engine.connect() as conn:
        # This database's locks only: pg_locks shows those of every database on the server.
        held = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )).scalar()
    engine.dispose()
    return held == 0


def walk_position(database_url: str) -> str | None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        position = conn.execute(text("SELECT walk_before_id FROM sync_cursors")).scalar()
    engine.dispose()
    return position


def stored(database_url: str) -> dict[str, dict]:
    """Every transcript row, keyed by id."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = {row.id: dict(row._mapping) for row in conn.execute(select(transcripts))}
    engine.dispose()
    return rows


def assert_table_equals_api(database_url: str, fake: FakeAssemblyAI, unlisted: set[str] = frozenset()) -> None:
    """The table holds exactly the listed transcripts, each as the API lists it now, plus the `unlisted`
    ones (aged out of the listing), kept and marked."""
    rows = stored(database_url)
    listing = fake.listing()
    assert sorted(rows) == sorted([item["id"] for item in listing] + list(unlisted))
    for item in listing:
        row = rows[item["id"]]
        assert row["raw"] == item, item["id"]
        assert row["status"] == item["status"]
        assert row["error"] == item["error"]
        assert row["audio_url"] == item["audio_url"]
        assert (row["deleted_at"] is not None) == (item["audio_url"] == "http://deleted_by_user"), item["id"]
        assert row["unlisted_at"] is None
    for transcript_id in unlisted:
        assert rows[transcript_id]["unlisted_at"] is not None


def summary_json(result: Result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])
