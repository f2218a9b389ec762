"""Settings from a TOML file, overridden by the environment, overridden by flags: one frozen object."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from etl.errors import ConfigError

REGIONS = {"us": "https://api.assemblyai.com", "eu": "https://api.eu.assemblyai.com"}
DEFAULT_DATABASE_URL = "sqlite:///aai-etl.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = REGIONS["us"]
    # repr=False keeps the key out of any repr, traceback or debug print of the settings.
    api_key: str | None = field(default=None, repr=False)
    account: str = "default"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 6
    retry_budget_seconds: float = 300.0
    backoff_seconds: float = 1.0
    log_format: str = "text"
    quiet: bool = False

    @property
    def secrets(self) -> list[str | None]:
        return [self.api_key]


# TOML key -> type, for every key a config file may hold.
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
}

_TYPE_NAMES = {str: "a string", float: "a number", int: "a whole number"}

# The environment variable names are part of the product's contract.
_ENV_KEYS = {
    "AAI_ETL_DATABASE_URL": "database_url",
    "ASSEMBLYAI_BASE_URL": "base_url",
    "ASSEMBLYAI_API_KEY": "api_key",
    "AAI_ETL_MAX_RETRIES": "max_retries",
}


def load_settings(
    config_path: str | Path | None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> Settings:
    """Build Settings: defaults < config file < environment < flags (a flag of None is unset)."""
    values: dict[str, Any] = {}
    if config_path is not None:
        values.update(_read_file(Path(config_path)))
    for env_name, key in _ENV_KEYS.items():
        if environ.get(env_name):
            values[key] = _coerce(key, environ[env_name], f"environment variable {env_name}")
    values.update({key: value for key, value in flags.items() if value is not None})
    settings = replace(Settings(), **values)
    _validate(settings)
    return settings


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key '{key}'{_suggest(key)}")
        values[key] = _coerce(key, value, f"config file {path}, key '{key}'")
    region = values.pop("region", None)
    if region is not None:
        if region not in REGIONS:
            raise ConfigError(f"config file {path}, key 'region': must be one of {', '.join(REGIONS)}, not '{region}'")
        values.setdefault("base_url", REGIONS[region])
    return values


def _coerce(key: str, value: Any, where: str) -> Any:
    wanted = _FILE_KEYS.get(key, str)
    if wanted is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, str):
        try:
            return wanted(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if wanted is float or float(value).is_integer():
            return wanted(value)
    raise ConfigError(f"{where}: expected {_TYPE_NAMES[wanted]}, got {value!r}")


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(_FILE_KEYS), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(_FILE_KEYS)})"


def _validate(settings: Settings) -> None:
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"log_format must be 'text' or 'json', not '{settings.log_format}'")
    if settings.max_retries < 0:
        raise ConfigError("max_retries must be 0 or more")
    for name in ("connect_timeout", "read_timeout", "retry_budget_seconds", "backoff_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be greater than 0")
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must start with http:// or https://, not '{settings.base_url}'")


def known_keys() -> list[str]:
    """Every key a config file may hold (config.example.toml documents each)."""
    return list(_FILE_KEYS)

