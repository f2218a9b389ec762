"""What a person or a log collector sees: log lines, progress, the run summary, the error line."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import Any

import click

from etl.errors import redact
from etl.progress import RunProgress, Ticker, TerminalBars, describe

log = logging.getLogger(__name__)


class _Redacting(logging.Filter):
    def __init__(self, secrets: list[str | None]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    """One object a line; `run_id` and `event` on every one, so a collector can follow a run."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": _iso(record.created),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
                **self.reporter.context(getattr(record, "event", "log")),
                **getattr(record, "fields", {}),
            }
        )


class _Output(logging.Handler):
    """Log lines to stderr, or above the progress bars while they are shown."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reporter.write_log(self.format(record), record)
        except Exception:
            self.handleError(record)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"aai-etl: {level}{record.getMessage()}"


class Reporter:
    """All output of one command, in text or JSON, with every secret redacted."""

    def __init__(
        self,
        log_format: str = "text",
        quiet: bool = False,
        secrets: list[str | None] | None = None,
        progress_interval: float = 30.0,
    ) -> None:
        self.json = log_format == "json"
        self.quiet = quiet
        self.secrets = list(secrets or [])
        self.run_id = uuid.uuid4().hex[:12]  # this invocation, in every JSON line
        self.progress_interval = progress_interval
        # Bars only where a person watches; cron, systemd and pipes get a progress event every interval.
        self.live = not quiet and not self.json and sys.stderr.isatty()
        self._stream = sys.stderr
        self._bars: TerminalBars | None = None
        self._progress: RunProgress | None = None
        self._ticker: Ticker | None = None
        handler = _Output(self)
        handler.addFilter(_Redacting(self.secrets))
        handler.setFormatter(_JsonFormatter(self) if self.json else _TextFormatter())
        root = logging.getLogger("etl")
        root.handlers[:] = [handler]
        root.setLevel(logging.WARNING if quiet else logging.INFO)
        root.propagate = False

    def event(self, name: str, stats: Any) -> None:
        """The sync's events (etl/sync.py): bars on a terminal, else a progress event every interval."""
        if name == "run_started" or self._progress is None:
            self._progress = RunProgress()
        fields = self._progress.update(name, stats)
        if self.live:
            self._bars = self._bars or TerminalBars(self._stream)
            self._bars.update(name, fields)
        elif name == "run_started":
            if self.json:  # a text log stays one summary line for a short run
                log.info("run %s of '%s' started", stats.sync_run, stats.account, extra={"event": name, "fields": {"sync_run": stats.sync_run}})
            if not self.quiet:
                self._ticker = Ticker(self.progress_interval, self._tick)
        if name in ("run_finished", "run_failed"):
            self._stop_ticker()

    def _tick(self) -> None:
        fields = self._progress.fields() if self._progress else {}
        log.info("%s", describe(fields), extra={"event": "progress", "fields": fields})

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def context(self, event: str) -> dict[str, Any]:
        """What every JSON line carries: the invocation's run_id, the event, the account being synced."""
        account = {"account": self._progress.fields().get("account")} if self._progress else {}
        return {"run_id": self.run_id, "event": event, **account}

    def write_log(self, line: str, record: logging.LogRecord) -> None:
        if self._bars is not None:
            if getattr(record, "event", None) == "retrying":
                fields = record.__dict__["fields"]  # set by the client through `extra`
                self._bars.waiting(fields["delay"], fields["rate_limited"])
            self._bars.write(line)
        else:
            self._stream.write(line + "\n")
            self._stream.flush()

    def summary(self, account: str, stats: Any, listing: bool = True) -> None:
        self._end_progress()
        if self.quiet:
            return
        if self.json:
            self._json_line({"event": "run_finished", "command": "sync" if listing else "hydrate", "account": account, **vars(stats)})
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
            self._json_line({"level": "error", "message": message, **self.context("run_failed")}, err=True)
        else:
            click.echo(f"aai-etl: error: {message}", err=True)

    def echo(self, text: str) -> None:
        click.echo(redact(text, self.secrets))

    def _json_line(self, payload: dict[str, Any], err: bool = False) -> None:
        line = {"time": _iso(time.time()), "run_id": self.run_id, **payload}
        click.echo(redact(json.dumps(line), self.secrets), err=err)

    def _end_progress(self) -> None:
        self._stop_ticker()
        if self._bars is not None:
            self._bars.close()
            self._bars = None


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
