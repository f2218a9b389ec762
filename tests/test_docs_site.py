"""The documentation site as a reader meets it: its reference pages made from the code, two pages in a real browser.

`.ci/run` builds the site with `mkdocs build --strict` (a broken link or a missing page fails the build) into
the folder AAI_ETL_DOCS_SITE names, and sets AAI_ETL_REQUIRE_DOCS=1: then a missing site or browser fails
these tests instead of skipping them. The screenshots are kept in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import mkdocs_hooks as load_hooks
from conftest import required
from test_documented_commands import commands

from etl.cli import cli
from etl.store.schema import metadata

ROOT = Path(__file__).resolve().parent.parent

mkdocs_hooks = load_hooks()
SITE = os.environ.get("AAI_ETL_DOCS_SITE")
ARTIFACTS = ROOT / "test-artifacts"


def test_the_schema_page_has_every_table_and_column_with_a_meaning():
    page = mkdocs_hooks.schema()
    for table in metadata.tables.values():
        section = page.split(f"### `{table.name}`\n", 1)[1].split("\n### ", 1)[0]
        for column in table.columns:
            row = re.search(rf"^\| `{column.name}` \| [\w ()]+ \| (yes|no) \| (.+) \|$", section, re.M)
            assert row and row.group(2).strip() not in ("", "None"), f"{table.name}.{column.name} has no row with a meaning"


def test_the_commands_page_is_every_commands_help():
    page = mkdocs_hooks.commands()
    for path, _ in [((), cli), *commands()]:
        output = CliRunner().invoke(cli, [*path, "--help"], prog_name="aai-etl", terminal_width=80).output
        assert output.strip() in page, f"the commands page lacks `aai-etl {' '.join(path)} --help` as it is"


def test_the_changelog_page_is_the_changelog():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert mkdocs_hooks.changelog().strip() in changelog and "## [Unreleased]" in mkdocs_hooks.changelog()


def _site() -> Path:
    built = SITE if SITE and (Path(SITE) / "index.html").is_file() else None
    missing = f"no built documentation site at AAI_ETL_DOCS_SITE={SITE!r}: run `mkdocs build --strict -d DIR` and set it"
    return Path(required(built, missing, "AAI_ETL_REQUIRE_DOCS"))


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return required(found, "Chromium is not installed: apt-get install chromium", "AAI_ETL_REQUIRE_DOCS")


@pytest.fixture(scope="module")
def served_site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(_site()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _browse(url: str, *flags: str) -> str:
    # The flags keep a headless Chromium off the network it has no access to here.
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={ARTIFACTS / '.chromium'}", *flags, url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(
    ("page", "heading", "must_show"),
    [
        ("", "aai-etl", ["What it guarantees", "Where to start"]),
        ("data/schema/", "The schema", ["unlisted_at", "change_seq", "sync_runs"]),
    ],
    ids=["home", "schema"],
)
def test_a_page_renders_in_chromium_with_its_headings_and_tables(served_site, page, heading, must_show):
    ARTIFACTS.mkdir(exist_ok=True)
    dom = _browse(f"{served_site}/{page}", "--dump-dom", "--virtual-time-budget=5000")
    assert re.search(rf"<h1[^>]*>{re.escape(heading)}", dom), f"no <h1> {heading!r} in the rendered page"
    assert "<table" in dom and "<td" in dom, "the page shows no table"
    for text in must_show:
        assert text in dom, f"{text!r} is not on the rendered page"
    name = ARTIFACTS / f"docs-{page.strip('/').replace('/', '-') or 'home'}.png"
    name.unlink(missing_ok=True)
    _browse(f"{served_site}/{page}", f"--screenshot={name}", "--window-size=1280,1600", "--virtual-time-budget=5000")
    assert name.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG"
