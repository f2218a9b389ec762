"""One settings table: every setting from the file, the environment or a flag, each bad value named by where it came from."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
from conftest import mkdocs_hooks, run_cli

from etl.config import SETTINGS, example_text, load_settings, settings_markdown
from etl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
# A value for each type that differs from every default, as the file, the environment and a flag spell it.
_SAMPLES = {str: ("json", "json"), int: (3, "3"), float: (2.5, "2.5"), bool: (None, None)}


def _sample(setting):
    """A valid value other than the default, and how the environment spells it."""
    if setting.kind is tuple:
        return setting.choices[:2], ",".join(setting.choices[:2])
    if setting.choices:
        value = next(choice for choice in setting.choices if choice != setting.default)
        return value, value
    if setting.kind is bool:
        return (not setting.default), ("false" if setting.default else "true")
    if setting.name == "database_url":
        return "sqlite:///elsewhere.db", "sqlite:///elsewhere.db"
    if setting.url:
        return "http://127.0.0.1:9", "http://127.0.0.1:9"
    return _SAMPLES[setting.kind]


def _toml(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{name}"' for name in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_every_setting_comes_from_the_file_the_environment_and_its_flag(tmp_path, setting):
    value, spelled = _sample(setting)
    path = tmp_path / "aai-etl.toml"
    path.write_text(f"{setting.name} = {_toml(value)}\n")
    from_file = load_settings(path, {})
    assert getattr(from_file, setting.name) == value
    assert from_file.source(setting.name) == f"config file {path}, key '{setting.name}'"

    from_env = load_settings(None, {setting.variable: spelled})
    assert getattr(from_env, setting.name) == value
    assert from_env.source(setting.name) == f"environment variable {setting.variable}"
    if setting.flags:
        # A flag of None is no flag: a setting without a default gets the sample by flag too (the source tells).
        flagged = value if setting.default is None else setting.default
        from_flag = load_settings(path, {setting.variable: spelled}, **{setting.name: flagged})
        assert getattr(from_flag, setting.name) == flagged
        assert from_flag.source(setting.name) == f"flag {setting.flags[0]}"


def test_the_contract_variable_names_still_work():
    settings = load_settings(None, {
        "AAI_ETL_DATABASE_URL": "sqlite:///x.db", "ASSEMBLYAI_BASE_URL": "http://127.0.0.1:9", "AAI_ETL_MAX_RETRIES": "2",
    })
    assert (settings.database_url, settings.base_url, settings.max_retries) == ("sqlite:///x.db", "http://127.0.0.1:9", 2)


def test_log_format_and_hydrate_workers_from_the_environment_reach_the_cli(tmp_path):
    result = run_cli(["status"], {"AAI_ETL_LOG_FORMAT": "json", "AAI_ETL_HYDRATE_WORKERS": "300",
                                  "AAI_ETL_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert (result.exit_code, result.stderr) == (
        2, "aai-etl: error: environment variable AAI_ETL_HYDRATE_WORKERS: must be from 1 to 256, not 300\n"
    )


@pytest.mark.parametrize("body, message", [
    ("read_timeout = nan\n", "key 'read_timeout': expected a finite number, got nan"),
    ("connect_timeout = inf\n", "key 'connect_timeout': expected a finite number, got inf"),
    ("backoff_seconds = -inf\n", "key 'backoff_seconds': expected a finite number, got -inf"),
    ("read_timeout = 0\n", "key 'read_timeout': must be greater than 0, not 0.0"),
    ("max_retries = -1\n", "key 'max_retries': must be 0 or more, not -1"),
    ("hydrate = 'yes'\n", "key 'hydrate': expected true or false, got 'yes'"),
    ("base_url = 'ftp://x'\n", "key 'base_url': must start with http:// or https://, not 'ftp://x'"),
    ("api_key = 'k'\n", "key 'api_key': the API key is never read from a file: set ASSEMBLYAI_API_KEY in the environment"),
    ("[[accounts]]\nname = 'a'\napi_key = 'k'\n", "[[accounts]] #1, key 'api_key': the API key is never read from a file"),
])
def test_a_bad_file_value_names_the_file_and_key(tmp_path, body, message):
    path = tmp_path / "aai-etl.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(caught.value).startswith(f"config file {path}")
    assert message in str(caught.value)
    assert str(caught.value).count("base_url") <= 2  # no doubled prefix


@pytest.mark.parametrize("variable, value, message", [
    ("AAI_ETL_READ_TIMEOUT", "nan", "environment variable AAI_ETL_READ_TIMEOUT: expected a finite number, got nan"),
    ("AAI_ETL_CONNECT_TIMEOUT", "inf", "environment variable AAI_ETL_CONNECT_TIMEOUT: expected a finite number, got inf"),
    ("AAI_ETL_READ_TIMEOUT", "0", "environment variable AAI_ETL_READ_TIMEOUT: must be greater than 0, not 0.0"),
    ("AAI_ETL_STORE_WORDS", "maybe", "environment variable AAI_ETL_STORE_WORDS: expected true or false, got 'maybe'"),
    ("AAI_ETL_REGION", "mars", "environment variable AAI_ETL_REGION: must be one of us, eu, not 'mars'"),
    ("ASSEMBLYAI_BASE_URL", "x", "environment variable ASSEMBLYAI_BASE_URL: must start with http:// or https://, not 'x'"),
])
def test_a_bad_environment_value_names_the_variable(variable, value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: value})
    assert str(caught.value) == message


def test_a_bad_flag_value_names_the_flag(tmp_path):
    result = run_cli(["status", "--database-url", "mysql://x/y"], {})
    assert result.exit_code == 2
    assert result.stderr.startswith("aai-etl: error: the database URL mysql://x/y uses driver 'mysql'")
    assert result.stderr.endswith("(database_url from flag --database-url)\n")
    from_variable = run_cli(["status"], {"AAI_ETL_DATABASE_URL": "mysql://x/y"})
    assert from_variable.stderr.endswith("(database_url from environment variable AAI_ETL_DATABASE_URL)\n")


def test_an_unknown_aai_etl_variable_is_warned_about_with_the_close_match(tmp_path):
    env = {"AAI_ETL_HYDRATE_WORKRS": "4", "AAI_ETL_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = run_cli(["status"], env)
    assert result.exit_code == 0
    assert result.stderr == (
        "aai-etl: warning: environment variable AAI_ETL_HYDRATE_WORKRS is not a setting of aai-etl "
        "(did you mean AAI_ETL_HYDRATE_WORKERS?); it is ignored\n"
    )
    assert load_settings(None, {"AAI_ETL_CONFIG": "x", "AAI_ETL_LOG_FORMAT": "json"}).warnings == ()


def test_the_variables_of_the_shipped_airflow_dag_are_not_warned_about():
    """Its workers run aai-etl in the environment that configures the DAG: every run would warn otherwise."""
    dag = (ROOT / "deploy" / "airflow" / "aai_etl_dag.py").read_text()
    variables = set(re.findall(r"AAI_ETL_[A-Z_]+", dag))
    assert {"AAI_ETL_COMMAND", "AAI_ETL_EXPORT_DIR"} <= variables
    assert load_settings(None, dict.fromkeys(variables, "x")).warnings == ()


def test_a_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "aai-etl.toml"
    path.write_bytes(b"\xef\xbb\xbfmax_retries = 2\n")
    assert load_settings(path, {}).max_retries == 2


@pytest.mark.parametrize("encoding, message", [
    ("utf-16", "is UTF-16 text: save it as UTF-8"),
    ("latin-1", "is not UTF-8 text (byte 0xe9 at offset 26): save it as UTF-8"),
])
def test_a_config_file_in_another_encoding_is_one_line(tmp_path, encoding, message):
    path = tmp_path / "aai-etl.toml"
    path.write_bytes('database_url = "sqlite:///é.db"\n'.encode(encoding))
    result = run_cli(["status", "--config", str(path)], {})
    assert (result.exit_code, result.stderr) == (2, f"aai-etl: error: config file {path} {message}\n")


def test_the_example_file_is_the_table_and_loads():
    shipped = (files("etl") / "config.example.toml").read_text(encoding="utf-8")
    assert shipped == example_text(), (
        "etl/config.example.toml is not what the settings table says: regenerate it with\n"
        "python -c 'from etl.config import example_text; print(example_text(), end=\"\")' > etl/config.example.toml"
    )
    settings = load_settings(ROOT / "etl" / "config.example.toml", {})
    assert all(getattr(settings, s.name) == s.default for s in SETTINGS if s.default is not None)


def test_the_settings_page_is_the_table():
    """The documentation's settings page is written from the table when the site is built."""
    page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    assert settings_markdown() in mkdocs_hooks().on_page_markdown(page, None, None, None)


def test_config_example_prints_the_shipped_file():
    result = run_cli(["config", "example"], {})
    assert result.exit_code == 0
    assert result.stdout == example_text()
