"""Day partitions: a first backfill or `sync --full` walks the listing as UTC days, several at once.

Each day is listed with `created_on=YYYY-MM-DD` and walked back within the day with `before_id`. What the
server does with `created_on` is undocumented: honoured with a cursor, ignored once a cursor is given,
refused (400) with a cursor, its days counted in another time zone, or the cursor ignored once it is given.
So every item's `created` is checked against its day, and every page asked with a cursor against the
cursor: an item of another day, a refusal, or a page holding the cursor, an item of the page before or an
item created after the cursor raises Unpartitionable, and the caller walks the listing serially instead,
as it does for this walk alone after a malformed page (an item without a usable id or a plausible
`created`, an empty page pointing to older ones). A day that never sends a cursor (at most a page) is
exact under all five readings. A full page without `prev_url` does not end its day: the day goes on from
its oldest item, as a server may leave `prev_url` out of a dated listing. A transcript whose `created`
cannot be placed in a day is listed by no day: only the serial walk sees it.

Threads fetch the days, as many as the request budget keeps busy at the measured latency, and the
client's pacer spaces all of their requests. The pages come back in batches, in the order they arrived:
each batch holds every page waiting, several days' pages when the database is the slower side. The
caller (etl.sync.pages) stores a batch in one transaction with its days' positions, or, on several writer
connections, each page with its own day's position. Transcripts created meanwhile are above every day's
walk: the plain walk from the newest page that follows picks them up. An empty last page asked with a
cursor is asked for once more before it ends its day, as in the serial walk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from etl.api.client import ApiClient
from etl.errors import ApiError, PaginationError
from etl.model.items import Item, parse_item
from etl.model.position import Boundary
from etl.walk.backwards import (
    CLOCK_SKEW, LISTING_WINDOW, PAGE_SIZE, WINDOW_SLACK, Plausible, empty_end, full_page, next_before_id,
)

# The most list items handed to the caller at once: the pages that have arrived while it stored the last.
BATCH_ITEMS = 2_000
# The most pages fetched and not yet stored: memory stays bounded while the database is the slower side.
QUEUED_PAGES = 64


class Unpartitionable(Exception):
    """Day partitions cannot be trusted for this walk: why, in one line. `misread`: the API's `created_on`
    is at fault (remembered for the account), not a malformed page (this walk only)."""

    def __init__(self, reason: str, misread: bool = True) -> None:
        super().__init__(reason)
        self.misread = misread


@dataclass(frozen=True)
class DayPage:
    day: date
    items: list[Item]
    # Where the day's walk goes on; None when this page ends the day.
    resume_before_id: str | None
    newest: Boundary | None
    oldest: Boundary | None


def days(now: datetime) -> list[date]:
    """Every UTC day the listing can hold, newest first."""
    first = (now - LISTING_WINDOW - WINDOW_SLACK).date()
    last = (now + CLOCK_SKEW).date()
    return [last - timedelta(days=n) for n in range((last - first).days + 1)]


def walk_days(
    client: ApiClient, positions: dict[date, str | None], *, at_once: Callable[[], int], now: datetime,
    keep_presigned_credentials: bool = False, created: dict[str, datetime] | None = None,
) -> Generator[list[DayPage], None, None]:
    """Yield the pages of these days (each from its `before_id`, None: from the day's newest; `created`: when
    those cursors were created, where known) as they arrive, `at_once()` days at a time (asked again as
    pages arrive: the number follows the latency): each time, every page waiting (at least one, up to
    BATCH_ITEMS items), in the order they came. Raises Unpartitionable as soon as any day shows
    `created_on` misread (after yielding the pages that came before)."""
    plausible = Plausible(now, client.clock_ahead)
    known = created or {}
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for day in sorted(positions, reverse=True):
        todo.put(day)
    results: queue.Queue = queue.Queue(maxsize=QUEUED_PAGES)
    stop = threading.Event()
    lock = threading.Lock()
    running = 0

    def wanted() -> int:
        return max(1, min(at_once(), len(positions)))

    def put(result: Any) -> bool:
        while not stop.is_set():
            try:
                results.put(result, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def leaves() -> bool:
        """Whether this thread is one too many for the latency now: it leaves before its next day."""
        nonlocal running
        with lock:
            if running > wanted():
                running -= 1
                return True
        return False

    def work() -> None:
        try:
            while not stop.is_set() and not leaves():
                try:
                    day = todo.get_nowait()
                except queue.Empty:
                    break
                cursor = positions[day]
                above = Boundary(cursor, known[cursor]) if cursor is not None and cursor in known else None
                for page in _walk_day(client, day, cursor, above, plausible, keep_presigned_credentials, stop):
                    if not put(page):
                        return
        except BaseException as exc:  # handed to the caller, which raises it
            put(exc)
            return
        put(None)

    started = 0

    def start_wanted() -> None:
        # Daemon threads, not an executor: a request stuck in its read timeout must not hold up an exit.
        nonlocal started, running
        while not todo.empty():
            with lock:
                if running >= wanted():
                    return
                running += 1
            threading.Thread(target=work, name=f"aai-etl-day-{started}", daemon=True).start()
            started += 1

    start_wanted()
    finished = 0
    try:
        while finished < started:
            batch: list[DayPage] = []
            failed: BaseException | None = None
            result = results.get()
            while True:
                if result is None:
                    finished += 1
                elif isinstance(result, BaseException):
                    failed = result
                    break
                else:
                    batch.append(result)
                if finished == started or sum(len(page.items) for page in batch) >= BATCH_ITEMS:
                    break
                try:
                    result = results.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch
            if failed is not None:
                raise failed
            start_wanted()
    finally:
        stop.set()


def _walk_day(
    client: ApiClient, day: date, before_id: str | None, cursor: Boundary | None, plausible: Plausible,
    keep_presigned_credentials: bool, stop: threading.Event,
) -> Iterator[DayPage]:
    """The pages of one day from `before_id`; `cursor`: that transcript, when its `created` is known."""
    seen: set[str] = {before_id} if before_id else set()
    previous: set[str] = set()  # the ids of the page before: a page asked below it holds none of them
    reread = None  # the before_id whose empty last page has been asked for twice
    while not stop.is_set():
        try:
            body = client.list_transcripts(limit=PAGE_SIZE, before_id=before_id, created_on=day.isoformat())
        except ApiError as exc:
            if exc.status == 400:
                cursor_text = f" with before_id={before_id}" if before_id else ""
                raise Unpartitionable(f"the API refused created_on={day}{cursor_text} ({exc})") from None
            raise
        if before_id is not None and before_id != reread and empty_end(body):
            # The day's end, or a page the API dropped: asked once more before it is believed, as a serial
            # walk does. A day that ends exactly where a page does costs this one request.
            reread = before_id
            continue
        items = [parse_item(raw, keep_presigned_credentials) for raw in body["transcripts"]]
        ordered = plausible.boundaries(items)
        if len(ordered) != len(items):
            raise Unpartitionable(f"created_on={day} listed a transcript without a usable id or a plausible created", False)
        for boundary in ordered:
            if boundary.created.date() != day:
                raise Unpartitionable(
                    f"created_on={day} listed transcript {boundary.id} created {boundary.created:%Y-%m-%d %H:%M:%S} UTC"
                )
        if before_id is not None:
            _below(day, before_id, cursor, previous, ordered)
        prev_url = body["page_details"]["prev_url"]
        if not items and prev_url is not None:
            # Empty, yet pointing to older transcripts: what it should hold is unseen.
            raise Unpartitionable(f"created_on={day} sent an empty page that points to older transcripts", False)
        # A full page without prev_url may not be the day's last: what is older than its oldest item is asked.
        ended = prev_url is None and not full_page(body, PAGE_SIZE)
        next_id = None if ended else next_before_id(prev_url, ordered, items)
        if next_id is not None and next_id in seen:
            raise PaginationError(
                f"the API listed transcript {next_id} as the oldest of two pages of {day}; stopping rather than looping "
                "(nothing is lost: the next run resumes from the last saved page)"
            )
        yield DayPage(day, items, next_id, ordered[0] if ordered else None, ordered[-1] if ordered else None)
        if next_id is None:
            return
        seen.add(next_id)
        cursor = next((boundary for boundary in ordered if boundary.id == next_id), None)
        previous = {boundary.id for boundary in ordered}
        before_id = next_id


def _below(day: date, before_id: str, cursor: Boundary | None, previous: set[str], ordered: list[Boundary]) -> None:
    """Raise Unpartitionable if this page, asked with `before_id`, is not below it: it holds the cursor, an item
    of the page before, or one created after the cursor. Then the server ignores `before_id` with `created_on`."""
    for boundary in ordered:
        if (
            boundary.id == before_id or boundary.id in previous
            or (cursor is not None and (boundary.created, boundary.id) > (cursor.created, cursor.id))
        ):
            raise Unpartitionable(
                f"created_on={day} with before_id={before_id} listed transcript {boundary.id}, which is not older: "
                "the API ignores before_id in a dated listing"
            )
