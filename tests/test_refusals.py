"""What one mistaken command would lose, it refuses with one line and exit 2: a downgrade that drops tables
holding rows (unless --yes), a demo pointed at a file it did not make, an export from a watermark the
database never handed out."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, stored, sync
from sqlalchemy import create_engine, inspect, text

from etl.store import migrate


def table_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        names = sorted(set(inspect(conn).get_table_names()) - {"alembic_version", "change_counter"})
        counts = {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}
    engine.dispose()
    return counts


def test_a_downgrade_that_drops_rows_is_refused_without_yes(database_url, fake):
    fake.add(40)
    env = cli_env(fake, database_url)
    assert run_cli(["sync"], env).exit_code == 0  # details too: transcript_bodies holds rows
    before = table_counts(database_url)
    assert before["transcripts"] == 40 and before["transcript_bodies"] == 40

    refused = run_cli(["db", "downgrade", "base"], env)
    held = {name: rows for name, rows in before.items() if rows}
    listed = ", ".join(f"{name}: {rows:,}" for name, rows in held.items())
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"aai-etl: error: downgrading to 'base' would drop {len(held)} tables holding {sum(held.values()):,} rows "
        f"({listed}): back the database up, then run again with --yes to drop them\n"
    )
    assert table_counts(database_url) == before  # rolled back whole, the schema too
    assert run_cli(["db", "current"], env).stdout.strip() == f"{migrate.HEAD} (head)"

    # A step that drops only empty tables needs no --yes: 0007 -> 0006 drops sync_run_writers.
    assert before.get("sync_run_writers", 0) == 0
    assert run_cli(["db", "downgrade", "0006"], env).stdout == "schema at 0006\n"

    dropped = run_cli(["db", "downgrade", "base", "--yes"], env)
    assert dropped.exit_code == 0, dropped.output
    assert dropped.stdout == f"schema at base; dropped {len(held)} tables holding {sum(held.values()):,} rows ({listed})\n"
    assert table_counts(database_url) == {}


def test_a_downgrade_of_an_empty_database_needs_no_yes(database_url, fake):
    env = cli_env(fake, database_url)
    assert run_cli(["db", "upgrade"], env).exit_code == 0
    assert run_cli(["db", "downgrade", "base"], env).stdout == "schema at base\n"


def demo(path: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("aai-etl")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ASSEMBLYAI_", "AAI_ETL_"))}
    return subprocess.run([str(script), "demo", "--path", str(path)], env=env, capture_output=True, text=True, timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["synced database", "text file"])
def test_the_demo_replaces_only_its_own_file(tmp_path, fake, kind):
    target = tmp_path / "transcripts.db"
    if kind == "synced database":
        fake.add(12)
        assert sync(fake, f"sqlite:///{target}").exit_code == 0
    else:
        target.write_text("id,status\nabc,completed\n")
    before = digest(target)
    refused = demo(target)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"aai-etl: error: {target} is not a database the demo made, and the demo replaces only its own: "
        "give --path a new file\n"
    )
    assert digest(target) == before
    if kind == "synced database":
        assert len(stored(f"sqlite:///{target}")) == 12


def test_the_demo_replaces_its_own_earlier_file(tmp_path):
    target = tmp_path / "demo.db"
    assert demo(target).returncode == 0
    again = demo(target)
    assert again.returncode == 0, again.stderr
    assert "sync of 'default' done:" in again.stdout


def highest(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(change_seq) FROM transcripts")).scalar_one()
    engine.dispose()
    return top


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_an_export_from_a_watermark_the_database_never_handed_out_is_refused(database_url, fake, tmp_path, fmt):
    fake.add(5)
    assert sync(fake, database_url).exit_code == 0
    env = cli_env(fake, database_url)
    top = highest(database_url)
    where = ["--format", "parquet", "--output-dir", str(tmp_path / "feed")] if fmt == "parquet" else []
    for since in (top + 1, 3000, -5):
        refused = run_cli(["export", "--since", str(since), *where], env)
        assert (refused.exit_code, refused.stdout) == (2, ""), since
        assert refused.stderr == (
            f"aai-etl: error: --since {since} is not a watermark of this database, whose highest watermark is {top} "
            "(and none is below 0): it came from another database, or from this one before a rebuild or restore; "
            "export from --since 0 to read every row again\n"
        )
    assert not (tmp_path / "feed").exists()
    # The highest itself is a watermark this database handed out: nothing after it, and the same watermark.
    for since in (top, 0):
        accepted = run_cli(["export", "--since", str(since), *where], env)
        assert accepted.exit_code == 0, accepted.output
        printed = accepted.stdout if fmt == "parquet" else accepted.stderr.splitlines()[0]
        assert printed.strip() == str(top)
