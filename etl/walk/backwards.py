"""The backwards walk: the listing's pages as list items, and the one `after_id` request that may replace a walk.

The listing is walked newest to oldest with `before_id`, down to a floor. That is exact whatever the
undocumented `after_id` does with more than a page of newer transcripts (oldest 200 after the cursor, or
newest 200). `after_id` is asked only where both readings agree (`newer_than`): fewer than a page back
means nothing newer is missing. A page is full when it holds as many items as the server's own
`page_details.limit` (a server whose maximum is below 200 says so there), not the 200 asked for.
Transcripts created during a walk appear above its top and are picked up by the next walk, so nothing is
skipped; `next_url` is ignored, since it is never null.

Each page says where the walk goes on after it. The cursor that remembers that is
etl.model.position.Cursor, and etl.walk.planner decides how a page moves it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from etl.api.client import ApiClient
from etl.errors import ApiError, CursorRejected, PaginationError
from etl.model.items import Item, parse_item
from etl.model.position import Boundary

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # the API's maximum
# The API lists the last 90 days. A `created` outside that window (give or take a little slack for the
# window's own edge) or in the future (beyond a little clock skew) is an odd value, not evidence.
LISTING_WINDOW = timedelta(days=90)
WINDOW_SLACK = timedelta(days=2)
CLOCK_SKEW = timedelta(minutes=15)
# The floor is passed when the walk meets the floor transcript itself, or this many items in a row (in
# the API's (created, id) order) created before it: one odd `created` must not end a walk early.
RUN_PAST_FLOOR = 20


@dataclass(frozen=True)
class Page:
    items: list[Item]
    # Where the walk goes on after this page; None when this page ends it.
    resume_before_id: str | None
    # The newest and oldest items by (created, id), among those whose `created` is plausible.
    newest: Boundary | None
    oldest: Boundary | None
    # True when the API said nothing older is listed (prev_url null): the walk provably saw the whole listing.
    reached_end: bool
    # Listed items whose `created` is not plausible: listed, whatever their `created` says.
    odd_ids: frozenset[str]
    # True for a page without a usable id (not the empty end of the listing): what it should hold is unseen.
    gap: bool
    # True when it holds as many items as the server puts on a page (full_page).
    full: bool


class Plausible:
    """Which `created` values a walk may decide on: full timestamps inside the listing window.

    `ahead`: how far the API's clock is seen ahead of ours (ApiClient.clock_ahead), asked at each decision,
    since the first response tells it. Its `created` values run ahead as far: without it, every new
    transcript would look created in the future, and the mark could never move to it."""

    def __init__(self, now: datetime, ahead: Callable[[], timedelta] = lambda: timedelta(0)) -> None:
        self.now = now
        self.earliest = now - LISTING_WINDOW - WINDOW_SLACK
        self._ahead = ahead

    @property
    def latest(self) -> datetime:
        return self.now + CLOCK_SKEW + self._ahead()

    def boundaries(self, items: list[Item]) -> list[Boundary]:
        """The items with a plausible `created`, newest first in the API's (created, id) order."""
        earliest, latest = self.earliest, self.latest
        found = [
            Boundary(item.id, created)
            for item in items
            if item.id is not None and (created := item.row.get("created")) is not None and earliest <= created <= latest
        ]
        return sorted(found, key=lambda boundary: (boundary.created, boundary.id), reverse=True)


def walk_back(
    client: ApiClient,
    *,
    before_id: str | None,
    floor: Boundary | None,
    now: datetime | None = None,
    keep_presigned_credentials: bool = False,
    first: dict | None = None,
) -> Iterator[Page]:
    """Yield pages older than `before_id` (or from the newest), ending with the page that reaches `floor`.
    `first`: the newest page, already read (without `before_id`), to start from instead of asking again.

    The floor is reached by meeting the floor transcript or a run of items created before it; without a
    floor the walk goes to the end of the listing. The next page is the one the API's `prev_url` names.
    The caller commits each page before asking for the next.
    """
    plausible = Plausible(now or datetime.now(timezone.utc), client.clock_ahead)
    seen: set[str | None] = {before_id} if before_id else set()
    run = 0  # items in a row, across pages, created before the floor
    downloads = _Downloads(client)
    try:
        upcoming = downloads.fetch(before_id, first if before_id is None else None)
        reread = None  # the before_id whose empty last page has been asked for twice
        while True:
            body = _page(upcoming, before_id)
            if before_id is not None and before_id != reread and empty_end(body):
                # A page named by the one above it, empty and the end of the listing: the end, or a page the API
                # dropped. Asked once more before it is believed; a listing that ends exactly where a page does
                # costs this one request.
                reread, upcoming = before_id, downloads.fetch(before_id)
                continue
            items = [parse_item(raw, keep_presigned_credentials) for raw in body["transcripts"]]
            ordered = plausible.boundaries(items)
            reached, run = _reaches_floor(ordered, floor, run)
            prev_url = body["page_details"]["prev_url"]
            end = prev_url is None  # documented for the listing without filters: nothing older exists
            next_id = None if end or reached else next_before_id(prev_url, ordered, items)
            # A page without a usable id hides what it should hold: transcripts (it has items), or older
            # ones (it is empty, yet has a prev_url).
            gap = all(item.id is None for item in items) and (bool(items) or not end)
            if gap:
                log.warning(
                    "the API sent a page of %d transcripts without a usable id%s; the next run walks this stretch again",
                    len(items), "" if end else " that still points to older ones: went on through its prev_url",
                )
            if next_id is not None and next_id in seen:
                raise PaginationError(
                    f"the API listed transcript {next_id} as the oldest of two pages; stopping rather than looping "
                    "(nothing is lost: the next run resumes from the last saved page)"
                )
            if next_id is not None:
                # The next page downloads while the caller stores this one: at most two pages in memory.
                upcoming = downloads.fetch(next_id)
            usable = {boundary.id for boundary in ordered}
            odd = frozenset(item.id for item in items if item.id is not None and item.id not in usable)
            newest, oldest = (ordered[0], ordered[-1]) if ordered else (None, None)
            yield Page(items, next_id, newest, oldest, end, odd, gap, full_page(body, PAGE_SIZE))
            if next_id is None:
                return
            seen.add(next_id)
            before_id = next_id
    finally:
        downloads.close()


def empty_end(body: dict) -> bool:
    """An empty page that says nothing older exists: the end of a listing, or a page the API dropped."""
    return not body["transcripts"] and body["page_details"]["prev_url"] is None


def _reaches_floor(ordered: list[Boundary], floor: Boundary | None, run: int) -> tuple[bool, int]:
    """Whether these items, newest first, reach the floor; and the run of items past it so far."""
    if floor is None:
        return False, 0
    for boundary in ordered:
        if boundary.id == floor.id:
            return True, run
        run = run + 1 if (boundary.created, boundary.id) < (floor.created, floor.id) else 0
        if run >= RUN_PAST_FLOOR:
            return True, run
    return False, run


def full_page(body: dict, asked: int) -> bool:
    """Whether this page holds as many items as the server puts on a page: its `page_details.limit` (the
    limit it applied, which a server whose maximum is lower than the one asked for makes smaller) or,
    when that is unreadable, the one asked for. A `result_count` equal to the limit says so too."""
    details = body["page_details"]
    stated = details.get("limit")
    limit = min(asked, stated) if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0 else asked
    count = details.get("result_count")
    return len(body["transcripts"]) >= limit or (isinstance(count, int) and count >= limit)


def next_before_id(prev_url: Any, ordered: list[Boundary], items: list[Item]) -> str:
    """The `before_id` of the next page: the one `prev_url` names (the API knows its own order), else the
    oldest item of this page. An empty page, or one without usable ids, is followed through `prev_url`."""
    if isinstance(prev_url, str):
        named = parse_qs(urlsplit(prev_url).query).get("before_id")
        if named and named[0]:
            return named[0]
    if ordered:
        return ordered[-1].id
    with_ids = [item.id for item in items if item.id is not None]
    if with_ids:  # none with a plausible `created`: the API's own order is all there is
        return with_ids[-1]
    raise PaginationError(
        f"the API sent a page of {len(items)} transcripts without a usable id and a prev_url without before_id "
        f"({str(prev_url)[:200]!r}): there is no way to go on; nothing is lost, the next run resumes from the last saved page"
    )


class _Downloads:
    """One thread that downloads a walk's pages, one at a time, ahead of the caller.

    A daemon thread, not an executor: a request stuck in its read timeout must not hold up the exit of a
    process told to stop.
    """

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="aai-etl-download", daemon=True).start()

    def fetch(self, before_id: str | None, body: dict | None = None) -> Future:
        """The page before `before_id`, downloading; `body`: that page, already read."""
        future: Future = Future()
        if body is not None:
            future.set_result(body)
        else:
            self._requests.put((before_id, future))
        return future

    def close(self) -> None:
        self._requests.put(None)

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            before_id, future = request
            try:
                future.set_result(self._client.list_transcripts(limit=PAGE_SIZE, before_id=before_id))
            except BaseException as exc:  # handed to the caller, which raises it where it asks for the page
                future.set_exception(exc)


def _page(upcoming: Future, before_id: str | None) -> dict:
    try:
        return upcoming.result()
    except ApiError as exc:
        if exc.status == 400 and before_id is not None:
            raise CursorRejected(before_id, str(exc)) from None
        raise


def newer_than(
    client: ApiClient, mark: Boundary, *, now: datetime | None = None, keep_presigned_credentials: bool = False,
) -> list[Item] | None:
    """Every transcript newer than `mark`, from one `after_id` request; None when that cannot be known so.

    Fewer than a page back holds all of them whichever 200 the API picks when more are newer (the oldest
    after the cursor, or the newest): then the answer is exact. A full page, an item without a usable id or
    with an implausible `created`, or one not newer than the mark by (created, id) leaves it unknown, and
    so does a mark the API refuses (400: it has left the listing): the caller walks instead.
    """
    try:
        body = client.list_transcripts(limit=PAGE_SIZE, after_id=mark.id)
    except ApiError as exc:
        if exc.status == 400:
            log.info("the API refused after_id=%s (%s); walking from the newest page instead", mark.id, exc)
            return None
        raise
    items = [parse_item(raw, keep_presigned_credentials) for raw in body["transcripts"]]
    if full_page(body, PAGE_SIZE):
        return None  # more may be newer than this page shows: which page came back is undocumented
    plausible = Plausible(now or datetime.now(timezone.utc), client.clock_ahead)
    ordered = plausible.boundaries(items)
    if len(ordered) != len(items) or any((b.created, b.id) <= (mark.created, mark.id) for b in ordered):
        log.info("after_id=%s returned items it should not have (no usable id, an odd created, or not newer); walking instead", mark.id)
        return None
    return items


def reaches(items: list[Item], boundary: Boundary, plausible: Plausible) -> bool:
    """True when the items hold the boundary transcript or one plausibly created before it."""
    return any(item.id == boundary.id for item in items) or any(
        other.created < boundary.created for other in plausible.boundaries(items)
    )
