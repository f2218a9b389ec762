"""The container image: built by deploy/image/build from this tree, and run with buildah against the simulator.

The image's own default command syncs into a SQLite file on a mounted directory as its non-root user; the
CronJobs' command lines sync into PostgreSQL and probe it. Building needs buildah (the build script installs
it with apt-get); where AAI_ETL_REQUIRE_IMAGE=1 (CI) a missing buildah is a failure, elsewhere a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import API_KEY, assert_table_equals_api, empty_database
from sqlalchemy import create_engine, text
from test_deploy import container, cronjobs

ROOT = Path(__file__).resolve().parent.parent
IMAGE = f"aai-etl:{version('aai-etl')}"
VOLUME = "/var/lib/aai-etl"
# buildah's defaults where nothing else is set: vfs storage and chroot isolation run inside a container too.
BUILDAH_ENV = {**os.environ, "STORAGE_DRIVER": os.environ.get("STORAGE_DRIVER", "vfs"), "BUILDAH_ISOLATION": "chroot"}


def buildah(*args: str, **run) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", *args], env=BUILDAH_ENV, capture_output=True, text=True, **run)


@pytest.fixture(scope="module")
def image_config() -> dict:
    """The image built from this tree by the build script users run; its OCI config."""
    if shutil.which("buildah") is None and os.environ.get("AAI_ETL_REQUIRE_IMAGE") != "1":
        pytest.skip("buildah is not installed: deploy/image/build installs it with apt-get (CI sets AAI_ETL_REQUIRE_IMAGE=1)")
    built = subprocess.run([str(ROOT / "deploy" / "image" / "build")], env=BUILDAH_ENV, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == IMAGE
    inspected = buildah("inspect", "--type", "image", IMAGE, check=True)
    return json.loads(inspected.stdout)["OCIv1"]["config"]


@pytest.fixture
def working_container(image_config) -> Iterator[str]:
    name = buildah("from", "--pull-never", IMAGE, check=True).stdout.strip()
    yield name
    buildah("rm", name, check=True)


def run_in(name: str, command: list[str], env: dict[str, str], volume: Path | None = None) -> subprocess.CompletedProcess:
    """One command in the container, on the host's network (the simulator and PostgreSQL are on loopback)."""
    options = ["--network", "host", *(f"--env={key}={value}" for key, value in env.items())]
    if volume is not None:
        options += ["--volume", f"{volume}:{VOLUME}"]
    return buildah("run", *options, name, "--", *command)


def api_env(fake) -> dict[str, str]:
    return {"ASSEMBLYAI_API_KEY": API_KEY, "ASSEMBLYAI_BASE_URL": fake.base_url, "AAI_ETL_REQUESTS_PER_MINUTE": "600000"}


def test_the_cronjobs_name_the_image_this_version_builds():
    for name, cronjob in cronjobs().items():
        assert container(cronjob)["image"].rsplit("/", 1)[-1] == IMAGE, name


def test_the_image_runs_aai_etl_as_a_non_root_user_with_no_key(image_config, working_container):
    assert image_config["Entrypoint"] == ["aai-etl"] and image_config["Cmd"] == ["sync"]
    assert VOLUME in image_config["Volumes"] and image_config["WorkingDir"] == VOLUME
    uid = image_config["User"].split(":")[0]
    assert uid.isdigit() and uid != "0", "a numeric non-root user, which runAsNonRoot can check"
    assert f"AAI_ETL_DATABASE_URL=sqlite:///{VOLUME}/aai-etl.db" in image_config["Env"]
    assert not [line for line in image_config["Env"] if "KEY" in line.split("=")[0]]
    helped = run_in(working_container, ["aai-etl", "--help"], {})
    assert helped.returncode == 0 and "Usage: aai-etl" in helped.stdout, helped.stderr
    python = run_in(working_container, ["python3", "-c", "import sys; print(sys.version_info >= (3, 11))"], {})
    assert python.stdout.strip() == "True", python.stderr


def test_the_default_command_syncs_into_sqlite_on_the_volume(image_config, working_container, fake, tmp_path):
    fake.add(30)
    fake.add(3, status="error")
    fake.add(2, status="processing")
    volume = tmp_path / "volume"
    volume.mkdir()
    uid = int(image_config["User"].split(":")[0])
    if os.geteuid() == 0:
        os.chown(volume, uid, uid)
    else:
        volume.chmod(0o777)

    synced = run_in(working_container, [*image_config["Entrypoint"], *image_config["Cmd"]], api_env(fake), volume)
    assert synced.returncode == 0, synced.stderr
    assert API_KEY not in synced.stdout + synced.stderr
    database = volume / "aai-etl.db"
    assert database.stat().st_uid == uid != 0, "the sync ran as the image's non-root user"
    url = f"sqlite:///{database}"
    assert_table_equals_api(url, fake)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transcripts WHERE hydrated_at IS NOT NULL")).scalar() == 33
    engine.dispose()

    probed = run_in(working_container, ["aai-etl", "status", "--max-age", "2h"], {}, volume)
    assert probed.returncode == 0, probed.stderr
    assert f"sqlite:///{VOLUME}/aai-etl.db" in probed.stdout


def test_the_cronjobs_run_in_the_image_against_postgresql(image_config, working_container, fake, tmp_path):
    fake.add(25)
    fake.add(2, status="queued")
    url = empty_database("postgresql", tmp_path)
    jobs = cronjobs()
    sync_job = container(jobs["aai-etl"])
    args = ["http://127.0.0.1:9" if before == "--pushgateway" else arg for before, arg in zip(["", *sync_job["args"]], sync_job["args"], strict=False)]
    synced = run_in(working_container, [*sync_job["command"], *args], {**api_env(fake), "AAI_ETL_DATABASE_URL": url})
    assert synced.returncode == 0, synced.stderr
    assert_table_equals_api(url, fake)

    probe_job = container(jobs["aai-etl-probe"])
    probed = run_in(working_container, [*probe_job["command"], *probe_job["args"]], {"AAI_ETL_DATABASE_URL": url})
    assert probed.returncode == 0, probed.stderr
    # The probe bites inside the image too: a database no sync has written fails it.
    empty_database("postgresql", tmp_path)
    failed = run_in(working_container, [*probe_job["command"], *probe_job["args"]], {"AAI_ETL_DATABASE_URL": url})
    assert failed.returncode == 1 and failed.stderr.startswith("aai-etl: "), failed.stderr
