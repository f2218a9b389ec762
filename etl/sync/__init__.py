"""One run of one account. run_sync is its outline: it takes the account's lock, keeps the run's record
(etl.sync.record), walks the listing (etl.sync.listing, which stores pages through etl.sync.pages) and
fetches the details of final transcripts (etl.details.hydrate)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import replace as _replace

from sqlalchemy import Engine

from etl.api.client import ApiClient
from etl.config import Settings
from etl.details import derive
from etl.details.hydrate import HydrateOptions, hydrate, hydration_backlog
from etl.store import runs
from etl.store.analyze import Analyzer
from etl.sync.listing import Listing, ListingOptions
from etl.sync.record import EventCallback, RunRecord, RunStats


@dataclass(frozen=True)
class SyncOptions:
    """What a run does: sync the list (`full`: the whole of it, which catches deletions of older
    transcripts and marks rows that have left the 90-day window), then, with `hydration`, fetch the
    details of final transcripts; `listing_options`: how the list is walked."""

    listing: bool = True
    full: bool = False
    hydration: HydrateOptions | None = None
    listing_options: ListingOptions = ListingOptions()

    @classmethod
    def from_settings(cls, settings: Settings, *, full: bool, listing: bool, hydrate: bool) -> SyncOptions:
        hydration = HydrateOptions(
            settings.hydrate_workers, settings.store_words, settings.store_bodies, settings.keep_presigned_credentials,
            derive.Deriver(settings.derived_tables), settings.extra_details,
        ) if hydrate else None
        walking = ListingOptions(
            settings.partitions, settings.partition_days, settings.partition_writers, settings.keep_presigned_credentials
        )
        return cls(listing, full, hydration, walking)


def run_sync(engine: Engine, client: ApiClient, account: str, options: SyncOptions, on_event: EventCallback | None = None) -> RunStats:
    """Bring the account's transcripts up to date; raise SyncAlreadyRunning if another run holds its lock."""
    started = time.monotonic()
    with runs.locked(engine, account) as conn:
        record = RunRecord(conn, client, account, on_event or (lambda event, stats: None))

        def work() -> None:
            if options.listing:
                record.phase()
                Listing(conn, client, account, record, options.listing_options).until_current(options.full)
            if options.hydration is not None:
                _hydrate(record, options.hydration)

        record.around(started, work)
    return record.stats


def _hydrate(record: RunRecord, options: HydrateOptions) -> None:
    """Fetch the details due, each batch committed with the run's counters."""
    conn, client, stats = record.conn, record.client, record.stats
    stats.phase, stats.hydrate_total = "hydrating", hydration_backlog(conn, stats.account)
    requests = stats.hydrate_total * (1 + len(options.extra_details))  # each extra detail is one more
    stats.hydrate_estimate = math.ceil(requests / client.pacer.budget)
    record.phase()

    def batch_done(hydrated: int, failed: int) -> None:
        """After each hydration batch, in its transaction: the run's counters, then the commit."""
        record.commit(_replace(record.stats, hydrated=hydrated, hydrate_failures=failed))

    hydrate(conn, client, stats.account, options, batch_done)
    Analyzer(conn).after_hydration(record.stats.hydrated)
