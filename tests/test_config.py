"""Settings: file < environment < flags, and one clear line for every mistake."""

from __future__ import annotations

import pytest
from conftest import run_cli

from etl.config import DEFAULT_DATABASE_URL, REGIONS, load_settings
from etl.errors import ConfigError


def write(tmp_path, body: str):
    path = tmp_path / "aai-etl.toml"
    path.write_text(body)
    return path


def test_defaults_need_nothing_but_a_key():
    settings = load_settings(None, {"ASSEMBLYAI_API_KEY": "k"})
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///aai-etl.db"
    assert settings.base_url == "https://api.assemblyai.com"
    (account,) = settings.accounts
    assert (account.name, account.api_key, account.base_url) == ("default", "k", "https://api.assemblyai.com")


def test_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, 'database_url = "sqlite:///from-file.db"\nmax_retries = 2\nlog_format = "json"\n')
    assert load_settings(path, {}).database_url == "sqlite:///from-file.db"
    env = {"AAI_ETL_DATABASE_URL": "sqlite:///from-env.db", "AAI_ETL_MAX_RETRIES": "9"}
    from_env = load_settings(path, env)
    assert (from_env.database_url, from_env.max_retries, from_env.log_format) == ("sqlite:///from-env.db", 9, "json")
    assert load_settings(path, env, database_url="sqlite:///from-flag.db").database_url == "sqlite:///from-flag.db"


def test_region_eu_selects_the_eu_host_and_the_environment_still_wins(tmp_path):
    path = write(tmp_path, 'region = "eu"\n')
    assert load_settings(path, {}).base_url == REGIONS["eu"] == "https://api.eu.assemblyai.com"
    assert load_settings(path, {"ASSEMBLYAI_BASE_URL": "http://127.0.0.1:9"}).base_url == "http://127.0.0.1:9"


def test_api_key_is_not_in_the_settings_repr():
    assert "secret-key-value" not in repr(load_settings(None, {"ASSEMBLYAI_API_KEY": "secret-key-value"}))


@pytest.mark.parametrize(
    "body, message",
    [
        ("databse_url = 'x'\n", "unknown key 'databse_url' (did you mean 'database_url'?)"),
        ("max_retries = 'many'\n", "key 'max_retries': expected a whole number, got 'many'"),
        ("read_timeout = 0\n", "key 'read_timeout': must be greater than 0, not 0.0"),
        ("region = 'mars'\n", "key 'region': must be one of us, eu, not 'mars'"),
        ("log_format = 'xml'\n", "key 'log_format': must be one of text, json, not 'xml'"),
        ("database_url = \n", "is not valid TOML"),
    ],
)
def test_config_mistakes_are_named(tmp_path, body, message):
    with pytest.raises(ConfigError, match=None) as caught:
        load_settings(write(tmp_path, body), {})
    assert message in str(caught.value)


def test_bad_environment_value_is_named():
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"AAI_ETL_MAX_RETRIES": "lots"})
    assert "environment variable AAI_ETL_MAX_RETRIES: expected a whole number, got 'lots'" in str(caught.value)


def test_cli_reports_a_config_error_in_one_line(tmp_path):
    path = write(tmp_path, "max_retires = 3\n")
    result = run_cli(["sync", "--config", str(path)], {"ASSEMBLYAI_API_KEY": "k"})
    assert result.exit_code == 2
    assert result.stderr == f"aai-etl: error: config file {path}: unknown key 'max_retires' (did you mean 'max_retries'?)\n"


def test_config_option_works_before_or_after_the_subcommand(tmp_path):
    path = write(tmp_path, f'database_url = "sqlite:///{tmp_path}/x.db"\n')
    before = run_cli(["--config", str(path), "db", "upgrade"], {})
    after = run_cli(["db", "upgrade", "--config", str(path)], {})
    assert before.exit_code == after.exit_code == 0
    assert before.stdout == after.stdout
    assert (tmp_path / "x.db").exists()


def test_unreadable_config_file(tmp_path):
    result = run_cli(["status", "--config", str(tmp_path / "missing.toml")], {})
    assert result.exit_code == 2
    assert "cannot read config file" in result.stderr and "missing.toml" in result.stderr


def test_example_config_documents_every_key_and_loads():
    from pathlib import Path

    from etl.config import known_keys

    example = Path(__file__).resolve().parent.parent / "etl" / "config.example.toml"
    body = example.read_text()
    for key in known_keys():
        name = key.removeprefix("accounts.")
        assert f"\n{name} = " in body or f"\n# {name} = " in body or f"\n# [[{name}]]" in body, key
    settings = load_settings(example, {})
    assert settings.base_url == REGIONS["us"] and settings.max_retries == 6


def test_a_list_setting_is_none_from_the_environment_as_in_the_file():
    """The settings reference: `[]` for none. From the environment an empty value means unset (all seven tables), and `[]`
    was an unknown table name: there was no way to turn the derived tables off there."""
    assert load_settings(None, {"AAI_ETL_DERIVED_TABLES": "[]"}).derived_tables == ()
    assert load_settings(None, {"AAI_ETL_DERIVED_TABLES": " [] "}).derived_tables == ()
    assert load_settings(None, {"AAI_ETL_DERIVED_TABLES": "topics, utterances"}).derived_tables == ("topics", "utterances")
    assert len(load_settings(None, {"AAI_ETL_DERIVED_TABLES": ""}).derived_tables) == 7
