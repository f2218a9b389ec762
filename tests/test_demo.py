"""`aai-etl demo`: the whole loop against the simulator, with nothing but the install."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import run_cli
from sqlalchemy import create_engine, text


def test_demo_runs_the_real_sync_against_a_simulated_api(tmp_path):
    script = Path(sys.executable).with_name("aai-etl")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ASSEMBLYAI_", "AAI_ETL_"))}
    result = subprocess.run([str(script), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "A simulated AssemblyAI API is listening on http://127.0.0.1:" in out
    first, second, third = [line for line in out.splitlines() if line.startswith("sync of 'default' done:")]
    assert " 0 updated," in first and "details fetched" in first
    assert second.split(": ", 1)[1].startswith("25 new, ") and ", 1 deleted," in second
    assert "0 new, 0 updated" in third and ", 1 page, 1 request," in third
    assert "`aai-etl stats` on the same data:" in out

    database = tmp_path / "aai-etl-demo.db"
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        total, hydrated, deleted = conn.execute(
            text("SELECT count(*), count(hydrated_at), count(deleted_at) FROM transcripts")
        ).one()
        words = conn.execute(text("SELECT count(*) FROM transcript_words")).scalar()
    engine.dispose()
    assert total == int(out.split(" with ")[1].split()[0]) + 25
    assert hydrated > 200 and deleted == 1 and words > 0

    # The commands it ends with look at the file it wrote.
    look_around = [shlex.split(line) for line in out.splitlines() if line.startswith("  aai-etl ")]
    assert [words[1] for words in look_around] == ["status", "stats", "export"]
    for words in look_around:
        shown = subprocess.run([str(script), *words[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, (words, shown.stderr)
        assert "no schema" not in shown.stdout + shown.stderr
    assert not (tmp_path / "aai-etl.db").exists()

    again = subprocess.run([str(script), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count(" done: ") == 3  # replaces its file, starts over


def test_demo_takes_the_common_options(tmp_path):
    quiet = run_cli(["demo", "--quiet", "--path", str(tmp_path / "demo.db")], {})
    assert (quiet.exit_code, quiet.output) == (0, "")
    # The demo does not take --database-url (its --help does not list it); given to the group, it is refused.
    unknown = run_cli(["demo", "--database-url", "sqlite:///x.db"], {})
    assert unknown.exit_code == 2 and "No such option '--database-url'" in unknown.stderr
    refused = run_cli(["--database-url", "sqlite:///x.db", "demo"], {})
    assert (refused.exit_code, refused.stderr) == (2, (
        "aai-etl: error: the demo never writes to your database, only to its own SQLite file: "
        "use --path FILE, not --database-url\n"
    ))
    assert not (tmp_path / "x.db").exists()
