"""`--help` a user can act on: whole summaries, values named for what they are, only the options a command
takes, an example for each command and the exit statuses."""

from __future__ import annotations

import click
from conftest import run_cli

from etl.cli import cli


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found.extend(every_command(command, (*path, name)))
    return found


def test_the_group_lists_whole_summaries_and_the_exit_statuses():
    shown = run_cli(["--help"], {}).stdout
    assert "…" not in shown and "..." not in shown.split("Commands:")[1]
    flat = "".join(shown.split())  # however the lines wrap
    for name, command in cli.commands.items():
        assert "".join((command.help or "").split("\n\n")[0].split()) in flat, name
    assert "Exit statuses:" in shown
    statuses = [line.split()[0] for line in shown.split("Exit statuses:")[1].splitlines() if line.strip()]
    assert statuses == ["0", "1", "2", "75", "130", "141"]


def test_each_command_has_an_example_and_readable_metavars():
    for path in every_command():
        shown = run_cli([*path, "--help"], {}).stdout
        assert "Example:  " in shown and f"aai-etl {' '.join(path)}" in shown.split("Example:  ")[1], path
        assert "TEXT" not in shown and "%Y" not in shown and "FLOAT" not in shown and "INTEGER" not in shown, (path, shown)
    assert "--since DATE" in run_cli(["stats", "--help"], {}).stdout
    sync = run_cli(["sync", "--help"], {}).stdout
    assert "--metrics-file PATH" in sync and "--pushgateway URL" in sync and "--database-url URL" in sync
    assert "--max-age DURATION" in run_cli(["status", "--help"], {}).stdout


def test_commands_that_never_open_the_database_do_not_offer_it():
    for command in ("demo", "simulate"):
        shown = run_cli([command, "--help"], {}).stdout
        assert "--database-url" not in shown and "--log-format" in shown, command
