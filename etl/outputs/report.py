"""What a person or a log collector sees: log lines, progress, the run summary, the error line."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import click

from etl.errors import redact
from etl.outputs.progress import RunProgress, TerminalBars, Ticker, describe

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
    """One object a line in the one event schema (`Reporter.record`), so a collector can follow a run."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            self.reporter.record(
                record.levelname.lower(), getattr(record, "event", "log"), record.getMessage(), getattr(record, "fields", {}), record.created
            )
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
        """The sync's events (etl.sync.record): bars on a terminal, else a progress event every interval."""
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
        elif name == "phase" and self._ticker is not None and (fields.get("eta_seconds") or 0) >= self.progress_interval:
            self._tick()  # a backlog that outlasts the interval: how long it will take, up front
        if name in ("run_finished", "run_failed"):
            self._stop_ticker()

    def _tick(self) -> None:
        fields = self._progress.fields() if self._progress else {}
        log.info("%s", describe(fields), extra={"event": "progress", "fields": fields})

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def record(
        self, level: str, event: str, message: str, fields: dict[str, Any], created: float | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """One JSON line of the event schema: time, level, event, run_id, account (null before a run starts),
        message, then the event's own fields, seconds and rates rounded as a person reads them."""
        if account is None and self._progress is not None:
            account = self._progress.fields().get("account")
        own = {name: _rounded(value) for name, value in fields.items() if name not in SCHEMA}
        return {
            "time": _iso(time.time() if created is None else created), "level": level, "event": event,
            "run_id": self.run_id, "account": account, "message": message, **own,
        }

    def write_log(self, line: str, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "retrying":
            # A retry is a count (bar, progress events, summary, metrics), not a line: the bar says it waits.
            if self._bars is not None:
                fields = record.__dict__["fields"]  # set by the client through `extra`
                self._bars.waiting(fields["delay"], fields["rate_limited"])
            return
        if self._bars is not None:
            self._bars.write(line)
        else:
            self._stream.write(line + "\n")
            self._stream.flush()

    def summary(self, account: str, stats: Any, listing: bool = True) -> None:
        self._end_progress()
        if self.quiet:
            return
        line = summary_line(account, stats, listing)
        if self.json:
            own = {name: value for name, value in vars(stats).items() if name not in _NOT_SUMMARISED}
            self._json_line(self.record("info", "run_finished", line, {"command": "sync" if listing else "hydrate", **own}, account=account))
        else:
            click.echo(line)

    def error(self, message: str) -> None:
        self._end_progress()
        message = redact(message, self.secrets)
        if self.json:
            self._json_line(self.record("error", "run_failed", message, {}), err=True)
        else:
            click.echo(f"aai-etl: error: {message}", err=True)

    def echo(self, text: str) -> None:
        click.echo(redact(text, self.secrets))

    def _json_line(self, line: dict[str, Any], err: bool = False) -> None:
        click.echo(redact(json.dumps(line), self.secrets), err=err)

    def _end_progress(self) -> None:
        self._stop_ticker()
        if self._bars is not None:
            self._bars.close()
            self._bars = None


# The fields every JSON line starts with, in this order (docs/running/watching.md).
SCHEMA = ("time", "level", "event", "run_id", "account", "message")
# The run's position when it ended, which the progress events say: not part of its result.
_NOT_SUMMARISED = {"phase", "days_done", "days_total", "oldest_day", "hydrate_estimate"}


def summary_line(account: str, stats: Any, listing: bool) -> str:
    """The run's summary, as the text log prints it and as the `run_finished` event's message."""
    retries = f", {stats.retries:,} retr{'y' if stats.retries == 1 else 'ies'}" if stats.retries else ""
    if not listing:
        return (
            f"details of '{account}' done: {stats.hydrated:,} fetched, {stats.hydrate_failures:,} failed, "
            f"{plural(stats.requests, 'request')}{retries}, {stats.seconds:.1f}s"
        )
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
    return (
        f"sync of '{account}' done: {stats.inserted:,} new, {stats.updated:,} updated, {stats.unchanged:,} "
        f"unchanged{rare}, {plural(stats.bad_values, 'bad value')}, {plural(stats.pages, 'page')}, "
        f"{plural(stats.requests, 'request')}{retries}, {stats.seconds:.1f}s"
    )


def _rounded(value: Any) -> Any:
    return round(value, 1) if isinstance(value, float) else value


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
