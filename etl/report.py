"""What a person or a log collector sees: log lines, progress, the run summary, the error line."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import Any

import click

from etl.errors import redact


class _Redacting(logging.Filter):
    def __init__(self, secrets: list[str | None]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"time": _iso(record.created), "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        )


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"aai-etl: {level}{record.getMessage()}"


class Reporter:
    """All output of one command, in text or JSON, with every secret redacted."""

    def __init__(self, log_format: str = "text", quiet: bool = False, secrets: list[str | None] | None = None) -> None:
        self.json = log_format == "json"
        self.quiet = quiet
        self.secrets = list(secrets or [])
        # A bar only where a person watches: cron, systemd and pipes get nothing until the summary.
        self.live = not quiet and not self.json and sys.stderr.isatty()
        self._started = time.monotonic()
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_Redacting(self.secrets))
        handler.setFormatter(_JsonFormatter() if self.json else _TextFormatter())
        root = logging.getLogger("etl")
        root.handlers[:] = [handler]
        root.setLevel(logging.WARNING if quiet else logging.INFO)
        root.propagate = False

    def progress(self, stats: Any) -> None:
        if not self.live:
            return
        rate = stats.inserted / max(time.monotonic() - self._started, 1e-6)
        details = f" · {stats.hydrated:,} details" if stats.hydrated else ""
        click.echo(
            f"\r  {stats.inserted:,} new, {stats.updated:,} updated · {plural(stats.pages, 'page')} · {rate:,.0f} new/s{details} ",
            err=True,
            nl=False,
        )

    def summary(self, account: str, stats: Any, listing: bool = True) -> None:
        self._end_progress()
        if self.quiet:
            return
        if self.json:
            self._json_line({"event": "sync_finished" if listing else "hydrate_finished", "account": account, **vars(stats)})
        elif not listing:
            click.echo(
                f"details of '{account}' done: {stats.hydrated:,} fetched, {stats.hydrate_failures:,} failed, "
                f"{plural(stats.requests, 'request')}, {stats.seconds:.1f}s"
            )
        else:
            # Deletions and unlisting are rare: named only when they happened, to keep the usual line short.
            rare = "".join(
                f", {count:,} {label}"
                for count, label in (
                    (stats.deleted, "deleted"),
                    (stats.unlisted, "no longer listed"),
                    (stats.hydrated, "details fetched"),
                    (stats.hydrate_failures, "detail fetches failed"),
                )
                if count
            )
            click.echo(
                f"sync of '{account}' done: {stats.inserted:,} new, {stats.updated:,} updated, {stats.unchanged:,} "
                f"unchanged{rare}, {plural(stats.bad_values, 'bad value')}, {plural(stats.pages, 'page')}, {plural(stats.requests, 'request')}, "
                f"{stats.seconds:.1f}s"
            )

    def error(self, message: str) -> None:
        self._end_progress()
        message = redact(message, self.secrets)
        if self.json:
            self._json_line({"level": "error", "message": message}, err=True)
        else:
            click.echo(f"aai-etl: error: {message}", err=True)

    def echo(self, text: str) -> None:
        click.echo(redact(text, self.secrets))

    def _json_line(self, payload: dict[str, Any], err: bool = False) -> None:
        click.echo(redact(json.dumps({"time": _iso(time.time()), **payload}), self.secrets), err=err)

    def _end_progress(self) -> None:
        if self.live:
            click.echo("\r\033[K", err=True, nl=False)
            self.live = False


def plural(count: int, noun: str) -> str:
    """`1 page`, `2 pages`: a count with its noun."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def text_table(header: Sequence[str], rows: list[list[str]], right_from: int | None = None) -> str:
    """Columns padded to line up; from column `right_from` on, cells are right-aligned (numbers)."""
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(header)]

    def line(cells: Sequence[str], align: bool) -> str:
        return "  ".join(
            cell.rjust(width) if align and right_from is not None and i >= right_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header, False), *(line(row, True) for row in rows)])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
