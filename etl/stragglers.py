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

from sqlalchemy import Connection, func, select

from etl.client import ApiClient
from etl.errors import ApiError
from etl.extract import PAGE_SIZE, Boundary, Plausible, reaches
from etl.items import PENDING_STATUSES, Item, parse_item
from etl.schema import NOT_FINAL, transcripts

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


def recheck(
    conn: Connection, client: ApiClient, account: str, high_water: Boundary | None, listed_since: datetime,
    keep_presigned_credentials: bool = False,
) -> Recheck:
    """The re-check of this account's stragglers: iterate it for the items to store, then read `walk_to`."""
    stragglers = _find(conn, account, high_water, listed_since)
    top = _page_bottom(conn, account) if stragglers else None  # an idle run has none: one query, through an index
    # Within a page of the newest stored transcript, the walk reaches a straggler for at most one more page:
    # no dearer than a filtered listing, so it is left to the walk.
    near = [s for s in stragglers if top is None or s.created >= top]
    deep = [s for s in stragglers if top is not None and s.created < top]
    walk_pages = _walk_pages(conn, account, deep[0].created) if deep else 0
    return Recheck(conn, client, account, deep, walk_pages, near, keep_presigned_credentials)


def _find(conn: Connection, account: str, high_water: Boundary | None, listed_since: datetime) -> list[Straggler]:
    """Pending transcripts still listed that a walk down to `high_water` does not re-read, oldest first."""
    if high_water is None:
        return []  # no walk has finished: the next one goes to the end of the listing
    rows = conn.execute(
        select(transcripts.c.id, transcripts.c.created, transcripts.c.status)
        .where(
            transcripts.c.account == account,
            transcripts.c.unlisted_at.is_(None),
            NOT_FINAL,
            transcripts.c.created >= listed_since,
            transcripts.c.created <= high_water.created,
            transcripts.c.id != high_water.id,
        )
        .order_by(transcripts.c.created, transcripts.c.id)
    ).all()
    return [Straggler(row.id, row.created, row.status) for row in rows]


def is_pending(conn: Connection, account: str, transcript_id: str) -> bool:
    """Whether this stored transcript is still pending: the high water mark's own row is re-read by the walk
    that meets it, not by `recheck`."""
    return conn.execute(
        select(transcripts.c.id).where(transcripts.c.account == account, transcripts.c.id == transcript_id, NOT_FINAL)
    ).first() is not None


def _page_bottom(conn: Connection, account: str) -> datetime | None:
    """When the oldest of the newest page's worth of stored transcripts was created; None if fewer are stored."""
    return conn.execute(
        select(transcripts.c.created)
        .where(transcripts.c.account == account, transcripts.c.unlisted_at.is_(None))
        .order_by(transcripts.c.created.desc())
        .offset(PAGE_SIZE - 1)
        .limit(1)
    ).scalar()


def _neighbour(conn: Connection, account: str, created: datetime) -> str | None:
    """The next newer transcript stored: one created at `created` is listed just below it."""
    return conn.execute(
        select(transcripts.c.id)
        .where(transcripts.c.account == account, transcripts.c.unlisted_at.is_(None), transcripts.c.created > created)
        .order_by(transcripts.c.created, transcripts.c.id)
        .limit(1)
    ).scalar()


class Recheck:
    """Iterate for batches of list items to store (each the exact item of a straggler, as listed now);
    afterwards `walk_to` holds the stragglers the walk must go down to instead."""

    def __init__(
        self, conn: Connection, client: ApiClient, account: str, stragglers: list[Straggler], walk_pages: int,
        walk_to: list[Straggler], keep_presigned_credentials: bool,
    ) -> None:
        self.conn, self.client, self.account = conn, client, account
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
        neighbour = _neighbour(self.conn, self.account, straggler.created)
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


def _walk_pages(conn: Connection, account: str, since: datetime) -> int:
    """The pages a walk from the newest transcript down to `since` reads (as far as the table knows)."""
    rows = conn.execute(
        select(func.count()).select_from(transcripts).where(transcripts.c.account == account, transcripts.c.created >= since)
    ).scalar_one()
    return rows // PAGE_SIZE + 1
