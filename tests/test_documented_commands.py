"""Every command and option, as click knows them and as the README and the docs write them: documented, and no traceback.

The commands come from click's command tree, so a new command is walked (and must be documented) as soon as
it exists."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import clean_env, cli_env, sync

from etl.cli import cli
from etl.config import settings_markdown

ROOT = Path(__file__).resolve().parent.parent
# The README and every page of the documentation site, with the settings table its settings page shows. The
# commands page's `--help` texts are left out: made from the command tree, they would document every command.
README = "\n".join([*(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]), settings_markdown()])
BUILT_IN = {"--help", "--version"}
# Values for arguments, by command path: a new command with an argument adds its value here.
ARGUMENTS = {("db", "upgrade"): ["head"], ("db", "downgrade"): ["-1"], ("simulate",): ["--port", "0", "--duration", "0"]}
# Values of the free-text options, by name: each a valid one.
STRINGS = {
    "metrics_file": "{tmp}/aai_etl.prom", "pushgateway": "http://127.0.0.1:9", "host": "127.0.0.1", "api_key": "simulated-key", "max_age": "1d",
}
# Documented refusals: the demo writes only its own file (docs/reference/commands.md).
REFUSED = {(("demo",), "--database-url")}
# Options (or values) that only work with another: given with it (the Parquet feed goes to --output-dir).
COMPANIONS = {(("export",), "--output-dir"): ["--format", "parquet"], (("export",), "parquet"): ["--output-dir", "{tmp}/feed"]}


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under `group`, with its path of names."""
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*path, name)))
    return found


def options(command: click.Command) -> list[click.Option]:
    return [param for param in command.params if isinstance(param, click.Option) and not set(param.opts) & BUILT_IN]


COMMON = {opt for param in options(cli) for opt in param.opts + param.secondary_opts}


def documented() -> list[tuple[str, tuple[str, ...], set[str]]]:
    """Each `aai-etl ...` the README and the docs write (in code spans and code blocks): its text, command path and options."""
    spans = re.findall(r"`([^`\n]+)`", README) + [line for block in re.findall(r"```\w*\n(.*?)```", README, re.S)
                                                  for line in block.splitlines()]
    found = []
    for span in spans:
        for match in re.finditer(r"(?<![\w.-])aai-etl(?=\s|$)", span):
            command = re.split(r"\s+(?:\||&&|>|;|#)(?:\s+|$)", span[match.end():])[0]
            words = command.split()
            group: click.Command = cli
            path: tuple[str, ...] = ()
            for word in words:
                if not isinstance(group, click.Group) or word not in group.commands:
                    break
                group, path = group.commands[word], (*path, word)
            found.append((f"aai-etl{command}", path, set(re.findall(r"(?<![\w-])(--[a-z][\w-]*|-q)\b", command))))
    return found


@pytest.mark.parametrize("path", [path for path, _ in commands()], ids=" ".join)
def test_help_of_every_command(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert f"Usage: cli {' '.join(path)}" in result.output


def test_every_command_and_option_is_in_the_docs():
    table = {path for text, path, _ in documented() if text.startswith("aai-etl")}
    for path, command in commands():
        if not isinstance(command, click.Group):
            assert path in table, f"`aai-etl {' '.join(path)}` is not in the README or the docs"
        for param in options(command):
            for opt in param.opts + param.secondary_opts:
                assert re.search(rf"(?<![\w-]){re.escape(opt)}\b", README), f"{opt} of `aai-etl {' '.join(path)}` is not in the README or the docs"


def test_every_command_the_docs_write_exists_with_its_options():
    tree = dict(commands())
    assert len(documented()) > 20
    for text, path, opts in documented():
        if not path:
            assert not opts - COMMON - BUILT_IN, text
            continue
        known = COMMON | BUILT_IN | {opt for param in options(tree[path]) for opt in param.opts + param.secondary_opts}
        assert opts <= known, f"the docs' `{text}` uses {sorted(opts - known)}, which `aai-etl {' '.join(path)}` lacks"


def _value(param: click.Option, tmp_path: Path, database_url: str) -> list[list[str]]:
    """The ways to give an option in one run each: a flag alone, or each choice, or one valid value."""
    opt = param.opts[0]
    if param.is_flag:
        return [[opt]] + [[secondary] for secondary in param.secondary_opts]
    if isinstance(param.type, click.Choice):
        return [[opt, choice] for choice in param.type.choices]
    if param.name == "config_path":
        config = tmp_path / "aai-etl.toml"
        config.write_text("max_retries = 2\n")
        return [[opt, str(config)]]
    if param.name == "database_url":
        return [[opt, database_url]]
    if param.name == "account_name":
        return [[opt, "default"]]
    if isinstance(param.type, click.DateTime):
        return [[opt, date.today().isoformat()]]
    if isinstance(param.type, click.Path):
        return [[opt, str(tmp_path / f"out{opt}")]]
    if param.type is click.INT or isinstance(param.type, (click.IntRange, click.FloatRange)):
        return [[opt, "0"]]
    if param.type is click.FLOAT:
        return [[opt, "1"]]
    if param.name in STRINGS:
        return [[opt, STRINGS[param.name].format(tmp=tmp_path)]]
    raise AssertionError(f"no test value for {opt}: add one to _value()")


def test_every_command_with_every_option_runs_without_a_traceback(database_url, fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a command writes by default (the demo's file) lands here
    fake.add(5)
    fake.add(2, status="queued")
    assert sync(fake, database_url).exit_code == 0
    env = clean_env(cli_env(fake, database_url))
    common = [value for param in options(cli) for value in _value(param, tmp_path, database_url)[0]]
    runs = []
    for path, command in commands():
        if isinstance(command, click.Group):
            continue
        arguments = ARGUMENTS.get(path, [])
        runs.append((path, [*common, *path, *arguments]))  # the common options before the command name
        accepted = {param.name for param in command.params}  # after it, the command's own: demo has no --database-url
        after = [value for param in options(cli) if param.name in accepted for value in _value(param, tmp_path, database_url)[0]]
        runs.append((path, [*path, *arguments, *after]))
        for param in options(command):
            for given in _value(param, tmp_path, database_url):
                companion = COMPANIONS.get((path, given[0])) or COMPANIONS.get((path, given[-1])) or []
                runs.append((path, [*path, *arguments, *given, *(arg.format(tmp=tmp_path) for arg in companion)]))
    for path, args in runs:
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in result.output
        if any(path == refused and opt in args for refused, opt in REFUSED):
            assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, (args, result.output)
        else:
            assert result.exit_code == 0, (args, result.output)
        CliRunner().invoke(cli, ["db", "upgrade"], env=env)  # after a downgrade, the next run finds the schema
