"""Stragglers: transcripts still pending below the high water mark, re-checked at a cost in proportion to
their number instead of by walking the listing down to the oldest of them.

Pending is every status that is not final: `queued`, `processing`, and any status unknown or unreadable.
For those the walk does not reach (created at or before the high water mark):

1. One filtered listing per pending status they hold (`status=queued`, `status=processing`), paged down
   to the oldest of them. Every item must have the status asked for: a server that ignores the filter is
   caught here, and that status's stragglers are re-read one by one instead. A straggler listed there is
   still in that status, and the item is its exact list item.
2. Each straggler the filters do not settle (it moved on, or no filter lists its status) is re-read from
   the page just below the next newer transcript stored, `before_id=<that transcript>`: documented
   behaviour only, one request, and the item carries `completed`, which GET /v2/transcript/{id} lacks.

What that cannot settle (the cursor refused, the transcript not on the page), more stragglers to re-read
than the walk down to them has pages, and stragglers within a page of the newest stored transcript (the
walk reaches them for at most one more page) go to `walk_to`: the walk's floor goes down to them.
Nothing is remembered between runs but the rows themselves, so a run killed here loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from etl.api.client import ApiClient
from etl.errors import ApiError
from etl.model.items import PENDING_STATUSES, Item, parse_item
from etl.model.position import Boundary
from etl.walk.backwards import PAGE_SIZE, Plausible, reaches

log = logging.getLogger(__name__)

# Items asked for when re-reading one transcript below its neighbour: it is the first of them unless
# transcripts created in the same instant sit between the two.
REREAD_LIMIT = 20


@dataclass(frozen=True)
class Straggler:
    id: str
    created: datetime
    status: str | None

    @property
    def boundary(self) -> Boundary:
        return Boundary(self.id, self.created)


class StoredRows(Protocol):
    """What the re-check reads of the account's stored rows (etl.store.reads.StoredRows answers it)."""

    def pending_below(self, high_water: Boundary, listed_since: datetime) -> list[tuple[str, datetime, str | None]]: ...

    def nth_newest_created(self, n: int) -> datetime | None: ...

    def next_newer(self, created: datetime) -> str | None: ...

    def count_since(self, since: datetime) -> int: ...


def recheck(
    stored: StoredRows, client: ApiClient, high_water: Boundary | None, listed_since: datetime,
    keep_presigned_credentials: bool = False,
) -> Recheck:
    """The re-check of this account's stragglers: iterate it for the items to store, then read `walk_to`.
    Those a walk down to `high_water` does not re-read are the pending ones created at or before it."""
    if high_water is None:
        return Recheck(stored, client, [], 0, [], keep_presigned_credentials)  # the next walk goes to the end of the listing
    stragglers = [Straggler(*row) for row in stored.pending_below(high_water, listed_since)]
    # When the oldest of the newest page's worth of stored transcripts was created. An idle run has no
    # stragglers: then not even that query is made.
    top = stored.nth_newest_created(PAGE_SIZE) if stragglers else None
    # Within a page of the newest stored transcript, the walk reaches a straggler for at most one more page:
    # no dearer than a filtered listing, so it is left to the walk.
    near = [s for s in stragglers if top is None or s.created >= top]
    deep = [s for s in stragglers if top is not None and s.created < top]
    # The pages a walk from the newest transcript down to the oldest of them reads, as far as the table knows.
    walk_pages = stored.count_since(deep[0].created) // PAGE_SIZE + 1 if deep else 0
    return Recheck(stored, client, deep, walk_pages, near, keep_presigned_credentials)


class Recheck:
    """Iterate for batches of list items to store (each the exact item of a straggler, as listed now);
    afterwards `walk_to` holds the stragglers the walk must go down to instead."""

    def __init__(
        self, stored: StoredRows, client: ApiClient, stragglers: list[Straggler], walk_pages: int,
        walk_to: list[Straggler], keep_presigned_credentials: bool,
    ) -> None:
        self.stored, self.client = stored, client
        self.stragglers = stragglers
        self.walk_pages = walk_pages  # what walking down to the oldest straggler would cost
        self.walk_to = list(walk_to)
        self.keep_presigned_credentials = keep_presigned_credentials

    def _parse(self, raw: object) -> Item:
        return parse_item(raw, self.keep_presigned_credentials)

    def __iter__(self) -> Iterator[list[Item]]:
        reread = [s for s in self.stragglers if s.status not in PENDING_STATUSES]
        for status in PENDING_STATUSES:
            group = [s for s in self.stragglers if s.status == status]
            if group:
                reread += yield from self._filtered(status, group)
        if len(reread) > self.walk_pages:
            self.walk_to += reread  # one request each would cost more than the walk
            return
        for straggler in reread:
            item = self._reread(straggler)
            if item is None:
                self.walk_to.append(straggler)
            else:
                yield [item]

    def _filtered(self, status: str, group: list[Straggler]) -> Generator[list[Item], None, list[Straggler]]:
        """Page `status=<status>` down to the oldest of the group, yielding the group's items; return the
        stragglers not listed there (no longer in that status), or all if the filter proves unreliable."""
        wanted = {s.id: s for s in group}
        oldest = group[0]
        plausible = Plausible(datetime.now(timezone.utc), self.client.clock_ahead)
        before_id: str | None = None
        seen: set[str] = set()
        while True:
            try:
                body = self.client.list_transcripts(limit=PAGE_SIZE, before_id=before_id, status=status)
            except ApiError as exc:
                if exc.status != 400:
                    raise
                log.warning("the API refused status=%s (%s); re-checking %d such transcripts another way", status, exc, len(wanted))
                return list(wanted.values())
            items = [self._parse(raw) for raw in body["transcripts"]]
            problem = _unreliable(items, status, seen)
            if problem:
                log.warning("the API's status=%s listing %s; re-checking %d such transcripts another way", status, problem, len(wanted))
                return list(wanted.values())
            found = {item.id: item for item in items if item.id is not None and item.id in wanted}
            if found:
                yield list(found.values())
                for transcript_id in found:
                    del wanted[transcript_id]
            # The walk's own test: the straggler itself, or a plausible `created` before it (one odd value
            # does not end the listing early).
            ended = not items or body["page_details"].get("prev_url") is None or reaches(items, oldest.boundary, plausible)
            if ended:
                return list(wanted.values())
            before_id = items[-1].id
            if before_id is None:
                log.warning("the API's status=%s listing ended a page without an id; re-checking %d such transcripts another way", status, len(wanted))
                return list(wanted.values())
            seen.add(before_id)

    def _reread(self, straggler: Straggler) -> Item | None:
        neighbour = self.stored.next_newer(straggler.created)
        if neighbour is None:
            return None
        try:
            body = self.client.list_transcripts(limit=REREAD_LIMIT, before_id=neighbour)
        except ApiError as exc:
            if exc.status == 400:
                return None  # the neighbour has left the listing: the walk settles it
            raise
        return next((item for item in map(self._parse, body["transcripts"]) if item.id == straggler.id), None)


def _unreliable(items: list[Item], status: str, seen: set[str]) -> str | None:
    """What makes a page of a filtered listing unfit to prove a transcript is no longer in `status`."""
    for item in items:
        if item.row.get("status") != status:
            return f"listed transcript {item.id or '(no id)'} as {item.row.get('status')!r}: the server ignores the filter"
    if items and items[-1].id in seen:
        return f"listed transcript {items[-1].id} as the oldest of two pages"
    return None
