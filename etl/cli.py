"""click commands: parse, call one function, turn errors into messages.

Each command imports the modules it uses when it runs: `--help` then loads neither SQLAlchemy nor requests,
and a scheduled sync loads none of the other commands' modules (tests/test_light_start.py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard

import click

from etl import __version__
from etl.config import CONFIG_VARIABLE, SETTINGS, Settings, load_settings
from etl.errors import AccountsFailed, ConfigError, EtlError, Unhealthy, UsageError
from etl.outputs import export, stats
from etl.outputs.report import Reporter
from etl.store import interrupt

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

_OPTIONS = "aai_etl.options"
_SETTINGS = "aai_etl.settings"
_REPORTER = "aai_etl.reporter"  # the command's Reporter, set before anything can fail
_RESUMES = "aai_etl.resumes"  # set by commands whose interrupted work the next run resumes
_METRICS_OWED = "aai_etl.metrics_owed"  # a run asked for metrics and has not published them yet


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # ctx.meta is shared by the group and its subcommand, so an option works before or after the subcommand.
    if value is not None:
        ctx.meta.setdefault(_OPTIONS, {})[param.name] = value


def common_options(command: Callable, without: tuple[str, ...] = ()) -> Callable:
    """Options every command takes, before or after the subcommand name (but the settings it ignores)."""
    command = _setting_options(command, run_only=False, without=without)
    config: dict[str, Any] = {"type": click.Path(dir_okay=False), "envvar": CONFIG_VARIABLE, "metavar": "PATH",
              "help": f"TOML settings file (`aai-etl config example` prints one).  [env: {CONFIG_VARIABLE}]"}
    return click.option("--config", "config_path", expose_value=False, callback=_remember, **config)(command)


def no_database_options(command: Callable) -> Callable:
    """The common options of a command that never opens the configured database (demo, simulate)."""
    return common_options(command, without=("database_url",))


def _setting_options(command: Callable, *, run_only: bool, without: tuple[str, ...] = ()) -> Callable:
    """A flag for each setting of the settings table that has one (common, or of the runs only)."""
    for setting in reversed(SETTINGS):
        if setting.flags and setting.run_only == run_only and setting.name not in without:
            kind = click.Choice(setting.choices) if setting.choices else setting.kind
            flag = {"is_flag": True, "default": None} if setting.kind is bool else {"type": kind, "metavar": _metavar(setting)}
            help_text = f"{setting.doc}  [env: {setting.variable}]"
            command = click.option(*setting.flags, setting.name, expose_value=False, callback=_remember, help=help_text, **flag)(command)
    return command


def _metavar(setting: Any) -> str | None:
    """What a flag's value is, in a word a user can act on."""
    if setting.choices:
        return None  # click lists the choices
    if setting.url or setting.name.endswith("_url"):
        return "URL"
    if setting.name.endswith("_file"):
        return "PATH"
    return {float: "SECONDS", int: "N"}.get(setting.kind, "TEXT")


account_option = click.option(
    "--account", "account_name", metavar="NAME", help="Only this account of the config's [[accounts]] (default: all)."
)


def run_options(command: Callable) -> Callable:
    """Options of the commands that run a sync: how it reports progress and metrics (the run_only settings)."""
    return _setting_options(command, run_only=True)


class _Command(click.Command):
    """A command whose summary in its group's list is its whole first sentence, and whose help ends with an example."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or (self.help or "").strip().split("\n\n")[0].replace("\n", " ")

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        example = EXAMPLES.get(ctx.command_path.partition(" ")[2])
        if example:
            formatter.write_paragraph()
            formatter.write(f"  Example:  {example}\n")  # unwrapped: a command to copy


class _HelpGroup(_Command, click.Group):
    command_class = _Command
    group_class: type = type  # a group's subgroups are of its class


class _Group(_HelpGroup):
    """Turns every expected failure into one line and its exit status, in one place."""

    group_class = _HelpGroup  # the subgroups' failures come here

    def invoke(self, ctx: click.Context) -> Any:
        reporter = Reporter(secrets=[os.environ.get("ASSEMBLYAI_API_KEY")])
        ctx.meta[_REPORTER] = reporter
        try:
            try:
                interrupt.running()
                return super().invoke(ctx)
            finally:
                interrupt.stopping()  # the outcome is decided: a signal now cannot cut its line or its exit
        except EtlError as exc:
            settings = ctx.meta.get(_SETTINGS)
            source = f" ({exc.setting} from {settings.source(exc.setting)})" if exc.setting and settings else ""
            ctx.meta[_REPORTER].error(f"{exc}{source}")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            self._interrupted(ctx)
        except BrokenPipeError:
            # The reader of stdout stopped reading (`aai-etl export | head -1`): as any Unix tool, stop quietly
            # with SIGPIPE's status, and keep Python's final flush from failing on the closed pipe.
            _stdout_to_devnull()
            ctx.exit(128 + 13)
        except OSError as exc:
            # A file aai-etl was told to write (an --output, a lock beside the database) cannot be.
            where = f" {exc.filename}" if exc.filename else ""
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            ctx.meta[_REPORTER].error(f"cannot write{where}: {reason}; check the path and its permissions")
            ctx.exit(1)
        except Exception as exc:
            if _interrupt_underneath(exc):
                # Ctrl-C or SIGTERM in a statement, and a library's cleanup on the connection it invalidated
                # failed in turn (Alembic's batch mode dropping its copy of a table): still an interrupt.
                self._interrupted(ctx)
            if not _database_error(exc):
                raise
            from etl.store.engine import first_line

            # A connection that worked and then failed mid-run (server restart, disk full).
            ctx.meta[_REPORTER].error(f"database error: {first_line(exc)}; everything committed so far is kept")
            ctx.exit(1)

    @staticmethod
    def _interrupted(ctx: click.Context) -> NoReturn:
        resumes = ", the next run resumes" if ctx.meta.get(_RESUMES) else ""
        unwritten = "; the metrics were not written" if ctx.meta.get(_METRICS_OWED) else ""
        ctx.meta[_REPORTER].error(f"interrupted; everything committed so far is kept{resumes}{unwritten}")
        ctx.exit(interrupt.INTERRUPTED)


def _interrupt_underneath(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt was being handled when `exc` was raised, however deep."""
    seen: set[int] = set()
    cause = exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _database_error(exc: Exception) -> TypeGuard[DBAPIError]:
    """Whether SQLAlchemy raised it: a command that never imported SQLAlchemy cannot have."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.DBAPIError)


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file descriptor (click's test runner)
        pass


# One example a command, shown at the end of its --help (keyed by the command's path under aai-etl).
EXAMPLES = {
    "sync": "ASSEMBLYAI_API_KEY=... aai-etl sync --database-url sqlite:///transcripts.db",
    "hydrate": "aai-etl hydrate --account prod",
    "derive": "aai-etl derive --again",
    "status": "aai-etl status --max-age 2h",
    "check": "aai-etl check --config /etc/aai-etl/config.toml",
    "simulate": "aai-etl simulate --port 8080 --faults 0.02",
    "stats": "aai-etl stats --since 2026-01-01 --format csv",
    "export": "aai-etl export --since 1200 --format csv --output changes.csv",
    "demo": "aai-etl demo --path /tmp/aai-etl-demo.db",
    "db": "aai-etl db upgrade",
    "db upgrade": "aai-etl db upgrade head",
    "db downgrade": "aai-etl db downgrade -1",
    "db current": "aai-etl db current",
    "config": "aai-etl config example > aai-etl.toml",
    "config example": "aai-etl config example > aai-etl.toml",
    "config accounts": "aai-etl config accounts --json",
}

EXIT_STATUSES = """\b
Exit statuses:
  0    the command finished
  1    the run failed (API kept failing, key rejected, database unreachable); committed work is kept
  2    a configuration mistake or an argument that cannot mean anything
  75   another sync of the account is running on this database; try again later
  130  interrupted by Ctrl-C or SIGTERM
  141  the reader of the output went away"""


@click.group(cls=_Group, epilog=EXIT_STATUSES, context_settings={"max_content_width": 120})
@click.version_option(__version__, prog_name="aai-etl")
@common_options
def cli() -> None:
    """Keep your AssemblyAI transcripts in your own SQL database."""


def _settings() -> Settings:
    ctx = click.get_current_context()
    options = dict(ctx.meta.get(_OPTIONS, {}))
    settings = load_settings(options.pop("config_path", None), **options)
    reporter = Reporter(
        settings.log_format, settings.quiet, settings.secrets + [os.environ.get("ASSEMBLYAI_API_KEY")], settings.progress_interval
    )
    ctx.meta[_REPORTER] = reporter
    ctx.meta[_SETTINGS] = settings
    for warning in settings.warnings:
        log.warning("%s", warning)
    return settings


def _reporter() -> Reporter:
    return click.get_current_context().meta[_REPORTER]


@cli.command()
@account_option
@click.option("--full", is_flag=True, help="Walk the whole listing: catch deletions of older transcripts (a reconcile).")
@click.option("--hydrate/--no-hydrate", default=None, help="Fetch each final transcript's details (default: the hydrate setting, true).")
@run_options
@common_options
def sync(account_name: str | None, full: bool, hydrate: bool | None) -> None:
    """Fetch new transcripts, status changes and transcript details into the database."""
    settings = _settings()
    _run_accounts(settings, account_name, full=full, listing=True, hydrate=settings.hydrate if hydrate is None else hydrate)


@cli.command("hydrate")
@account_option
@run_options
@common_options
def hydrate_command(account_name: str | None) -> None:
    """Fetch the details of final transcripts that lack them, without syncing the list."""
    _run_accounts(_settings(), account_name, full=False, listing=False, hydrate=True)


def _run_accounts(settings: Settings, account_name: str | None, *, full: bool, listing: bool, hydrate: bool) -> None:
    meta = click.get_current_context().meta
    meta[_METRICS_OWED] = bool(settings.metrics_file or settings.pushgateway)
    from etl.api.client import ApiClient
    from etl.outputs import metrics
    from etl.sync import SyncOptions, run_sync

    accounts = settings.select(account_name)
    engine = _engine(settings)
    meta[_RESUMES] = True
    reporter = _reporter()
    options = SyncOptions.from_settings(settings, full=full, listing=listing, hydrate=hydrate)
    recorder = metrics.Recorder(settings.metrics_file, settings.pushgateway)
    on_event = recorder.observing(reporter.event) if settings.metrics_file or settings.pushgateway else reporter.event
    failed: dict[str, int] = {}
    try:
        for account in accounts:
            try:
                with ApiClient.for_account(settings, account) as client:
                    stats = run_sync(engine, client, account.name, options, on_event)
                reporter.summary(account.name, stats, listing)
            except KeyboardInterrupt as exc:
                recorder.failed(account.name, exc)  # stopped before run_sync recorded it: a failed run all the same
                raise
            except EtlError as exc:
                recorder.failed(account.name, exc)
                if len(accounts) == 1:
                    raise
                # One failing account must not stop the others.
                reporter.error(f"account '{account.name}': {exc}")
                failed[account.name] = exc.exit_code
    finally:
        # Whatever happened, the metrics say so: a failed run is what an alert is for. A signal waits for them.
        with interrupt.writing():
            recorder.publish(engine)
            meta[_METRICS_OWED] = False
    if failed:
        raise AccountsFailed(failed, len(accounts))


@cli.command("derive")
@account_option
@click.option("--again", is_flag=True, help="Derive from every stored body, not only those never derived (after turning a table on).")
@click.option("--refetch", is_flag=True, help="Queue the transcripts fetched without a stored body for the next `aai-etl hydrate`.")
@common_options
def derive_command(account_name: str | None, again: bool, refetch: bool) -> None:
    """Fill the audio intelligence tables from stored bodies for transcripts fetched before: no API requests."""
    from etl.details.derive import from_bodies

    settings = _settings()
    engine = _engine(settings)
    say = (lambda line: None) if settings.quiet else _reporter().echo
    for account in settings.select(account_name):
        count, without, troubled = from_bodies(engine, account.name, settings.derived_tables, again=again, refetch=refetch)
        if refetch:
            say(f"'{account.name}': {count:,} transcripts queued; `aai-etl hydrate` fetches them again")
            continue
        # Said as warnings when first derived; derived again, only counted.
        odd = f" ({troubled:,} with a body of an unexpected shape, as said when first stored)" if troubled and again else ""
        say(f"'{account.name}': tables derived for {count:,} transcripts from their stored bodies{odd}")
        if without:
            log.warning(
                "'%s': %s transcripts were fetched with store_bodies off, so their tables can only come from a new "
                "fetch: run `aai-etl derive --refetch`, then `aai-etl hydrate` (one request each)", account.name, f"{without:,}"
            )


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    from etl.outputs import status

    try:
        return None if value is None else status.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("status")
@account_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.option("--max-age", metavar="DURATION", callback=_duration,
              help="A probe: exit 1 if the last run failed or the last success is older than DURATION (90m, 2h, 1d).")
@common_options
def status_command(account_name: str | None, as_json: bool, max_age: timedelta | None) -> None:
    """Show where the sync stands: cursor, pending transcripts, counts, last runs."""
    from etl.outputs import status

    settings = _settings()
    names = [account.name for account in settings.select(account_name)]
    with _connect(settings, read_only=True) as conn:
        report = status.gather(conn, names)
    problems = status.problems(report, max_age or timedelta.max, datetime.now(timezone.utc))
    if not settings.quiet:
        _reporter().echo(json.dumps(report) if as_json else status.render(report))
    if max_age is not None and problems:
        raise Unhealthy("; ".join(problems))
    if settings.quiet and problems:  # -q: only what is wrong, one line each
        _reporter().echo("\n".join(problems))


@cli.command("check")
@common_options
def check_command() -> None:
    """Check the settings, the database and each account's API key (one small request), without syncing."""
    from etl.tools import check

    ctx = click.get_current_context()
    try:
        settings = _settings()
    except ConfigError as exc:
        results = [check.settings_failed(exc)]
    else:
        results = check.run(settings, ctx.meta.get(_OPTIONS, {}).get("config_path"))
    for result in results:
        _reporter().echo(result.render())
    ctx.exit(check.exit_code(results))


@cli.command("simulate")
@click.option("--port", type=int, metavar="PORT", default=8080, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--host", metavar="ADDRESS", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--transcripts", type=click.IntRange(min=0), metavar="N", default=1000, show_default=True, help="Transcripts in the account.")
@click.option("--latency", type=click.FloatRange(min=0), metavar="SECONDS", default=0.05, show_default=True, help="Seconds each response takes.")
@click.option("--faults", type=click.FloatRange(0, 1), metavar="SHARE", default=0.0, show_default=True,
              help="Share of requests answered with a fault (429, 5xx, an HTML error page, a reset).")
@click.option("--api-key", metavar="KEY", default="simulated-key", show_default=True, help="The key the simulated API accepts.")
@click.option("--seed", type=int, metavar="N", default=0, show_default=True, help="Same seed, same transcripts.")
@click.option("--duration", type=click.FloatRange(min=0), metavar="SECONDS", help="Stop after this long (default: at Ctrl-C).")
@no_database_options
def simulate(
    port: int, host: str, transcripts: int, latency: float, faults: float, api_key: str, seed: int, duration: float | None
) -> None:
    """Serve a simulated AssemblyAI API to rehearse a deployment or a dashboard without a key (Ctrl-C stops)."""
    from etl.tools.simulator import serve  # the simulator stays out of every other command's start-up

    _settings()  # the log format, and one line for a bad config, as every command
    try:
        serve(
            host, port, transcripts=transcripts, latency=latency, faults=faults, api_key=api_key, seed=seed,
            say=_reporter().echo, duration=duration,
        )
    except OSError as exc:  # the port is taken, or the address is not this host's
        raise EtlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@cli.command("stats")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="DATE", help="First UTC day (default: 30 days ago).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), metavar="DATE", help="Last UTC day (default: today).")
@account_option
@click.option("--format", "fmt", type=click.Choice(stats.FORMATS), default="table", show_default=True)
@click.option("--view", "view_name", type=click.Choice(("transcripts", *stats.VIEWS)), default="transcripts", show_default=True,
              help="transcripts: counts, audio hours, error rate, turnaround; the others: from the audio intelligence tables.")
@common_options
def stats_command(since: datetime | None, until: datetime | None, account_name: str | None, fmt: str, view_name: str) -> None:
    """Daily counts by status, audio hours, error rate and turnaround (median, p95); or --view an audio intelligence figure."""
    from etl.store import migrate

    settings = _settings()
    last = until.date() if until else datetime.now(timezone.utc).date()
    first = since.date() if since else last - timedelta(days=30)
    if first > last:
        raise UsageError(f"--since {first} is after --until {last}: give the earlier day as --since")
    names = [account.name for account in settings.select(account_name)]
    with _connect(settings, read_only=True) as conn:
        migrate.require_current(conn)
        if view_name != "transcripts":
            _reporter().echo(stats.render(stats.view(conn, view_name, first, last, names), fmt, stats.VIEWS[view_name][1]))
            return
        rows = stats.daily(conn, first, last, names)
    _reporter().echo(stats.render(rows, fmt))


@cli.command("export")
@click.option("--since", type=int, metavar="WATERMARK", help="Only rows changed after this watermark (default: all rows).")
@click.option("--format", "fmt", type=click.Choice((*export.FORMATS, "parquet")), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), metavar="PATH", help="Write here instead of to stdout.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="With --format parquet: write DIR/<table>/<from>-<to>.parquet for every table with changes.")
@account_option
@common_options
def export_command(since: int | None, fmt: str, output: str | None, output_dir: Path | None, account_name: str | None) -> None:
    """Write the transcript rows changed after a watermark, then print the next watermark."""
    from etl.outputs import parquet
    from etl.store import changes, migrate

    settings = _settings()
    account = settings.select(account_name)[0].name if account_name else None
    if (fmt == "parquet") != (output_dir is not None) or (fmt == "parquet" and output is not None):
        raise UsageError("--format parquet writes to --output-dir DIR (and only it); jsonl and csv to --output or stdout")
    if fmt == "parquet":
        parquet.require_pyarrow()
    elif output is None and sys.stdout is None:  # started with stdout closed (`>&-`): the rows would go nowhere
        raise UsageError("standard output is closed: give --output FILE, or run export with stdout open")
    with _connect(settings, read_only=True) as conn, export.owner_only(settings.private_files):
        migrate.require_current(conn)
        if since is not None:
            changes.require_known(conn, since)
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
              help="The SQLite file to create (replaced only if an earlier demo made it).", metavar="PATH")
@no_database_options
def demo(path: Path) -> None:
    """Watch a sync work against a simulated AssemblyAI API: no key needed."""
    from etl.tools.demo import run as run_demo  # the simulator stays out of every other command's start-up

    settings = _settings()
    if settings.source("database_url").startswith("flag"):
        raise ConfigError("the demo never writes to your database, only to its own SQLite file: use --path FILE, not --database-url")
    reporter = _reporter()
    run_demo(path, reporter.echo if not settings.quiet else lambda text: None, reporter.summary)


@cli.group()
@common_options
def db() -> None:
    """Manage the database schema (Alembic migrations shipped with aai-etl)."""


# ignore_unknown_options: a relative revision such as -1 is an argument, not an option.
@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="head")
@common_options
def upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    from etl.store import migrate

    with _connect(_settings()) as conn:
        if revision == "head":  # as a sync does: under the schema lock, a new database created without Alembic
            migrate.ensure_schema(conn)
        else:
            migrate.upgrade(conn, revision)
        _reporter().echo(f"schema at {migrate.current_revision(conn) or 'base'}")


@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Drop the tables the downgrade removes even if they hold rows (refused without it).")
@common_options
def downgrade(revision: str, yes: bool) -> None:
    """Downgrade the schema to REVISION (a revision id, -1, or base)."""
    from etl.store import migrate

    with _connect(_settings()) as conn:
        dropped = migrate.downgrade(conn, revision, drop_rows=yes)
        lost = f"; dropped {migrate.tables_and_rows(dropped)}" if dropped else ""
        _reporter().echo(f"schema at {migrate.current_revision(conn) or 'base'}{lost}")


@db.command()
@common_options
def current() -> None:
    """Print the schema revision of the database."""
    from etl.store import migrate

    with _connect(_settings(), read_only=True) as conn:
        revision, head = migrate.current_revision(conn), migrate.head_revision()
    _reporter().echo(f"{revision or 'none'}{' (head)' if revision == head else f' (head is {head})'}")


@cli.group("config")
def config_group() -> None:
    """Settings: every one can come from the file, the environment (AAI_ETL_<KEY>) or a flag."""


@config_group.command()
@common_options
def example() -> None:
    """Print the example config file: every setting at its default, with what it does."""
    from importlib.resources import files

    click.echo((files("etl") / "config.example.toml").read_text(encoding="utf-8"), nl=False)


@config_group.command("accounts")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for an orchestrator that runs one task per account.")
@common_options
def accounts_command(as_json: bool) -> None:
    """List the configured accounts: name, API base URL, the variable that holds the key and whether it is set."""
    listed = [
        {"name": a.name, "base_url": a.base_url, "api_key_env": a.api_key_env, "api_key_set": bool(a.api_key)}
        for a in _settings().accounts
    ]
    if as_json:
        click.echo(json.dumps(listed))
        return
    for account in listed:
        key = "set" if account["api_key_set"] else "NOT SET"
        click.echo(f"{account['name']}\t{account['base_url']}\t{account['api_key_env']} ({key})")


def _connect(settings: Settings, read_only: bool = False) -> Connection:
    from etl.store.engine import connect

    return connect(_engine(settings, read_only))


def _engine(settings: Settings, read_only: bool = False) -> Engine:
    from etl.store.engine import make_engine

    return make_engine(
        settings.database_url, settings.private_files, read_only=read_only, schema=settings.database_schema,
        connect_timeout=settings.database_connect_timeout,
    )


def main() -> None:
    _fill_closed_descriptors()
    interrupt.install()
    cli(prog_name="aai-etl")


def _fill_closed_descriptors() -> None:
    """A scheduler or supervisor may start aai-etl with a standard stream closed (`2>&-`). Python then has no
    sys.stderr, and logging to it failed every command at once; and the next file opened would take the free
    descriptor, where a stray write to the stream would land in it. Each closed descriptor is opened on
    /dev/null: a closed stderr drops the log, as asked; a closed stdout stays None in Python, so that export
    refuses to write its rows nowhere."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - stays open for the process's life
