"""The migrations ship inside the wheel: an installed aai-etl manages its schema from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_runs_migrations_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("aai_etl-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    # Only the installed copy is importable: the dependencies come from this venv, etl from the wheel.
    env = {**os.environ, "PYTHONPATH": str(target), "AAI_ETL_DATABASE_URL": "sqlite:///installed.db"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "import sys, etl.cli; assert etl.__file__.startswith(sys.argv[1]); sys.argv[1:2] = []; etl.cli.main()",
             str(target), *args],
            cwd=workdir, env=env, capture_output=True, text=True,
        )

    # A new database gets its schema without the migrations (etl/store/views.py holds its views); once downgraded
    # to base, the upgrade runs every migration.
    for command in (["db", "upgrade"], ["db", "downgrade", "base"], ["db", "upgrade"]):
        done = run(*command)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("schema at "), done.stdout
    current = run("db", "current")
    assert current.stdout.strip().endswith("(head)")
    assert (target / "etl" / "store" / "views.py").exists()
    assert (workdir / "installed.db").exists()
    assert not list(workdir.glob("migrations"))
    example = run("config", "example")
    assert example.returncode == 0 and "database_url = " in example.stdout, example.stderr
