"""Secrets stay out wherever the API or the user puts them: presigned credentials quoted in an error, a body or
an API error message; an API key with a trailing newline or characters no HTTP header carries; the password
of any URL in a message."""

from __future__ import annotations

import json

import pytest
from conftest import API_KEY, cli_env, run_cli, stored
from sqlalchemy import create_engine, select

from etl.store.schema import sync_runs, transcript_bodies
from etl.tools.simulator import Fault

S3 = (
    "https://bucket.s3.amazonaws.com/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261125"
    "&X-Amz-Date=20261125T000000Z&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLETOKEN&X-Amz-Signature=0123abcdef"
)
SECRETS = ("0123abcdef", "AKIAEXAMPLE", "FwoGZXIvYXdzEXAMPLETOKEN")
DOWNLOAD_FAILED = f"Download error, unable to download {S3}"


def everything_stored(database_url: str, tmp_path, fake) -> str:
    """The rows, the bodies, the runs and every export format, as one text."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        bodies = [row.body for row in conn.execute(select(transcript_bodies))]
        runs = [row.error for row in conn.execute(select(sync_runs))]
    engine.dispose()
    texts = [json.dumps(list(stored(database_url).values()), default=str), json.dumps(bodies), json.dumps(runs)]
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"export.{fmt}"
        assert run_cli(["export", "--format", fmt, "--output", str(out)], cli_env(fake, database_url)).exit_code == 0
        texts.append(out.read_text())
    parquet = tmp_path / "parquet"
    assert run_cli(["export", "--format", "parquet", "--output-dir", str(parquet)], cli_env(fake, database_url)).exit_code == 0
    texts += [str(path.read_bytes()) for path in parquet.rglob("*.parquet")]
    return "\n".join(texts)


def test_presigned_credentials_quoted_in_an_error_are_redacted_everywhere(database_url, fake, tmp_path):
    (failed,) = fake.add(1, status="error", audio_url=S3, error=DOWNLOAD_FAILED)
    (refused,) = fake.add(1, audio_url=S3)
    # A detail fetch the API refuses with a message that quotes the audio URL.
    fake.break_transcript(refused["id"], Fault.status(400, {"error": f"cannot read {S3}"}))
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert rows[failed["id"]]["error"].startswith("Download error, unable to download https://bucket.s3.amazonaws.com/a.mp3?")
    assert "X-Amz-Signature=REDACTED" in rows[failed["id"]]["error"] == rows[failed["id"]]["raw"]["error"]
    assert "X-Amz-Signature=REDACTED" in rows[refused["id"]]["hydrate_error"]
    text = everything_stored(database_url, tmp_path, fake) + result.output
    assert "REDACTED" in text
    for secret in SECRETS:
        assert secret not in text


def test_presigned_credentials_in_an_error_are_kept_when_the_setting_says_so(database_url, fake, tmp_path):
    config = tmp_path / "keep.toml"
    config.write_text("keep_presigned_credentials = true\n")
    (failed,) = fake.add(1, status="error", audio_url=S3, error=DOWNLOAD_FAILED)
    assert run_cli(["sync", "--config", str(config)], cli_env(fake, database_url)).exit_code == 0
    row = stored(database_url)[failed["id"]]
    assert row["error"] == DOWNLOAD_FAILED and row["raw"] == failed


@pytest.mark.parametrize("spacing", ["\n", " \r\n", "\t"])
def test_a_key_with_surrounding_whitespace_works(database_url, fake, spacing):
    fake.add(3)
    env = cli_env(fake, database_url, ASSEMBLYAI_API_KEY=f"{spacing}{API_KEY}{spacing}")
    result = run_cli(["sync", "--log-format", "json"], env)
    assert result.exit_code == 0, result.output
    assert len(stored(database_url)) == 3
    check = run_cli(["check"], env)
    assert check.exit_code == 0, check.output
    assert API_KEY not in result.output + check.output


@pytest.mark.parametrize("key", [f"{API_KEY}\u2014x", f"{API_KEY[:10]}\n{API_KEY[10:]}", f"{API_KEY}\x1b[0m"],
                         ids=["not-latin-1", "newline-inside", "control"])
@pytest.mark.parametrize("command", ["sync", "check"])
def test_a_key_no_header_can_carry_is_refused_in_one_line_without_the_key(database_url, fake, key, command):
    fake.add(1)
    result = run_cli([command], cli_env(fake, database_url, ASSEMBLYAI_API_KEY=key))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    line = next(line for line in lines if "ASSEMBLYAI_API_KEY" in line)
    assert "characters an HTTP header cannot carry" in line
    if command == "sync":
        assert len(lines) == 1
    for part in (API_KEY, API_KEY[:10], API_KEY[10:]):
        assert part not in result.output
    assert not fake.requests


def test_a_pushgateway_password_is_masked_in_its_warning(database_url, fake):
    fake.add(1)
    # Port 9 (discard) is closed here: the push fails, and its warning names the URL.
    env = cli_env(fake, database_url, AAI_ETL_PUSHGATEWAY="http://metrics:pushpassword1@127.0.0.1:9/")
    result = run_cli(["sync", "--no-hydrate"], env)
    assert result.exit_code == 0, result.output
    assert "could not push metrics" in result.output and "http://metrics:***@127.0.0.1:9/" in result.output
    assert "pushpassword1" not in result.output


@pytest.mark.parametrize("variable", ["AAI_ETL_PUSHGATEWAY", "ASSEMBLYAI_BASE_URL"])
def test_a_url_password_is_masked_in_a_configuration_error(fake, sqlite_url, variable):
    result = run_cli(["sync"], cli_env(fake, sqlite_url, **{variable: "ftp://user:urlpassword1@example.com/"}))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "ftp://user:***@example.com/" in line and "urlpassword1" not in line
