"""Settings from a TOML file, overridden by the environment, overridden by flags: one frozen object."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from etl.errors import ConfigError

REGIONS = {"us": "https://api.assemblyai.com", "eu": "https://api.eu.assemblyai.com"}
DEFAULT_DATABASE_URL = "sqlite:///aai-etl.db"
DEFAULT_KEY_VARIABLE = "ASSEMBLYAI_API_KEY"
# The tables etl.derive fills from transcript bodies (transcript_<name>), all by default.
DERIVED_TABLE_NAMES = ("utterances", "sentiments", "entities", "highlights", "topics", "content_safety", "chapters")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


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
        if self.api_key:
            return self.api_key
        if self.source is None:
            raise ConfigError(f"no API key: set {self.api_key_env} to your AssemblyAI API key")
        raise ConfigError(
            f"no API key: the environment variable {self.api_key_env} is not set "
            f"(api_key_env of account '{self.name}' in {self.source})"
        )


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = REGIONS["us"]
    accounts: tuple[Account, ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 6
    retry_budget_seconds: float = 300.0
    backoff_seconds: float = 1.0
    log_format: str = "text"
    quiet: bool = False
    hydrate: bool = True
    hydrate_workers: int = 8
    store_words: bool = False
    store_bodies: bool = True
    derived_tables: tuple[str, ...] = DERIVED_TABLE_NAMES

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


# TOML key -> type, for every top-level key a config file may hold.
_FILE_KEYS: dict[str, type] = {
    "database_url": str,
    "base_url": str,
    "region": str,
    "connect_timeout": float,
    "read_timeout": float,
    "max_retries": int,
    "retry_budget_seconds": float,
    "backoff_seconds": float,
    "log_format": str,
    "hydrate": bool,
    "hydrate_workers": int,
    "store_words": bool,
    "store_bodies": bool,
    "derived_tables": list,
    "accounts": list,
}
_ACCOUNT_KEYS: dict[str, type] = {"name": str, "api_key_env": str, "region": str, "base_url": str}
_TYPE_NAMES = {
    str: "a string", float: "a number", int: "a whole number", bool: "true or false", list: "a list of [[accounts]] tables",
}

# The environment variable names are part of the product's contract.
_ENV_KEYS = {
    "AAI_ETL_DATABASE_URL": "database_url",
    "ASSEMBLYAI_BASE_URL": "base_url",
    "AAI_ETL_MAX_RETRIES": "max_retries",
}


def load_settings(
    config_path: str | Path | None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> Settings:
    """Build Settings: defaults < config file < environment < flags (a flag of None is unset)."""
    values: dict[str, Any] = {}
    account_tables: list[dict[str, Any]] = []
    source = None
    if config_path is not None:
        source = f"config file {config_path}"
        values.update(_read_file(Path(config_path)))
        account_tables = values.pop("accounts", [])
    for env_name, key in _ENV_KEYS.items():
        if environ.get(env_name):
            values[key] = _coerce(_FILE_KEYS, key, environ[env_name], f"environment variable {env_name}")
    values.update({key: value for key, value in flags.items() if value is not None})
    if "derived_tables" in values:
        values["derived_tables"] = tuple(values["derived_tables"])
    settings = replace(Settings(), **values)
    _validate(settings)
    return replace(settings, accounts=_accounts(account_tables, settings.base_url, environ, source))


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values = _table(data, _FILE_KEYS, f"config file {path}")
    region = values.pop("region", None)
    if region is not None:
        values.setdefault("base_url", _region_url(region, f"config file {path}"))
    values["accounts"] = [
        _table(table, _ACCOUNT_KEYS, f"config file {path}, [[accounts]] #{number}")
        for number, table in enumerate(values.get("accounts", []), start=1)
    ]
    return values


def _table(data: Any, keys: dict[str, type], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {data!r}")
    values = {}
    for key, value in data.items():
        if key not in keys:
            raise ConfigError(f"{where}: unknown key '{key}'{_suggest(key, keys)}")
        values[key] = _coerce(keys, key, value, f"{where}, key '{key}'")
    return values


def _accounts(
    tables: list[dict[str, Any]], default_url: str, environ: Mapping[str, str], source: str | None
) -> tuple[Account, ...]:
    if not tables:
        # The single-account setup: ASSEMBLYAI_API_KEY alone, as it has always worked.
        return (Account("default", default_url, DEFAULT_KEY_VARIABLE, environ.get(DEFAULT_KEY_VARIABLE)),)
    accounts = []
    for number, table in enumerate(tables, start=1):
        where = f"{source}, [[accounts]] #{number}"
        name = table.get("name")
        if name is None or not _ACCOUNT_NAME.fullmatch(name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '-', '_' or '.', not {name!r}")
        if "region" in table and "base_url" in table:
            raise ConfigError(f"{where}: set 'region' or 'base_url', not both")
        base_url = table.get("base_url") or (_region_url(table["region"], where) if "region" in table else default_url)
        variable = table.get("api_key_env", DEFAULT_KEY_VARIABLE)
        accounts.append(Account(name, base_url, variable, environ.get(variable), source))
        _check_url(base_url, where)
    names = [account.name for account in accounts]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: account name '{duplicates[0]}' is used twice")
    return tuple(accounts)


def _region_url(region: str, where: str) -> str:
    if region not in REGIONS:
        raise ConfigError(f"{where}, key 'region': must be one of {', '.join(REGIONS)}, not '{region}'")
    return REGIONS[region]


def _coerce(keys: dict[str, type], key: str, value: Any, where: str) -> Any:
    wanted = keys[key]
    if wanted in (str, list, bool):
        if isinstance(value, wanted):
            return value
    elif isinstance(value, str):
        try:
            return wanted(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if wanted is float or float(value).is_integer():
            return wanted(value)
    expected = "a list of table names" if key == "derived_tables" else _TYPE_NAMES[wanted]
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _suggest(key: str, keys: dict[str, type]) -> str:
    close = difflib.get_close_matches(key, list(keys), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(keys)})"


def _validate(settings: Settings) -> None:
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"log_format must be 'text' or 'json', not '{settings.log_format}'")
    if settings.max_retries < 0:
        raise ConfigError("max_retries must be 0 or more")
    if not 1 <= settings.hydrate_workers <= 64:
        raise ConfigError("hydrate_workers must be from 1 to 64")
    for name in ("connect_timeout", "read_timeout", "retry_budget_seconds", "backoff_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be greater than 0")
    _check_url(settings.base_url, "base_url")
    for name in settings.derived_tables:
        if name not in DERIVED_TABLE_NAMES:
            raise ConfigError(
                f"derived_tables: unknown table {name!r}{_suggest(str(name), dict.fromkeys(DERIVED_TABLE_NAMES))}"
            )


def _check_url(url: str, where: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: base_url must start with http:// or https://, not '{url}'")


def known_keys() -> list[str]:
    """Every key a config file may hold (config.example.toml documents each)."""
    return list(_FILE_KEYS) + [f"accounts.{key}" for key in _ACCOUNT_KEYS]
