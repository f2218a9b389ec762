"""Prometheus metrics of each run: a node_exporter textfile, written atomically, and a Pushgateway push.

The key metric is the time of the last success (Prometheus' advice for batch jobs); it comes from the
database, so a failed run reports it too. The push uses pushadd semantics (POST): it replaces only the
metrics it carries, and a run that cannot read the database leaves the stored last success alone.
A metrics file or push that fails is a warning: it never fails the sync. prometheus_client is imported
only when metrics are asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from etl.errors import CannotConnect, SyncAlreadyRunning
from etl.outputs import status
from etl.store.engine import connect

log = logging.getLogger(__name__)

JOB = "aai_etl"
PUSH_TIMEOUT_SECONDS = 10.0

# name -> help; every metric is a gauge, labelled with the account.
_HELP = {
    "last_success_timestamp_seconds": "Unix time the last successful run of the account finished (from the database).",
    "last_run_timestamp_seconds": "Unix time the last run finished, whatever its outcome.",
    "last_run_success": "1 if the last run succeeded, 0 if it failed.",
    "last_run_duration_seconds": "Wall time of the last run.",
    "last_run_rows": "Rows the last run wrote, by change (inserted, updated, unchanged, deleted, unlisted).",
    "last_run_requests": "HTTP requests the last run made, retries included.",
    "last_run_retries": "Requests of the last run that failed and were retried.",
    "last_run_rate_limited": "Responses of the last run that were HTTP 429 (rate limited).",
    "last_run_details_fetched": "Transcript details the last run fetched.",
    "last_run_detail_failures": "Transcript detail fetches of the last run that failed.",
    "pending_transcripts": "Transcripts not yet completed or error: queued, processing, or a status unknown or unreadable.",
    "hydration_backlog": "Final transcripts whose details are not fetched yet (waiting or failing).",
    "hydration_failing": "Transcripts whose detail fetch failed and waits for a retry.",
}
_ROW_CHANGES = ("inserted", "updated", "unchanged", "deleted", "unlisted")


@dataclass
class _Outcome:
    succeeded: bool
    finished: float
    stats: Any | None  # etl.sync.record.RunStats; None when the run failed before it began


class Recorder:
    """Collects how each account's run ended, then publishes the metrics of all of them."""

    def __init__(self, metrics_file: str | None, pushgateway: str | None) -> None:
        self.metrics_file, self.pushgateway = metrics_file, pushgateway
        self._outcomes: dict[str, _Outcome] = {}
        self._unreachable = False  # a run could not connect: asking the database again would wait as long again

    def observing(self, on_event: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
        """The sync's event callback, with the end of each run recorded on the way."""

        def both(event: str, stats: Any) -> None:
            on_event(event, stats)
            if event in ("run_finished", "run_failed"):
                self._outcomes[stats.account] = _Outcome(event == "run_finished", time.time(), replace(stats))

        return both

    def failed(self, account: str, error: BaseException) -> None:
        """A run that failed before it began (no database, no key). An overlapping run is no failure."""
        if account not in self._outcomes and not isinstance(error, SyncAlreadyRunning):
            self._outcomes[account] = _Outcome(False, time.time(), None)
        self._unreachable = self._unreachable or isinstance(error, CannotConnect)

    def publish(self, engine: Engine) -> None:
        if not self._outcomes or not (self.metrics_file or self.pushgateway):
            return
        if self._unreachable:
            log.warning("metrics without the database's figures (last success, backlog): the run could not reach the database")
            states = {}
        else:
            states = _states(engine, list(self._outcomes))
        if self.metrics_file:
            self._write_file(self.metrics_file, states)
        if self.pushgateway:
            self._push(self.pushgateway, states)

    def _write_file(self, path: str, states: dict[str, dict[str, Any]]) -> None:
        from prometheus_client import write_to_textfile

        registry = _registry(
            [({"account": account}, sample) for account, outcome in self._outcomes.items() for sample in _samples(outcome, states.get(account))]
        )
        try:
            # Written to a temporary file beside it, then renamed: the collector never reads half a file.
            write_to_textfile(path, registry)
        except OSError as exc:
            log.warning("could not write the metrics file %s: %s", path, exc.strerror or exc)

    def _push(self, url: str, states: dict[str, dict[str, Any]]) -> None:
        from prometheus_client import pushadd_to_gateway

        for account, outcome in self._outcomes.items():
            # The account is the push's grouping key, so the samples themselves do not carry it.
            registry = _registry([({}, sample) for sample in _samples(outcome, states.get(account))])
            try:
                pushadd_to_gateway(
                    url, job=JOB, registry=registry, grouping_key={"account": account}, timeout=PUSH_TIMEOUT_SECONDS
                )
            except Exception as exc:  # urllib raises many kinds; none of them may fail the sync
                log.warning("could not push metrics of '%s' to the Pushgateway %s: %s", account, url, _reason(exc))


def _states(engine: Engine, accounts: list[str]) -> dict[str, dict[str, Any]]:
    """Each account's state from the database, or nothing when the database cannot be read."""
    try:
        with connect(engine) as conn:
            return status.health(conn, accounts)
    except Exception as exc:  # the database that failed the run may fail this too
        log.warning("metrics without the database's figures (last success, backlog): %s", str(exc).splitlines()[0])
        return {}


_Sample = tuple[str, dict[str, str], float]


def _samples(outcome: _Outcome, state: dict[str, Any] | None) -> list[_Sample]:
    """Only what is known: a metric without a value is left out, never sent as 0 (which, pushed, would
    overwrite the last success a failed run could not read)."""
    samples: list[_Sample] = [
        ("last_run_timestamp_seconds", {}, outcome.finished),
        ("last_run_success", {}, int(outcome.succeeded)),
    ]
    stats = outcome.stats
    if stats is not None:
        samples += [("last_run_duration_seconds", {}, stats.seconds)]
        samples += [("last_run_rows", {"change": change}, getattr(stats, change)) for change in _ROW_CHANGES]
        samples += [
            ("last_run_requests", {}, stats.requests),
            ("last_run_retries", {}, stats.retries),
            ("last_run_rate_limited", {}, stats.rate_limited),
            ("last_run_details_fetched", {}, stats.hydrated),
            ("last_run_detail_failures", {}, stats.hydrate_failures),
        ]
    if state is not None:
        if state["last_success"] is not None:
            samples.append(("last_success_timestamp_seconds", {}, datetime.fromisoformat(state["last_success"]).timestamp()))
        samples += [
            ("pending_transcripts", {}, state["pending"]),
            ("hydration_backlog", {}, state["waiting"] + state["failing"]),
            ("hydration_failing", {}, state["failing"]),
        ]
    return samples


def _registry(samples: list[tuple[dict[str, str], _Sample]]) -> Any:
    from prometheus_client import CollectorRegistry, Gauge

    registry, gauges = CollectorRegistry(), {}
    for base, (name, labels, value) in samples:
        labels = {**base, **labels}
        if name not in gauges:
            gauges[name] = Gauge(f"{JOB}_{name}", _HELP[name], list(labels), registry=registry)
        (gauges[name].labels(**labels) if labels else gauges[name]).set(value)
    return registry


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
