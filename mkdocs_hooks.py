"""MkDocs hooks that write the reference pages from the code, so they cannot drift from it.

A page asks for a generated part with a marker line: `<!-- generated: commands -->` (every command's
`--help`, from click's command tree), `<!-- generated: settings -->` (the one settings table) or
`<!-- generated: schema -->` (every table and column, from the SQLAlchemy metadata). A column's meaning is
its `comment` in etl/store/schema.py, else its line in docs/reference/columns.yml (under its table, or under
`every table` for a column many tables share); the build fails on a column with no meaning, and on a
meaning for a column that no longer exists.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

ROOT = Path(__file__).resolve().parent
MEANINGS = ROOT / "docs" / "reference" / "columns.yml"
# Each column type as an analyst reads it; a type missing here fails the build.
TYPES = {
    "Text": "text", "UTCDateTime": "timestamp (UTC)", "RawJSON": "JSON", "Float": "double", "Integer": "integer",
    "BigInteger": "bigint", "Boolean": "boolean", "Date": "date",
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for name, make in (("commands", commands), ("settings", settings), ("schema", schema), ("changelog", changelog)):
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def _command_tree(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _command_tree(command, (*path, name))


def commands() -> str:
    """Every command's `--help`, as a user's terminal (80 columns) prints it."""
    from click.testing import CliRunner

    from etl.cli import cli

    parts = []
    for path, _ in [((), cli), *_command_tree(cli)]:
        output = CliRunner().invoke(cli, [*path, "--help"], prog_name="aai-etl", terminal_width=80).output
        parts.append(f"### `{' '.join(('aai-etl', *path))}`\n\n```text\n{output.strip()}\n```\n")
    return "\n".join(parts)


def settings() -> str:
    from etl.config import settings_markdown

    return settings_markdown()


def schema() -> str:
    from etl.store.schema import metadata

    meanings: dict[str, dict[str, str]] = yaml.safe_load(MEANINGS.read_text())
    shared = meanings.pop("every table")
    stale = [f"{name}.*" for name in meanings if name not in metadata.tables]
    missing: list[str] = []
    parts = []
    for table in sorted(metadata.tables.values(), key=lambda t: (t.name != "transcripts", t.name)):
        known = meanings.get(table.name, {})
        stale += [f"{table.name}.{column}" for column in known if column not in table.c]
        key = ", ".join(f"`{column.name}`" for column in table.primary_key.columns)
        rows = ["| column | type | NULL | meaning |", "| --- | --- | --- | --- |"]
        for column in table.columns:
            meaning = column.comment or known.get(column.name) or shared.get(column.name)
            if not meaning:
                missing.append(f"{table.name}.{column.name}")
            kind = TYPES[type(column.type).__name__]
            rows.append(f"| `{column.name}` | {kind} | {'yes' if column.nullable else 'no'} | {meaning} |")
        indexes = ", ".join(sorted(f"`{index.name}`" for index in table.indexes)) or "none besides the key"
        parts.append(f"### `{table.name}`\n\nPrimary key: {key}. Indexes: {indexes}.\n\n" + "\n".join(rows) + "\n")
    if missing or stale:
        raise SystemExit(
            f"docs/reference/columns.yml: no meaning for {', '.join(missing) or 'none'}; "
            f"meanings of columns that do not exist: {', '.join(stale) or 'none'}"
        )
    return "\n".join(parts)


def changelog() -> str:
    """CHANGELOG.md without its title, which the page has."""
    return (ROOT / "CHANGELOG.md").read_text().split("\n", 1)[1]
