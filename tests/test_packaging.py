"""Ready for a package index: the sdist and the wheel carry the license, the example config and the metadata."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """An sdist, and the wheel built from that sdist (as a package index's users get it), and the build log."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    (sdist,) = out.glob("aai_etl-*.tar.gz")
    (wheel,) = out.glob("aai_etl-*.whl")
    return sdist, wheel, build.stdout + build.stderr


def test_the_sdist_carries_the_license_and_the_example(built):
    sdist, _, _ = built
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"LICENSE", "README.md", "etl/config.example.toml", "migrations/versions/0001_initial.py"} <= names


def test_the_wheel_carries_the_example_and_the_metadata(built):
    _, wheel, log = built
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    assert "etl/config.example.toml" in names
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    text = archive.read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "Classifier: Operating System :: POSIX" in text
    assert "Project-URL: Homepage, https://github.com/aai-etl/aai-etl" in text
    assert "deprecated" not in log.lower()


def test_gitignore_covers_the_lock_files():
    patterns = [line for line in (ROOT / ".gitignore").read_text().splitlines() if line and not line.startswith("#")]
    for name in ("aai-etl.db-sync-default.lock", "aai-etl.db-schema.lock", "aai-etl.db-wal"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
