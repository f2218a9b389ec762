"""Settings from a TOML file, overridden by the environment, overridden by flags: one frozen object.

Every setting is one entry of SETTINGS: its TOML key, its environment variable, its flag, its type,
default and allowed values, and the line that documents it. The file, environment and flag parsing,
the example file (`aai-etl config example`) and the documentation's settings page all come from there.
`Settings` holds one typed field for each, so mypy checks every use of a setting by name and type.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

REGIONS = {"us": "https://api.assemblyai.com", "eu": "https://api.eu.assemblyai.com"}
DEFAULT_DATABASE_URL = "sqlite:///aai-etl.db"
DEFAULT_KEY_VARIABLE = "ASSEMBLYAI_API_KEY"
CONFIG_VARIABLE = "AAI_ETL_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024  # a settings file is a few kilobytes
# The tables etl.details.derive fills from transcript bodies (transcript_<name>), all by default.
DERIVED_TABLE_NAMES = ("utterances", "sentiments", "entities", "highlights", "topics", "content_safety", "chapters")
# The parts of a transcript each fetched with one more request (GET /v2/transcript/{id}/<name>), none by default.
EXTRA_DETAIL_NAMES = ("sentences", "paragraphs", "srt", "vtt")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\x80-\xff]+")  # what an HTTP header value can carry


@dataclass(frozen=True)
class Setting:
    """One setting. Its environment variable is AAI_ETL_<NAME> unless `env` names another."""

    name: str
    kind: type  # str, int, float, bool, or tuple: a list of names (each one of `choices`)
    default: Any  # None: unset (the example shows it commented out)
    doc: str  # one line: --help, the docs' settings page, the example file
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # allowed: minimum <= value
    maximum: float | None = None  # allowed: value <= maximum
    above: float | None = None  # allowed: above < value
    env: str = ""
    flags: tuple[str, ...] = ()  # a flag every command takes (with run_only: only sync and hydrate)
    run_only: bool = False  # a setting of a run (progress, metrics): its flag is on sync and hydrate only
    url: bool = False  # must be an http:// or https:// URL
    example: str = ""  # more comment lines for the example file
    placeholder: str = "..."  # the example file's value for a setting with no default
    pattern: tuple[str, str] | tuple[()] = ()  # a regular expression the whole value must match, and what it asks for

    @property
    def variable(self) -> str:
        return self.env or f"AAI_ETL_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url", str, DEFAULT_DATABASE_URL,
        "Where transcripts are stored: a SQLAlchemy URL of SQLite or PostgreSQL.",
        env="AAI_ETL_DATABASE_URL", flags=("--database-url",),
        example="""sqlite:///aai-etl.db                              (relative to the working directory; the default)
sqlite:////var/lib/aai-etl/transcripts.db          (absolute: four slashes)
postgresql+psycopg://etl:PASSWORD@db.internal/analytics   (pip install 'aai-etl[postgres]')""",
    ),
    Setting(
        "database_schema", str, "public",
        "PostgreSQL: the schema that holds every table, view and sequence of aai-etl, and its alembic_version; "
        "created if missing.",
        pattern=(r"[a-z_][a-z0-9_]{0,62}", "a lowercase PostgreSQL name (a-z, 0-9, _; not starting with a digit)"),
        example="""public (the default) leaves the connection's search_path as the server or the URL sets it; any other
name sets it to that schema alone. SQLite has no schemas and ignores it.""",
    ),
    Setting(
        "database_connect_timeout", int, 10,
        "Seconds to wait for a connection to a PostgreSQL server before giving up (a connect_timeout in the URL wins).",
        minimum=2, example="2 is the least the PostgreSQL client library waits.",
    ),
    Setting(
        "region", str, "us", "The AssemblyAI region of the account: us or eu (each has its own list of transcripts).",
        choices=tuple(REGIONS),
    ),
    Setting(
        "base_url", str, None, "The API's base URL itself; wins over region.", env="ASSEMBLYAI_BASE_URL", url=True,
        placeholder='"https://api.assemblyai.com"',
    ),
    Setting("connect_timeout", float, 10.0, "Seconds to wait for a connection to the API.", above=0),
    Setting("read_timeout", float, 60.0, "Seconds to wait for each read of a response of the API.", above=0),
    Setting(
        "request_deadline", float, 120.0,
        "Seconds one whole response may take, however slowly it trickles in; past it, retried like a timeout.",
        above=0,
    ),
    Setting(
        "max_retries", int, 6, "Retries of a failed request (429, 5xx, resets, timeouts) before the run gives up.",
        minimum=0, example="401 and other 4xx are never retried.",
    ),
    Setting(
        "retry_budget_seconds", float, 300.0, "The total time one request may spend waiting between retries.", above=0,
    ),
    Setting(
        "backoff_seconds", float, 1.0, "The first backoff; each retry doubles it (at most 60 s), with jitter.", above=0,
    ),
    Setting(
        "requests_per_minute", float, 2000.0,
        "The run's request budget, shared by every thread, listing and details alike.",
        above=0, example="Half of the 4,000 a minute AssemblyAI allows an account, which its own transcription traffic shares.",
    ),
    Setting(
        "log_format", str, "text", "Log lines as text (people, cron mail) or json (one object per line, log collectors).",
        choices=("text", "json"), flags=("--log-format",),
    ),
    Setting("quiet", bool, False, "Only warnings and errors: no summary, no progress.", flags=("--quiet", "-q")),
    Setting(
        "hydrate", bool, True, "Fetch each finished transcript's details once after the list (`sync --no-hydrate` skips it).",
        example="Text, audio duration, confidence, language and speech model, in typed columns; `aai-etl hydrate` runs it alone.",
    ),
    Setting(
        "hydrate_workers", int, 64,
        "At most this many detail fetches in flight; the request budget sets the pace, this only bounds it.",
        minimum=1, maximum=256,
    ),
    Setting(
        "partitions", str, "auto",
        "How a first backfill or `sync --full` walks the listing: auto (serially, on by UTC days where its first pages show them faster), days, or serial.",
        choices=("auto", "days", "serial"),
        example="After 4 full pages auto weighs density, measured latency and budget: days pay on a dense account at 100 ms a request, not at 10.",
    ),
    Setting(
        "partition_days", int, 32,
        "The most UTC days a walk by days (created_on partitions) lists at once; fewer while the budget's rate x the measured latency needs fewer.",
        minimum=1, maximum=256,
        example="Each day costs a request even when empty (93 in all); at 100 ms a request the default budget keeps 5 busy, at 1 s all 32.",
    ),
    Setting(
        "partition_writers", int, 1,
        "PostgreSQL connections that store the pages of a walk by days at once (SQLite has one writer: the run's own); "
        "more pay only when the server has cores the client does not use.",
        minimum=1, maximum=8,
        example="Each day's pages go to one of them, in order, each page one transaction; 1 stores them on the run's connection.",
    ),
    Setting("store_words", bool, False, "Every word with its timing and speaker, in transcript_words (large).",),
    Setting("store_bodies", bool, True, "The full JSON body of each transcript, in transcript_bodies."),
    Setting(
        "derived_tables", tuple, DERIVED_TABLE_NAMES,
        "The audio intelligence tables filled from each transcript's body (transcript_<name>); [] for none.",
        choices=DERIVED_TABLE_NAMES, example="In the environment: names separated by commas, or [] for none.",
    ),
    Setting(
        "extra_details", tuple, (),
        "More of each completed transcript, one more request each: sentences and paragraphs (transcript_<name>), "
        "srt and vtt subtitles (transcript_subtitles); [] for none.",
        choices=EXTRA_DETAIL_NAMES,
        example="In the environment: names separated by commas, or [] for none. Each costs a request per transcript from the budget.",
    ),
    Setting(
        "private_files", bool, True, "Create the SQLite database, its lock files and the exports readable by their owner only (0600, folders 0700).",
        example="Transcript text and bodies are private data: false leaves the permissions to the umask.",
    ),
    Setting(
        "keep_presigned_credentials", bool, False,
        "Keep the signatures of presigned audio URLs (X-Amz-Signature, X-Goog-Signature, Azure sig) instead of redacting them.",
    ),
    Setting(
        "progress_interval", float, 30.0, "Off a terminal, log a progress event this often (seconds).", above=0,
        flags=("--progress-interval",), run_only=True,
    ),
    Setting(
        "metrics_file", str, None, "Write Prometheus metrics here after each run (node_exporter textfile format), atomically.",
        flags=("--metrics-file",), run_only=True, placeholder='"/var/lib/node_exporter/textfile_collector/aai_etl.prom"',
    ),
    Setting(
        "pushgateway", str, None, "Push Prometheus metrics to this Pushgateway after each run (job aai_etl, label account).",
        flags=("--pushgateway",), run_only=True, url=True, placeholder='"http://pushgateway:9091"',
    ),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}
_BY_VARIABLE = {setting.variable: setting for setting in SETTINGS}
# Not settings, but known, so not warned about: read by the CLI; by the Airflow DAG in deploy/airflow, whose
# workers run aai-etl in the same environment; by the dbt project in dbt/; and by the test suite.
_OTHER_VARIABLES = (
    CONFIG_VARIABLE,
    "AAI_ETL_COMMAND", "AAI_ETL_EXPORT_DIR", "AAI_ETL_SCHEDULE", "AAI_ETL_POOL",
    "AAI_ETL_FEED", "AAI_ETL_DUCKDB_PATH", "AAI_ETL_DBT_SCHEMA",
    "AAI_ETL_TEST_POSTGRES_URL", "AAI_ETL_REQUIRE_POSTGRES", "AAI_ETL_AIRFLOW", "AAI_ETL_REQUIRE_AIRFLOW", "AAI_ETL_DBT",
    "AAI_ETL_REQUIRE_DBT", "AAI_ETL_REQUIRE_IMAGE", "AAI_ETL_DOCS_SITE", "AAI_ETL_REQUIRE_DOCS",
)
# Variables that must not be set empty: an empty database URL silently meaning the default would sync
# into ./aai-etl.db, wherever the job happens to run, while the real database waits.
_NEVER_EMPTY = {"AAI_ETL_DATABASE_URL": "a database URL (sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"}
_ACCOUNT_KEYS: dict[str, type] = {"name": str, "api_key_env": str, "region": str, "base_url": str}
_TYPE_NAMES = {str: "a string", float: "a number", int: "a whole number", bool: "true or false", tuple: "a list of names"}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Account:
    """One AssemblyAI account (a project, a region): its own key, listing, cursor, runs and lock."""

    name: str
    base_url: str
    api_key_env: str
    # repr=False keeps the key out of any repr, traceback or debug print of the settings.
    api_key: str | None = field(default=None, repr=False)
    source: str | None = None  # the config file that defines it; None for the implicit single account

    def require_key(self) -> str:
        if self.api_key and not _HEADER_VALUE.fullmatch(self.api_key):
            # Never the key itself in the message: only where it is and what is wrong with it.
            raise ConfigError(
                f"the API key in {self.api_key_env} holds characters an HTTP header cannot carry (a control "
                "character, or one outside Latin-1): set it to the key alone, as AssemblyAI shows it"
            )
        if self.api_key:
            return self.api_key
        if self.source is None:
            raise ConfigError(f"no API key: set {self.api_key_env} to your AssemblyAI API key")
        raise ConfigError(
            f"no API key: the environment variable {self.api_key_env} is not set "
            f"(api_key_env of account '{self.name}' in {self.source})"
        )


def _default(name: str) -> Any:
    return _BY_NAME[name].default


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of SETTINGS as a typed attribute (`settings.read_timeout`), where each came from, the accounts.

    One field per setting, in the table's order, typed as the table's kind (`X | None` when it has no default),
    defaulting to the table's default; tests/test_typed_settings.py fails when the two differ."""

    database_url: str = _default("database_url")
    database_schema: str = _default("database_schema")
    database_connect_timeout: int = _default("database_connect_timeout")
    region: str = _default("region")
    base_url: str | None = _default("base_url")  # set from region by load_settings when no source sets it
    connect_timeout: float = _default("connect_timeout")
    read_timeout: float = _default("read_timeout")
    request_deadline: float = _default("request_deadline")
    max_retries: int = _default("max_retries")
    retry_budget_seconds: float = _default("retry_budget_seconds")
    backoff_seconds: float = _default("backoff_seconds")
    requests_per_minute: float = _default("requests_per_minute")
    log_format: str = _default("log_format")
    quiet: bool = _default("quiet")
    hydrate: bool = _default("hydrate")
    hydrate_workers: int = _default("hydrate_workers")
    partitions: str = _default("partitions")
    partition_days: int = _default("partition_days")
    partition_writers: int = _default("partition_writers")
    store_words: bool = _default("store_words")
    store_bodies: bool = _default("store_bodies")
    derived_tables: tuple[str, ...] = _default("derived_tables")
    extra_details: tuple[str, ...] = _default("extra_details")
    private_files: bool = _default("private_files")
    keep_presigned_credentials: bool = _default("keep_presigned_credentials")
    progress_interval: float = _default("progress_interval")
    metrics_file: str | None = _default("metrics_file")
    pushgateway: str | None = _default("pushgateway")

    sources: Mapping[str, str] = field(default_factory=dict)
    accounts: tuple[Account, ...] = ()
    warnings: tuple[str, ...] = ()  # for the CLI to log once its output is set up

    def source(self, name: str) -> str:
        """Where a setting's value came from: a config file's key, a variable, a flag, or the default."""
        return self.sources.get(name, "its default")

    @property
    def secrets(self) -> list[str | None]:
        return [account.api_key for account in self.accounts]

    def select(self, name: str | None) -> tuple[Account, ...]:
        """All accounts, or the one named."""
        if name is None:
            return self.accounts
        for account in self.accounts:
            if account.name == name:
                return (account,)
        known = ", ".join(account.name for account in self.accounts)
        raise ConfigError(f"no account named '{name}' (configured: {known})")


def load_settings(
    config_path: str | Path | None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> Settings:
    """Build Settings: defaults < config file < environment < flags (a flag of None is unset)."""
    values = {setting.name: setting.default for setting in SETTINGS}
    sources: dict[str, str] = {}
    account_tables: list[dict[str, Any]] = []
    file_source = None
    if config_path is not None:
        file_source = f"config file {config_path}"
        data = _read_file(Path(config_path))
        account_tables = _account_tables(data.pop("accounts", []), file_source)
        for key, value in data.items():
            where = f"{file_source}, key '{key}'"
            if key == "api_key":
                raise ConfigError(f"{where}: the API key is never read from a file: set {DEFAULT_KEY_VARIABLE} in the environment")
            if key not in _BY_NAME:
                raise ConfigError(f"{file_source}: unknown key '{key}'{_suggest(key, [*_BY_NAME, 'accounts'])}")
            values[key], sources[key] = parse(_BY_NAME[key], value, where), where
    for variable, setting in _BY_VARIABLE.items():
        if variable in _NEVER_EMPTY and variable in environ and not environ[variable].strip():
            raise ConfigError(
                f"environment variable {variable} is set but empty: set it to {_NEVER_EMPTY[variable]}, or unset it"
            )
        if environ.get(variable):  # set but empty means unset, as a Kubernetes manifest often leaves it
            where = f"environment variable {variable}"
            values[setting.name], sources[setting.name] = parse(setting, environ[variable], where, text=True), where
    for name, value in flags.items():
        if value is not None:
            where = f"flag {_BY_NAME[name].flags[0]}"
            values[name], sources[name] = parse(_BY_NAME[name], value, where), where
    if values["base_url"] is None:  # base_url wins over region, whichever source each came from
        values["base_url"], sources["base_url"] = REGIONS[values["region"]], sources.get("region", "its default")
    accounts = _accounts(account_tables, values["base_url"], environ, file_source)
    return Settings(**values, sources=sources, accounts=accounts, warnings=tuple(_unknown_variables(environ)))


def parse(setting: Setting, value: Any, where: str, text: bool = False) -> Any:
    """The value as the setting's type, or a ConfigError that names `where` it came from and why it is wrong.

    `text`: the value is how the environment spells it ("true", "0", "2.5")."""
    value = _typed(setting.kind, value, where, text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if setting.kind is tuple:
        for name in value:
            if name not in setting.choices:
                raise ConfigError(f"{where}: unknown name {name!r}{_suggest(name, list(setting.choices))}")
    elif setting.choices and value not in setting.choices:
        raise ConfigError(f"{where}: must be one of {', '.join(setting.choices)}, not '{value}'")
    low, high, above = setting.minimum, setting.maximum, setting.above
    if (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
        if above is not None:
            wanted = f"greater than {above:g}"
        elif high is None:
            wanted = f"{low:g} or more"
        else:
            wanted = f"from {low:g} to {high:g}"
        raise ConfigError(f"{where}: must be {wanted}, not {value!r}")
    if setting.url:
        _check_url(value, where)
    if setting.pattern and not re.fullmatch(setting.pattern[0], value):
        raise ConfigError(f"{where}: must be {setting.pattern[1]}, not {value!r}")
    return value


def _typed(kind: type, value: Any, where: str, text: bool) -> Any:
    if kind is tuple:
        if text and isinstance(value, str):  # the environment: names separated by commas, or [] for none
            if value.strip() == "[]":  # an empty value means unset (the default): none is spelled as in the file
                return ()
            return tuple(name.strip() for name in value.split(",") if name.strip())
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            return tuple(value)
        if isinstance(value, tuple):
            return value
    elif isinstance(value, str) and kind is not str and (text or kind is not bool):
        spelled = value.strip().lower()
        if kind is bool:
            if spelled in _TRUE + _FALSE:
                return spelled in _TRUE
        else:
            try:
                return kind(spelled)
            except ValueError:
                pass
    elif isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    elif kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind is float or float(value).is_integer():
            return kind(value)
    raise ConfigError(f"{where}: expected {_TYPE_NAMES[kind]}, got {value!r}")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            # At most a byte past the cap: a wrong path (/dev/zero, a log, a disk image) is refused, not read whole.
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB: is it the right file?")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"config file {path} is UTF-16 text: save it as UTF-8")
    try:
        # A byte order mark is what Windows editors put first: harmless, so skipped.
        body = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _account_tables(tables: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(tables, list):
        raise ConfigError(f"{source}, key 'accounts': expected a list of [[accounts]] tables, got {tables!r}")
    parsed = []
    for number, table in enumerate(tables, start=1):
        where = f"{source}, [[accounts]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table, got {table!r}")
        for key, value in table.items():
            if key == "api_key":
                raise ConfigError(
                    f"{where}, key 'api_key': the API key is never read from a file: "
                    "name the environment variable that holds it with api_key_env"
                )
            if key not in _ACCOUNT_KEYS:
                raise ConfigError(f"{where}: unknown key '{key}'{_suggest(key, list(_ACCOUNT_KEYS))}")
            if not isinstance(value, str):
                raise ConfigError(f"{where}, key '{key}': expected a string, got {value!r}")
        parsed.append(table)
    return parsed


def _accounts(
    tables: list[dict[str, Any]], default_url: str, environ: Mapping[str, str], source: str | None
) -> tuple[Account, ...]:
    if not tables:
        # The single-account setup: ASSEMBLYAI_API_KEY alone, as it has always worked.
        return (Account("default", default_url, DEFAULT_KEY_VARIABLE, _key(environ, DEFAULT_KEY_VARIABLE)),)
    accounts = []
    for number, table in enumerate(tables, start=1):
        where = f"{source}, [[accounts]] #{number}"
        name = table.get("name")
        if name is None or not _ACCOUNT_NAME.fullmatch(name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '-', '_' or '.', not {name!r}")
        if "region" in table and "base_url" in table:
            raise ConfigError(f"{where}: set 'region' or 'base_url', not both")
        base_url = table.get("base_url") or default_url
        if "region" in table:
            base_url = REGIONS[parse(_BY_NAME["region"], table["region"], f"{where}, key 'region'")]
        _check_url(base_url, f"{where}, key 'base_url'")
        variable = table.get("api_key_env", DEFAULT_KEY_VARIABLE)
        accounts.append(Account(name, base_url, variable, _key(environ, variable), source))
    names = [account.name for account in accounts]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: account name '{duplicates[0]}' is used twice")
    return tuple(accounts)


def _key(environ: Mapping[str, str], variable: str) -> str | None:
    """The key without surrounding whitespace: a key file read with `$(cat FILE)` or an editor adds a newline."""
    return (environ.get(variable) or "").strip() or None


def _check_url(url: str, where: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: must start with http:// or https://, not '{url}'")


def _suggest(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(keys)})"


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each AAI_ETL_* variable that is no setting: most likely a typo, which would go unnoticed."""
    known = [*_BY_VARIABLE, *_OTHER_VARIABLES]
    warnings = []
    for variable in sorted(name for name in environ if name.startswith("AAI_ETL_") and name not in known):
        close = difflib.get_close_matches(variable, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"environment variable {variable} is not a setting of aai-etl{hint}; it is ignored")
    return warnings


def known_keys() -> list[str]:
    """Every key a config file may hold."""
    return [*_BY_NAME, *(f"accounts.{key}" for key in _ACCOUNT_KEYS)]


def example_text() -> str:
    """config.example.toml, as shipped: every setting at its default, with its documentation."""
    parts = [_EXAMPLE_HEAD]
    for setting in SETTINGS:
        lines = [setting.doc, *setting.example.splitlines()]
        where = [f"Environment: {setting.variable}."] + ([f"Flag: {', '.join(setting.flags)}."] if setting.flags else [])
        if setting.choices:
            lines.append(f"One of: {', '.join(setting.choices)}.")
        lines.append(" ".join(where))
        unset = setting.default is None
        value = f"# {setting.name} = {setting.placeholder}" if unset else f"{setting.name} = {_toml(setting.default)}"
        parts.append("\n".join([*(f"# {line}" for line in lines), value]))
    parts.append(_EXAMPLE_ACCOUNTS)
    return "\n\n".join(parts) + "\n"


def settings_markdown() -> str:
    """The settings table in Markdown, for the documentation's settings page."""
    rows = ["| setting | environment | flag | default | |", "| --- | --- | --- | --- | --- |"]
    rows.append(f"| API key (never in a file) | `{DEFAULT_KEY_VARIABLE}` | | required for `sync` | |")
    for setting in SETTINGS:
        flag = " ".join(f"`{name}`" for name in setting.flags)
        default = "unset" if setting.default is None else f"`{_toml(setting.default).strip(chr(34))}`"
        rows.append(f"| `{setting.name}` | `{setting.variable}` | {flag} | {default} | {setting.doc} |")
    rows.append(
        "| `[[accounts]]`: `name`, `api_key_env`, `region` or `base_url` | the variable `api_key_env` names | | "
        "one account, `default`, keyed by `ASSEMBLYAI_API_KEY` | Several accounts in one database. |"
    )
    return "\n".join(rows)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value) if isinstance(value, str) else repr(value)


_EXAMPLE_HEAD = """\
# aai-etl settings. Pass with `--config PATH` (before or after the subcommand) or AAI_ETL_CONFIG=PATH.
# Precedence: this file < environment variables < command-line flags.
# The API key is never read from this file: set ASSEMBLYAI_API_KEY in the environment
# (a systemd EnvironmentFile, a Kubernetes Secret, your scheduler's secret store).
# Generated from the settings table in etl/config.py: `aai-etl config example` prints it."""

_EXAMPLE_ACCOUNTS = """\
# Several AssemblyAI accounts (projects, or the US and EU regions) in one database: one [[accounts]]
# table each. Every account has its own cursor, runs and lock, and every transcript row its account.
# `aai-etl sync` syncs them all (one failing does not stop the others); `--account NAME` syncs one,
# so several processes or hosts can sync different accounts in parallel into one PostgreSQL database.
# Without any [[accounts]], there is one account named "default" whose key is ASSEMBLYAI_API_KEY.
#
# [[accounts]]
# name = "us-main"                      # letters, digits, - _ . ; stored in transcripts.account
# api_key_env = "AAI_KEY_US_MAIN"       # the environment variable that holds this account's key
# region = "us"                         # or base_url = "https://..."; default: the settings above
#
# [[accounts]]
# name = "eu"
# api_key_env = "AAI_KEY_EU"
# base_url = "https://api.eu.assemblyai.com\""""
