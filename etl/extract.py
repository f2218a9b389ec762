"""Pages -> list items. The cursor logic lives here and nowhere else.

The listing is walked newest to oldest with `before_id`, down to a floor. That is exact whatever the
undocumented `after_id` does with more than a page of newer transcripts (oldest 200 after the cursor, or
newest 200): `after_id` is never used. Transcripts created during a walk appear above its top and are
picked up by the next walk, so nothing is skipped; `next_url` is ignored, since it is never null.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from etl.client import ApiClient
from etl.errors import ApiError, CursorRejected, PaginationError
from etl.items import Item, parse_item

PAGE_SIZE = 200  # the API's maximum


@dataclass(frozen=True)
class Boundary:
    """A transcript that marks a place in the listing."""

    id: str
    created: datetime


@dataclass(frozen=True)
class Page:
    items: list[Item]
    # Where the walk goes on after this page; None when this page ends it.
    resume_before_id: str | None

    @property
    def newest(self) -> Boundary | None:
        return next(_boundaries(self.items), None)

    @property
    def oldest(self) -> Boundary | None:
        return next(_boundaries(reversed(self.items)), None)


def _boundaries(items) -> Iterator[Boundary]:
    for item in items:
        if item.id is not None and item.row["created"] is not None:
            yield Boundary(item.id, item.row["created"])


def walk_back(client: ApiClient, *, before_id: str | None, floor: Boundary | None) -> Iterator[Page]:
    """Yield pages older than `before_id` (or from the newest), ending with the page that reaches `floor`.

    A page reaches the floor when it holds the floor transcript or anything created before it; without a
    floor the walk goes to the end of the listing. The caller commits each page before asking for the next.
    """
    seen: set[str | None] = {before_id} if before_id else set()
    downloads = _Downloads(client)
    try:
        upcoming = downloads.fetch(before_id)
        while True:
            body = _page(upcoming, before_id)
            items = [parse_item(raw) for raw in body["transcripts"]]
            oldest_id = next((item.id for item in reversed(items) if item.id is not None), None)
            ended = (
                oldest_id is None
                or body["page_details"].get("prev_url") is None
                or (floor is not None and reaches(items, floor))
            )
            if not ended and oldest_id in seen:
                raise PaginationError(
                    f"the API listed transcript {oldest_id} as the oldest of two pages; stopping rather than looping "
                    "(nothing is lost: the next run resumes from the last saved page)"
                )
            if not ended:
                # The next page downloads while the caller stores this one: at most two pages in memory.
                upcoming = downloads.fetch(oldest_id)
            yield Page(items, None if ended else oldest_id)
            if ended:
                return
            seen.add(oldest_id)
            before_id = oldest_id
    finally:
        downloads.close()


class _Downloads:
    """One thread that downloads a walk's pages, one at a time, ahead of the caller.

    A daemon thread, not an executor: a request stuck in its read timeout must not hold up the exit of a
    process told to stop.
    """

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="aai-etl-download", daemon=True).start()

    def fetch(self, before_id: str | None) -> Future:
        future: Future = Future()
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


def reaches(items: list[Item], boundary: Boundary) -> bool:
    """True when the items hold the boundary transcript or one created before it."""
    for item in items:
        created = item.row.get("created")
        if item.id == boundary.id or (created is not None and created < boundary.created):
            return True
    return False
