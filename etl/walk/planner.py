"""The walk's decisions, as pure functions of what was read and what is stored: whether a walk goes by
days, where the cursor goes after a page, how far down a walk goes, when one `after_id` request is
enough, and what a finished walk may conclude. Nothing here reads the API or the database."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from etl.model.position import Boundary, Cursor, DayPosition, newer
from etl.walk.backwards import Page, Plausible
from etl.walk.days import DayPage

# `partitions = "auto"`: a first backfill or full walk starts serially and may go on by days once its first
# SWITCH_PAGES pages, all full, have shown what the rest of the walk costs either way (see switches_to_days).
# A smaller walk ends before it decides anything, at no cost. Each page read serially first is slow where
# days pay (300 ms a page: 1.2 s for four), and one that goes on by days and finds the account ends soon
# pays for its empty days (at most ~93 requests of the budget): four pages are the balance.
SWITCH_PAGES = 4
# The days are taken only when their estimate is under this share of the serial walk's: a walk by days
# that saves less is not worth its extra requests.
SWITCH_GAIN = 0.9


@dataclass(frozen=True)
class Costs:
    """What the walk has measured so far: the seconds a list request takes (None before any answered), the
    seconds each serial page has taken in all (its request, reading it, the pacing between requests), the
    job's own seconds of work for a page (reading and storing it: the CPU, or the storing's wait when that is
    longer), the requests a second the budget allows, and the most days `partition_days` lets a walk by days
    fetch at once."""

    round_trip: float | None
    page: float
    work: float
    rate: float
    days_at_once: int


@dataclass
class Seen:
    """What a serial walk has seen so far: its newest and oldest plausible items, the listed items with an
    odd `created`, whether a page hid its transcripts, and how many pages (and full pages) it read."""

    plausible: Plausible
    oldest: Boundary | None = None
    newest: Boundary | None = None
    odd_ids: set[str] = field(default_factory=set)
    gap: bool = False
    pages: int = 0
    full_pages: int = 0
    work_seconds: float = 0.0  # spent storing the pages, the job's own work

    def add(self, page: Page) -> None:
        self.pages += 1
        self.full_pages += page.full
        self.newest = newer(self.newest, page.newest)
        if page.oldest is not None and (self.oldest is None or page.oldest.created < self.oldest.created):
            self.oldest = page.oldest
        self.odd_ids |= page.odd_ids
        self.gap = self.gap or page.gap


def days_allowed(mode: str, fell_back: bool, refused: bool) -> bool:
    """Whether this run may walk by days at all: not told to walk serially, no walk by days fell back in
    this run, and the account's API has not been found to misread `created_on`."""
    return mode != "serial" and not fell_back and not refused


def starts_by_days(mode: str, full: bool, cursor: Cursor, allowed: bool) -> bool:
    """`partitions = "days"`: a first backfill (no high water mark yet) or a full walk goes by days from the start."""
    return mode == "days" and allowed and (full or cursor.high_water is None)


def still_full(full: bool, days_full: bool, days_finished: bool) -> bool:
    """Whether a full walk is still owed after resuming a walk by days: one that finished was itself the
    full walk asked for; one that fell back still owes it, as a full serial walk."""
    if days_finished:
        return full and not days_full
    return full or days_full


def may_switch(mode: str, cursor: Cursor, allowed: bool) -> bool:
    """Whether this serial walk may go on by days (`partitions = "auto"`): a first backfill or a full walk,
    without a floor, in a run where days are allowed."""
    return mode == "auto" and allowed and cursor.walk_floor is None and (cursor.walk_full or cursor.high_water is None)


def switches_to_days(seen: Seen, page: Page, costs: Costs, window: list[date]) -> bool:
    """Whether the pages read so far show the days pay, asked once, after SWITCH_PAGES pages: all full, no
    gap, the walk goes on from an item whose day is known, a request's round trip longer than the job's own
    work on a page (the days overlap the waiting: where there is less waiting than work, they only add
    requests), and the rest of the `window` (its days, newest first) by days estimated to take under
    SWITCH_GAIN of the time it takes serially. Once only: a walk that went on by days later would pay for
    the same empty days with fewer pages left to repay them."""
    if seen.pages != SWITCH_PAGES or seen.full_pages < SWITCH_PAGES or seen.gap:
        return False
    if costs.round_trip is None or costs.round_trip <= costs.work:
        return False
    if seen.newest is None or seen.oldest is None or page.oldest is None or page.oldest.id != page.resume_before_id:
        return False
    reached = page.oldest.created
    days_left = sum(day <= reached.date() for day in window)
    start = datetime.combine(min(window), time(), reached.tzinfo)
    pages = pages_left(seen.pages, seen.newest.created - seen.oldest.created, reached - start)
    return by_days_seconds(pages, days_left, costs) < SWITCH_GAIN * serial_seconds(pages, costs)


def pages_left(pages_read: int, span_read: timedelta, span_left: timedelta) -> float:
    """The pages still to read down to the window's start, if the account is as dense there as in the pages
    read. It may hold less (a young account, a burst): then the days cost at most one empty request each."""
    if span_left <= timedelta(0):
        return 0.0
    return pages_read * span_left / max(span_read, timedelta(seconds=1))


def serial_seconds(pages: float, costs: Costs) -> float:
    """A serial walk's time: each page as long as the pages read so far took."""
    return pages * costs.page


def by_days_seconds(pages: float, days_left: int, costs: Costs) -> float:
    """A walk by days' time: the same pages and one more request for each day's end, at as many days at once
    as the budget and `partition_days` allow, bounded by the budget and by the job's own work on the pages,
    which its threads share."""
    assert costs.round_trip is not None
    requests = pages + days_left
    at_once = days_in_flight(costs.rate, costs.round_trip, costs.days_at_once)
    return max(requests / costs.rate, requests * costs.round_trip / at_once, pages * costs.work)


def days_in_flight(rate: float, round_trip: float | None, days_at_once: int) -> int:
    """How many days to fetch at once: as many requests as the budget's rate keeps in flight at this round
    trip (rate x round trip, and one more to cover the time between a request's answer and the next), at
    most `days_at_once`; one until a round trip is known (the first answer tells it)."""
    if round_trip is None:
        return 1
    return max(1, min(days_at_once, math.ceil(rate * round_trip) + 1))


def switched_days(window: list[date], page: Page, seen: Seen, cursor: Cursor) -> tuple[list[date], date, DayPosition]:
    """Where a walk that goes on by days stands: the days still to walk (those of the window up to the oldest
    day reached), that day, and its position (from where the serial walk stopped, within it). The serial
    walk's newest and oldest go with that day, for the high water mark and the unlisted rows at the end."""
    assert page.oldest is not None and page.resume_before_id is not None  # switches_to_days checked both
    reached = page.oldest.created.date()
    position = DayPosition(page.resume_before_id, False, newer(seen.newest, cursor.walk_top), seen.oldest)
    return [day for day in window if day <= reached], reached, position


def after_page(cursor: Cursor, page: Page) -> Cursor:
    """The cursor once this page of a serial walk is stored. After a gap (a page that hid its transcripts)
    the walk's top starts again below it, so the high water mark it leaves is below the gap: the next run
    walks that stretch again and finds them. The last page turns the walk's top into the high water mark."""
    top = None if page.gap else newer(cursor.walk_top, page.newest)
    if page.resume_before_id is None:
        return Cursor(high_water=top or cursor.high_water)
    return replace(cursor, walk_top=top, walk_before_id=page.resume_before_id)


def walk_floor(high_water: Boundary | None, straggler: Boundary | None) -> Boundary | None:
    """How far down a plain walk goes: no high water mark means no floor (the whole listing); a straggler
    left to the walk lowers it to that straggler, in the listing's (created, id) order: one created in the
    mark's own instant may come after it."""
    if high_water is None or straggler is None:
        return high_water
    return straggler if (straggler.created, straggler.id) < (high_water.created, high_water.id) else high_water


def newer_suffices(high_water: Boundary | None, straggler: Boundary | None, high_water_pending: bool) -> bool:
    """Whether one `after_id` request may bring everything newer: there is a final high water mark, and no
    straggler is left to the walk, so nothing at or below the mark must be re-read."""
    return high_water is not None and straggler is None and not high_water_pending


def lost_listing(high_water: Boundary | None, reached: bool, oldest: Boundary | None) -> str | None:
    """The warning for a walk whose listing ended above the stored high water mark (`reached` is False): it
    left the 90-day window during an outage, and transcripts created between it and the oldest still
    listed may have aged out unseen. None when nothing can have been missed."""
    if high_water is None or reached:
        return None
    listed_from = f"{oldest.created:%Y-%m-%d %H:%M:%S}" if oldest else "now"
    return (
        f"the stored cursor (transcript {high_water.id}, created {high_water.created:%Y-%m-%d %H:%M:%S} UTC) "
        f"is no longer listed: transcripts created between then and {listed_from} UTC may have been missed "
        "while the job was down (the API lists only the last 90 days)"
    )


def knows_unlisted(cursor: Cursor, last_page: Page, seen: Seen) -> bool:
    """Only a full walk that saw the whole listing, to its end and without a gap, knows what is no longer listed."""
    return cursor.walk_full and last_page.reached_end and not seen.gap


def advance(position: DayPosition, page: DayPage) -> DayPosition:
    """A day's position once this page of it is stored."""
    oldest = position.oldest
    if page.oldest is not None and (oldest is None or (page.oldest.created, page.oldest.id) < (oldest.created, oldest.id)):
        oldest = page.oldest
    return DayPosition(page.resume_before_id, page.resume_before_id is None, newer(position.newest, page.newest), oldest)


def days_span(positions: dict[date, DayPosition]) -> tuple[Boundary | None, Boundary | None]:
    """The newest and the oldest transcript a walk by days listed, over all its days."""
    newest = oldest = None
    for position in positions.values():
        newest = newer(newest, position.newest)
        if position.oldest is not None and (oldest is None or position.oldest.created < oldest.created):
            oldest = position.oldest
    return newest, oldest


@dataclass(frozen=True)
class DaysDone:
    """Where a walk by days is: days done of days to do, and the oldest day a page has come from."""

    done: int
    total: int
    oldest_day: str | None


def days_done(days: dict[date, DayPosition]) -> DaysDone:
    reached = [day for day, position in days.items() if position.done or position.before_id is not None or position.oldest is not None]
    return DaysDone(sum(position.done for position in days.values()), len(days), min(reached).isoformat() if reached else None)


def all_new(full: bool, has_rows: bool) -> bool:
    """Into an account with no rows, every page a walk stores is new (each older than the last, or, by days,
    each of its own day), unless it is a full walk, which re-reads what it stored."""
    return not full and not has_rows


def minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
