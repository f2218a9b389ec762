"""Private data is stored privately by default: owner-only SQLite and lock files, no presigned-URL
credentials in the column, raw, bodies or exports; a setting for each says otherwise."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, stored
from sqlalchemy import create_engine, select

from etl.model.credentials import redact_url
from etl.store.schema import transcript_bodies

S3 = (
    "https://bucket.s3.amazonaws.com/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261125"
    "&X-Amz-Date=20261125T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcdef"
)
GCS = "https://storage.googleapis.com/b/a.mp3?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=9f8e7d&X-Goog-Expires=600"
AZURE = "https://acct.blob.core.windows.net/c/a.mp3?sv=2024-01-01&se=2026-12-01&sp=r&sig=abc%2Bdef%3D"
SECRETS = ("0123abcdef", "AKIAEXAMPLE", "9f8e7d", "abc%2Bdef%3D")


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_redact_url_replaces_only_the_credentials():
    assert redact_url(S3).endswith("X-Amz-Credential=REDACTED&X-Amz-Date=20261125T000000Z&X-Amz-Expires=3600"
                                   "&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED")
    assert redact_url(GCS) == GCS.replace("9f8e7d", "REDACTED")
    assert redact_url(AZURE) == AZURE.replace("abc%2Bdef%3D", "REDACTED")
    plain = "https://example.com/a.mp3?signature_of_the_band=1&design=2"
    assert redact_url(plain) == plain


@pytest.mark.parametrize("private", [True, False])
def test_new_sqlite_database_and_lock_files_are_owner_only(tmp_path, fake, usual_umask, private):
    database = tmp_path / "transcripts.db"
    config = tmp_path / "settings.toml"
    config.write_text(f"private_files = {'true' if private else 'false'}\n")
    fake.add(3)
    result = run_cli(["sync", "--no-hydrate", "--config", str(config)], cli_env(fake, f"sqlite:///{database}"))
    assert result.exit_code == 0, result.output
    files = [database, *tmp_path.glob("transcripts.db-*")]
    assert any(path.name.endswith(".lock") for path in files) and any(path.name.endswith("-wal") for path in files)
    for path in files:
        assert mode(path) == (0o600 if private else 0o644), path.name


@pytest.mark.parametrize("content", [b"", b"name,created\nabc,2026-01-01\n"], ids=["empty", "csv"])
def test_a_file_that_is_not_a_sqlite_database_is_refused_with_one_line(tmp_path, fake, content):
    database = tmp_path / "transcripts.db"
    database.write_bytes(content)
    result = run_cli(["sync", "--no-hydrate"], cli_env(fake, f"sqlite:///{database}"))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"the database file {database} is" in line
    assert database.read_bytes() == content


def test_presigned_credentials_are_redacted_in_the_column_raw_bodies_and_export(database_url, fake, tmp_path):
    items = [fake.add(1, audio_url=url)[0] for url in (S3, GCS, AZURE)]
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    for item in items:
        row = rows[item["id"]]
        assert row["audio_url"] == redact_url(item["audio_url"]) == row["raw"]["audio_url"]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        bodies = [row.body for row in conn.execute(select(transcript_bodies))]
    engine.dispose()
    assert len(bodies) == 3
    exported = tmp_path / "export.jsonl"
    assert run_cli(["export", "--output", str(exported)], cli_env(fake, database_url)).exit_code == 0
    stored_text = json.dumps([rows[item["id"]] for item in items], default=str) + json.dumps(bodies) + exported.read_text()
    assert "REDACTED" in exported.read_text()
    for secret in SECRETS:
        assert secret not in stored_text

    again = run_cli(["sync", "--no-hydrate", "--log-format", "json"], cli_env(fake, database_url))
    assert json.loads(again.stdout.strip().splitlines()[-1])["updated"] == 0


def test_presigned_credentials_are_kept_when_the_setting_says_so(database_url, fake, tmp_path):
    config = tmp_path / "keep.toml"
    config.write_text("keep_presigned_credentials = true\n")
    (item,) = fake.add(1, audio_url=S3)
    assert run_cli(["sync", "--config", str(config)], cli_env(fake, database_url)).exit_code == 0
    row = stored(database_url)[item["id"]]
    assert row["audio_url"] == S3 and row["raw"] == item


@pytest.mark.parametrize("private", [True, False])
def test_exports_are_owner_only_as_the_database_is(database_url, fake, tmp_path, usual_umask, private):
    fake.add(4)
    env = cli_env(fake, database_url, AAI_ETL_PRIVATE_FILES="true" if private else "false")
    assert run_cli(["sync"], env).exit_code == 0
    feed, csv_file, parquet = tmp_path / "feed.jsonl", tmp_path / "feed.csv", tmp_path / "parquet" / "feed"
    assert run_cli(["export", "--output", str(feed)], env).exit_code == 0
    assert run_cli(["export", "--format", "csv", "--output", str(csv_file)], env).exit_code == 0
    assert run_cli(["export", "--format", "parquet", "--output-dir", str(parquet)], env).exit_code == 0
    files = [path for path in (tmp_path / "parquet").rglob("*") if path.is_file()]
    folders = [tmp_path / "parquet", *(path for path in (tmp_path / "parquet").rglob("*") if path.is_dir())]
    assert len(files) >= 2 and len(folders) >= 3  # transcripts and status changes, each in its folder
    for path in [feed, csv_file, *files]:
        assert mode(path) == (0o600 if private else 0o644), path
    for path in folders:
        assert mode(path) == (0o700 if private else 0o755), path
