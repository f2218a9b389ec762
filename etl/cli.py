"""click commands: parse, call one function, turn errors into messages."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from etl import __version__, derive, export, interrupt, migrate, parquet, stats, status
from etl.client import ApiClient
from etl.config import Settings, load_settings
from etl.demo import run as run_demo
from etl.db import connect, first_line, make_engine
from etl.errors import AccountsFailed, EtlError
from etl.hydrate import HydrateOptions
from etl.report import Reporter
from etl.sync import derive_from_bodies, run_sync

log = logging.getLogger(__name__)

_OPTIONS = "aai_etl.options"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # ctx.meta is shared by the group and its subcommand, so an option works before or after the subcommand.
    if value is not None:
        ctx.meta.setdefault(_OPTIONS, {})[param.name] = value


def common_options(command: Callable) -> Callable:
    """Options every command takes, before or after the subcommand name."""
    options = [
        (("--config", "config_path"), {"type": click.Path(dir_okay=False), "envvar": "AAI_ETL_CONFIG",
                                       "help": "TOML settings file (see config.example.toml).  [env: AAI_ETL_CONFIG]"}),
        (("--database-url",), {"help": "SQLAlchemy URL.  [env: AAI_ETL_DATABASE_URL; default: sqlite:///aai-etl.db]"}),
        (("--log-format",), {"type": click.Choice(["text", "json"]), "help": "Log lines as text or JSON."}),
        (("--quiet", "-q"), {"is_flag": True, "default": None, "help": "Only warnings and errors: no summary, no progress."}),
    ]
    for names, settings in reversed(options):
        command = click.option(*names, expose_value=False, callback=_remember, **settings)(command)
    return command


account_option = click.option(
    "--account", "account_name", metavar="NAME", help="Only this account of the config's [[accounts]] (default: all)."
)


class _Group(click.Group):
    """Turns every expected failure into one line and its exit status, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        reporter = Reporter(secrets=[os.environ.get("ASSEMBLYAI_API_KEY")])
        ctx.meta["aai_etl.reporter"] = reporter
        try:
            return super().invoke(ctx)
        except EtlError as exc:
            ctx.meta["aai_etl.reporter"].error(str(exc))
            ctx.exit(exc.exit_code)
        except DBAPIError as exc:
            # A connection that worked and then failed mid-run (server restart, disk full).
            ctx.meta["aai_etl.reporter"].error(f"database error: {first_line(exc)}; everything committed so far is kept")
            ctx.exit(1)
        except KeyboardInterrupt:
            ctx.meta["aai_etl.reporter"].error("interrupted; everything committed so far is kept, the next run resumes")
            ctx.exit(130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="aai-etl")
@common_options
def cli() -> None:
    """Keep your AssemblyAI transcripts in your own SQL database."""


def _settings() -> Settings:
    ctx = click.get_current_context()
    options = dict(ctx.meta.get(_OPTIONS, {}))
    settings = load_settings(options.pop("config_path", None), **options)
    reporter = Reporter(settings.log_format, settings.quiet, settings.secrets + [os.environ.get("ASSEMBLYAI_API_KEY")])
    ctx.meta["aai_etl.reporter"] = reporter
    return settings


def _reporter() -> Reporter:
    return click.get_current_context().meta["aai_etl.reporter"]


@cli.command()
@account_option
@click.option("--full", is_flag=True, help="Walk the whole listing: catch deletions of older transcripts (a reconcile).")
@click.option("--hydrate/--no-hydrate", default=None, help="Fetch each final transcript's details (default: the hydrate setting, true).")
@common_options
def sync(account_name: str | None, full: bool, hydrate: bool | None) -> None:
    """Fetch new transcripts, status changes and transcript details into the database."""
    settings = _settings()
    _run_accounts(settings, account_name, full=full, listing=True, hydrate=settings.hydrate if hydrate is None else hydrate)


@cli.command("hydrate")
@account_option
@common_options
def hydrate_command(account_name: str | None) -> None:
    """Fetch the details of final transcripts that lack them, without syncing the list."""
    _run_accounts(_settings(), account_name, full=False, listing=False, hydrate=True)


def _run_accounts(settings: Settings, account_name: str | None, *, full: bool, listing: bool, hydrate: bool) -> None:
    accounts = settings.select(account_name)
    engine = make_engine(settings.database_url)
    reporter = _reporter()
    hydration = HydrateOptions(
        settings.hydrate_workers, settings.store_words, settings.store_bodies, derive.Deriver(settings.derived_tables)
    ) if hydrate else None
    failed: dict[str, int] = {}
    for account in accounts:
        try:
            with ApiClient.for_account(settings, account) as client:
                stats = run_sync(
                    engine, client, account.name, reporter.progress, full=full, listing=listing, hydration=hydration
                )
            reporter.summary(account.name, stats, listing)
        except EtlError as exc:
            if len(accounts) == 1:
                raise
            # One failing account must not stop the others.
            reporter.error(f"account '{account.name}': {exc}")
            failed[account.name] = exc.exit_code
    if failed:
        raise AccountsFailed(failed, len(accounts))


@cli.command("derive")
@account_option
@click.option("--again", is_flag=True, help="Derive from every stored body, not only those never derived (after turning a table on).")
@click.option("--refetch", is_flag=True, help="Queue the transcripts fetched without a stored body for the next `aai-etl hydrate`.")
@common_options
def derive_command(account_name: str | None, again: bool, refetch: bool) -> None:
    """Fill the audio intelligence tables from stored bodies for transcripts fetched before: no API requests."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    say = (lambda line: None) if settings.quiet else _reporter().echo
    for account in settings.select(account_name):
        count, without = derive_from_bodies(engine, account.name, settings.derived_tables, again=again, refetch=refetch)
        if refetch:
            say(f"'{account.name}': {count:,} transcripts queued; `aai-etl hydrate` fetches them again")
            continue
        say(f"'{account.name}': tables derived for {count:,} transcripts from their stored bodies")
        if without:
            log.warning(
                "'%s': %s transcripts were fetched with store_bodies off, so their tables can only come from a new "
                "fetch: run `aai-etl derive --refetch`, then `aai-etl hydrate` (one request each)", account.name, f"{without:,}"
            )


@cli.command("status")
@account_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@common_options
def status_command(account_name: str | None, as_json: bool) -> None:
    """Show where the sync stands: cursor, pending transcripts, counts, last runs."""
    settings = _settings()
    names = [account.name for account in settings.select(account_name)]
    with _connect(settings) as conn:
        report = status.gather(conn, names)
    _reporter().echo(json.dumps(report) if as_json else status.render(report))


@cli.command("stats")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day (default: 30 days ago).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day (default: today).")
@account_option
@click.option("--format", "fmt", type=click.Choice(stats.FORMATS), default="table", show_default=True)
@click.option("--view", "view_name", type=click.Choice(("transcripts", *stats.VIEWS)), default="transcripts", show_default=True,
              help="transcripts: counts, audio hours, error rate, turnaround; the others: from the audio intelligence tables.")
@common_options
def stats_command(since: datetime | None, until: datetime | None, account_name: str | None, fmt: str, view_name: str) -> None:
    """Daily counts by status, audio hours, error rate and turnaround (median, p95); or --view an audio intelligence figure."""
    settings = _settings()
    last = until.date() if until else datetime.now(timezone.utc).date()
    first = since.date() if since else last - timedelta(days=30)
    names = [account.name for account in settings.select(account_name)]
    with _connect(settings) as conn:
        migrate.require_current(conn)
        if view_name != "transcripts":
            _reporter().echo(stats.render(stats.view(conn, view_name, first, last, names), fmt, stats.VIEWS[view_name][1]))
            return
        rows = stats.daily(conn, first, last, names)
    _reporter().echo(stats.render(rows, fmt))


@cli.command("export")
@click.option("--since", type=int, metavar="WATERMARK", help="Only rows changed after this watermark (default: all rows).")
@click.option("--format", "fmt", type=click.Choice((*export.FORMATS, "parquet")), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of to stdout.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --format parquet: write DIR/<table>/<from>-<to>.parquet for every table with changes.")
@account_option
@common_options
def export_command(since: int | None, fmt: str, output: str | None, output_dir: Path | None, account_name: str | None) -> None:
    """Write the transcript rows changed after a watermark, then print the next watermark."""
    settings = _settings()
    account = settings.select(account_name)[0].name if account_name else None
    if (fmt == "parquet") != (output_dir is not None) or (fmt == "parquet" and output is not None):
        raise click.UsageError("--format parquet writes to --output-dir DIR (and only it); jsonl and csv to --output or stdout")
    if fmt == "parquet":
        parquet.require_pyarrow()
    with _connect(settings) as conn:
        migrate.require_current(conn)
        if output_dir is not None:
            tables, watermark = parquet.export(conn, since, output_dir, account)
            count = tables.get("transcripts", 0)
        elif output is None:
            count, watermark = export.export(conn, since, fmt, sys.stdout, account)
        else:
            with export.replaced_atomically(output) as out:
                count, watermark = export.export(conn, since, fmt, out, account)
    # The data may be on stdout: the watermark then goes to stderr, so a pipe gets only the rows.
    click.echo(str(watermark), err=output is None and output_dir is None)
    log.info("exported %s rows; next watermark %s", f"{count:,}", watermark)


@cli.command()
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default="aai-etl-demo.db", show_default=True,
              help="The SQLite file to create (replaced if it exists).")
def demo(path: Path) -> None:
    """Watch a sync work against a simulated AssemblyAI API: no key needed."""
    reporter = _reporter()
    run_demo(path, reporter.echo, reporter.summary)


@cli.group()
@common_options
def db() -> None:
    """Manage the database schema (Alembic migrations shipped with aai-etl)."""


@db.command()
@click.argument("revision", default="head")
@common_options
def upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    with _connect(_settings()) as conn:
        migrate.upgrade(conn, revision)
        _reporter().echo(f"schema at {migrate.current_revision(conn) or 'base'}")


@db.command()
@click.argument("revision")
@common_options
def downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (a revision id, -1, or base)."""
    with _connect(_settings()) as conn:
        migrate.downgrade(conn, revision)
        _reporter().echo(f"schema at {migrate.current_revision(conn) or 'base'}")


@db.command()
@common_options
def current() -> None:
    """Print the schema revision of the database."""
    with _connect(_settings()) as conn:
        revision, head = migrate.current_revision(conn), migrate.head_revision()
    _reporter().echo(f"{revision or 'none'}{' (head)' if revision == head else f' (head is {head})'}")


def _connect(settings: Settings) -> Connection:
    return connect(make_engine(settings.database_url))


def main() -> None:
    interrupt.install()
    cli(prog_name="aai-etl")
