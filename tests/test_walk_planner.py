"""The walk's decisions, rule by rule: when a walk goes by days, where the cursor goes after a page, how far
down a walk goes, when one `after_id` request is enough, what a finished walk may conclude, and how a day's
position moves. Pure functions of what was read and what is stored: no database, no server."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from etl.model.position import Boundary, Cursor, DayPosition, newer
from etl.walk.backwards import Page, Plausible
from etl.walk.days import DayPage
from etl.walk.planner import (
    SWITCH_GAIN,
    SWITCH_PAGES,
    Costs,
    DaysDone,
    Seen,
    advance,
    after_page,
    all_new,
    by_days_seconds,
    days_allowed,
    days_done,
    days_in_flight,
    days_span,
    knows_unlisted,
    lost_listing,
    may_switch,
    minute,
    newer_suffices,
    pages_left,
    serial_seconds,
    starts_by_days,
    still_full,
    switched_days,
    switches_to_days,
    walk_floor,
)

NOW = datetime(2026, 3, 12, 9, 30, tzinfo=timezone.utc)


def at(text: str) -> datetime:
    """A UTC moment written as "2026-03-10 12:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def mark(transcript_id: str, created: str) -> Boundary:
    return Boundary(transcript_id, at(created))


def page(
    newest: Boundary | None = None, oldest: Boundary | None = None, resume: str | None = None, *,
    full: bool = True, gap: bool = False, reached_end: bool = False, odd: frozenset[str] = frozenset(),
) -> Page:
    """A page of a serial walk as the planner sees it: the items themselves play no part in its rules."""
    return Page([], resume, newest, oldest, reached_end, odd, gap, full)


def day_page(day: date, newest: Boundary | None, oldest: Boundary | None, resume: str | None) -> DayPage:
    return DayPage(day, [], resume, newest, oldest)


def seen_after(*pages: Page) -> Seen:
    seen = Seen(Plausible(NOW))
    for each in pages:
        seen.add(each)
    return seen


def walk_of(count: int, hours_each: float, *, full: bool = True) -> list[Page]:
    """`count` pages walked down from 2026-03-12 08:00, each spanning `hours_each` hours, each going on from its
    own oldest item."""
    top, span = at("2026-03-12 08:00"), timedelta(hours=hours_each)
    pages = []
    for n in range(count):
        newest = Boundary(f"p{n}-newest", top - n * span)
        oldest = Boundary(f"p{n}-oldest", top - (n + 1) * span)
        pages.append(page(newest, oldest, oldest.id, full=full))
    return pages


# newer: the newer of two places in the listing's (created, id) order


def test_the_newer_of_a_known_and_an_unknown_place_is_the_known_one():
    known = mark("t1", "2026-03-10 12:00")
    assert newer(None, known) is known
    assert newer(known, None) is known
    assert newer(None, None) is None


def test_the_newer_place_is_the_one_created_later_whatever_its_id():
    early, late = mark("t9", "2026-03-10 12:00"), mark("t1", "2026-03-10 12:01")
    assert newer(early, late) is late
    assert newer(late, early) is late


def test_two_places_created_in_the_same_instant_are_ordered_by_id():
    small, large = mark("t1", "2026-03-10 12:00"), mark("t2", "2026-03-10 12:00")
    assert newer(small, large) is large
    assert newer(large, small) is large


def test_of_two_equal_places_the_newer_is_the_first():
    first, second = mark("t1", "2026-03-10 12:00"), mark("t1", "2026-03-10 12:00")
    assert newer(first, second) is first


# Seen: what a serial walk has seen so far


def test_a_walk_counts_its_pages_and_its_full_pages():
    seen = seen_after(*walk_of(3, 2), page(full=False))
    assert (seen.pages, seen.full_pages) == (4, 3)


def test_a_walk_remembers_the_newest_and_oldest_item_of_all_its_pages():
    first, second = walk_of(2, 2)
    seen = seen_after(first, second)
    assert seen.newest == mark("p0-newest", "2026-03-12 08:00")
    assert seen.oldest == mark("p1-oldest", "2026-03-12 04:00")


def test_a_page_without_a_plausible_item_leaves_the_newest_and_oldest_as_they_were():
    [first] = walk_of(1, 2)
    seen = seen_after(first, page(None, None, "next"))
    assert seen.newest == first.newest and seen.oldest == first.oldest


def test_a_later_page_whose_oldest_is_newer_does_not_raise_the_walks_oldest():
    deep = page(mark("a", "2026-03-12 08:00"), mark("b", "2026-03-11 08:00"), "b")
    shallow = page(mark("c", "2026-03-12 07:00"), mark("d", "2026-03-12 06:00"), "d")
    assert seen_after(deep, shallow).oldest == mark("b", "2026-03-11 08:00")


def test_a_walk_gathers_the_odd_ids_of_its_pages_and_remembers_a_gap_once_seen():
    seen = seen_after(page(odd=frozenset({"x1"})), page(gap=True), page(odd=frozenset({"x2"})))
    assert seen.odd_ids == {"x1", "x2"}
    assert seen.gap


def test_a_walk_without_a_gapped_page_has_no_gap():
    assert not seen_after(*walk_of(2, 2)).gap


# days_allowed: whether this run may walk by days at all


def test_days_are_allowed_unless_told_serial_or_fallen_back_or_refused():
    assert days_allowed("auto", fell_back=False, refused=False)
    assert days_allowed("days", fell_back=False, refused=False)


def test_a_run_told_to_walk_serially_never_walks_by_days():
    assert not days_allowed("serial", fell_back=False, refused=False)


def test_a_run_whose_walk_by_days_fell_back_does_not_try_days_again():
    assert not days_allowed("auto", fell_back=True, refused=False)


def test_an_account_whose_api_misreads_created_on_never_walks_by_days():
    assert not days_allowed("days", fell_back=False, refused=True)


# starts_by_days: `partitions = "days"` starts a first backfill or a full walk by days


def test_a_first_backfill_with_partitions_days_starts_by_days():
    assert starts_by_days("days", full=False, cursor=Cursor(), allowed=True)


def test_a_full_walk_with_partitions_days_starts_by_days_even_with_a_high_water_mark():
    cursor = Cursor(high_water=mark("t1", "2026-03-10 12:00"))
    assert starts_by_days("days", full=True, cursor=cursor, allowed=True)


def test_a_plain_run_after_a_high_water_mark_does_not_start_by_days():
    cursor = Cursor(high_water=mark("t1", "2026-03-10 12:00"))
    assert not starts_by_days("days", full=False, cursor=cursor, allowed=True)


def test_a_first_backfill_with_partitions_auto_starts_serially():
    assert not starts_by_days("auto", full=True, cursor=Cursor(), allowed=True)


def test_a_first_backfill_does_not_start_by_days_where_days_are_not_allowed():
    assert not starts_by_days("days", full=True, cursor=Cursor(), allowed=False)


# still_full: whether a full walk is still owed after resuming a walk by days


def test_a_full_walk_resumed_from_days_that_finished_owes_no_more_full_walk():
    assert not still_full(full=True, days_full=True, days_finished=True)


def test_a_full_walk_asked_for_is_still_owed_after_finishing_days_of_a_first_backfill():
    assert still_full(full=True, days_full=False, days_finished=True)


def test_finished_days_of_a_first_backfill_owe_no_full_walk_when_none_was_asked_for():
    assert not still_full(full=False, days_full=False, days_finished=True)


def test_a_full_walk_by_days_that_fell_back_is_still_owed_as_a_serial_one():
    assert still_full(full=False, days_full=True, days_finished=False)


def test_days_of_a_first_backfill_that_fell_back_owe_no_full_walk_when_none_was_asked_for():
    assert not still_full(full=False, days_full=False, days_finished=False)


def test_a_full_walk_asked_for_is_still_owed_when_the_days_of_a_first_backfill_fell_back():
    assert still_full(full=True, days_full=False, days_finished=False)


# may_switch: whether a serial walk may go on by days (`partitions = "auto"`)


def test_a_first_backfill_with_partitions_auto_may_go_on_by_days():
    assert may_switch("auto", Cursor(), allowed=True)


def test_a_full_walk_with_partitions_auto_may_go_on_by_days():
    cursor = Cursor(high_water=mark("t1", "2026-03-10 12:00"), walk_full=True)
    assert may_switch("auto", cursor, allowed=True)


def test_a_plain_walk_down_to_the_high_water_mark_stays_serial():
    cursor = Cursor(high_water=mark("t1", "2026-03-10 12:00"), walk_floor=mark("t1", "2026-03-10 12:00"))
    assert not may_switch("auto", cursor, allowed=True)
    assert not may_switch("auto", Cursor(high_water=mark("t1", "2026-03-10 12:00")), allowed=True)


def test_a_walk_with_a_floor_stays_serial_even_if_full():
    cursor = Cursor(walk_floor=mark("t1", "2026-03-10 12:00"), walk_full=True)
    assert not may_switch("auto", cursor, allowed=True)


def test_only_partitions_auto_goes_on_by_days_mid_walk():
    assert not may_switch("days", Cursor(), allowed=True)
    assert not may_switch("serial", Cursor(), allowed=True)


def test_a_walk_stays_serial_where_days_are_not_allowed():
    assert not may_switch("auto", Cursor(walk_full=True), allowed=False)


# switches_to_days: whether the pages read so far show that days pay

# The days of the listing's window on 2026-03-12, newest first, as days.days() gives them: 93 of them.
FULL_WINDOW = [date(2026, 3, 12) - timedelta(days=n) for n in range(93)]
BUDGET = 2000 / 60  # requests_per_minute's default, a second
# A slow API (100 ms a request, 110 ms a serial page) and a fast one (2 ms a request, a serial page every
# 30 ms: the budget's spacing), each page 10 ms of the job's own work.
SLOW = Costs(round_trip=0.1, page=0.11, work=0.01, rate=BUDGET, days_at_once=32)
FAST = Costs(round_trip=0.002, page=0.03, work=0.01, rate=BUDGET, days_at_once=32)


def test_a_dense_walk_on_a_slow_api_goes_on_by_days():
    # 4 pages of 2 hours: about 1,100 pages left down to 2025-12-10 00:00. Serially 121 s at 110 ms a page;
    # by days those and 93 day ends, 1,197 requests, take 36 s at the budget's 33 a second.
    pages = walk_of(SWITCH_PAGES, 2)
    assert switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_dense_walk_on_a_fast_api_stays_serial():
    # The same pages at 2 ms: the budget bounds both walks, and the days add 93 requests to the 1,100.
    pages = walk_of(SWITCH_PAGES, 2)
    assert not switches_to_days(seen_after(*pages), pages[-1], FAST, FULL_WINDOW)


def test_a_walk_whose_storing_bounds_both_ways_stays_serial():
    # Working on a page takes as long as fetching one, and no budget to speak of: days save nothing.
    pages = walk_of(SWITCH_PAGES, 2)
    costs = Costs(round_trip=0.1, page=0.1, work=0.1, rate=1000, days_at_once=32)
    assert not switches_to_days(seen_after(*pages), pages[-1], costs, FULL_WINDOW)


def test_a_walk_of_a_page_a_day_on_a_slow_api_goes_on_by_days():
    # 4 pages of a day each: about 88 pages and 89 days left. Serially 9.7 s; by days 177 requests, 5.3 s.
    pages = walk_of(SWITCH_PAGES, 24)
    assert switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_sparse_walk_on_a_slow_api_stays_serial():
    # 4 pages of 5 days each: 20 days down, about 14 pages and 73 days left. Serially 1.6 s; by days 87
    # requests, 2.6 s at the budget.
    pages = walk_of(SWITCH_PAGES, 120)
    assert not switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_saving_under_the_switch_gain_does_not_pay_for_days():
    # By days at 0.95 of the serial time, bound by the work on the pages: not worth the extra requests.
    pages = walk_of(SWITCH_PAGES, 2)
    seen = seen_after(*pages)
    slow = Costs(round_trip=0.1, page=0.1, work=0.095, rate=1000, days_at_once=32)
    serial, by_days = serial_seconds(1104, slow), by_days_seconds(1104, 93, slow)
    assert SWITCH_GAIN * serial < by_days < serial
    assert not switches_to_days(seen, pages[-1], slow, FULL_WINDOW)


def test_a_walk_before_any_answer_was_timed_stays_serial():
    pages = walk_of(SWITCH_PAGES, 2)
    unknown = Costs(round_trip=None, page=0.11, work=0.01, rate=BUDGET, days_at_once=32)
    assert not switches_to_days(seen_after(*pages), pages[-1], unknown, FULL_WINDOW)


def test_a_walk_whose_pages_take_longer_to_work_on_than_to_fetch_stays_serial():
    # No budget to speak of and the estimate favours the days (they spread the work's waits), but a page's
    # 12 ms of work is longer than its 3 ms round trip: nothing to overlap, only requests to add.
    pages = walk_of(SWITCH_PAGES, 2)
    costs = Costs(round_trip=0.003, page=0.02, work=0.012, rate=100_000, days_at_once=32)
    assert by_days_seconds(1104, 93, costs) < SWITCH_GAIN * serial_seconds(1104, costs)
    assert not switches_to_days(seen_after(*pages), pages[-1], costs, FULL_WINDOW)


def test_a_walk_past_switch_pages_does_not_decide_again():
    pages = walk_of(SWITCH_PAGES + 1, 2)
    assert not switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_walk_one_page_short_of_switch_pages_stays_serial():
    pages = walk_of(SWITCH_PAGES - 1, 2)
    assert not switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_walk_with_a_page_that_is_not_full_stays_serial():
    pages = walk_of(SWITCH_PAGES - 1, 2) + walk_of(1, 2, full=False)
    assert not switches_to_days(seen_after(*pages), pages[-1], SLOW, FULL_WINDOW)


def test_a_walk_that_met_a_gap_stays_serial():
    pages = walk_of(SWITCH_PAGES, 2)
    seen = seen_after(*pages)
    seen.gap = True
    assert not switches_to_days(seen, pages[-1], SLOW, FULL_WINDOW)


def test_a_walk_without_a_plausible_item_stays_serial():
    seen = seen_after(*[page(None, None, f"r{n}") for n in range(SWITCH_PAGES)])
    assert not switches_to_days(seen, page(None, None, "r7"), SLOW, FULL_WINDOW)


def test_a_walk_that_goes_on_from_an_item_other_than_its_oldest_stays_serial():
    pages = walk_of(SWITCH_PAGES, 2)
    last = pages[-1]
    named = page(last.newest, last.oldest, "named-by-prev-url")
    assert not switches_to_days(seen_after(*pages[:-1], named), named, SLOW, FULL_WINDOW)


def test_a_walk_whose_last_page_has_no_plausible_item_stays_serial():
    pages = walk_of(SWITCH_PAGES, 2)
    blind = page(None, None, "r8")
    assert not switches_to_days(seen_after(*pages, blind), blind, SLOW, FULL_WINDOW)


def test_a_walk_that_reached_the_start_of_the_window_stays_serial():
    # Nothing left below it: no page and no day to walk.
    pages = walk_of(SWITCH_PAGES, 2)
    window = [date(2026, 3, 12), date(2026, 3, 11)]
    shallow = [page(mark("a", "2026-03-11 01:00"), mark("b", "2026-03-10 23:00"), "b")]
    assert not switches_to_days(seen_after(*pages[:-1], *shallow), shallow[0], SLOW, window)


# pages_left, serial_seconds, by_days_seconds, days_in_flight: the estimates behind the switch


def test_pages_left_assume_the_density_of_the_pages_read():
    assert pages_left(8, timedelta(hours=16), timedelta(days=10)) == pytest.approx(120)


def test_no_pages_are_left_below_the_window():
    assert pages_left(8, timedelta(hours=16), timedelta(0)) == 0
    assert pages_left(8, timedelta(hours=16), timedelta(hours=-3)) == 0


def test_pages_read_in_one_instant_count_as_a_second_of_the_listing():
    assert pages_left(8, timedelta(0), timedelta(minutes=1)) == pytest.approx(480)


def test_a_serial_walk_goes_on_at_the_pace_of_its_pages_so_far():
    assert serial_seconds(100, Costs(round_trip=0.3, page=0.32, work=0.01, rate=BUDGET, days_at_once=32)) == pytest.approx(32)


def test_a_walk_by_days_is_bound_by_the_budget_at_moderate_latency():
    # 100 pages and 50 days at 100 ms, 5 at once: 3 s of round trips, but 150 requests at 33 a second.
    assert by_days_seconds(100, 50, SLOW) == pytest.approx(150 / BUDGET)


def test_a_walk_by_days_is_bound_by_the_latency_when_few_days_are_allowed_at_once():
    # 150 requests of 1 s, 2 at once: 75 s; the budget's 4.5 s is not what bounds it.
    costs = Costs(round_trip=1.0, page=1.0, work=0.01, rate=BUDGET, days_at_once=2)
    assert by_days_seconds(100, 50, costs) == pytest.approx(75)


def test_a_walk_by_days_is_bound_by_the_work_on_its_pages():
    costs = Costs(round_trip=0.1, page=0.2, work=0.2, rate=BUDGET, days_at_once=32)
    assert by_days_seconds(100, 50, costs) == pytest.approx(20)


def test_days_in_flight_follow_the_rate_times_the_round_trip():
    assert days_in_flight(BUDGET, 0.1, 32) == 5  # 3.3 in flight, and one more
    assert days_in_flight(BUDGET, 0.3, 32) == 11


def test_days_in_flight_are_at_most_partition_days():
    assert days_in_flight(BUDGET, 2.0, 32) == 32
    assert days_in_flight(BUDGET, 0.1, 3) == 3


def test_a_fast_api_gets_few_days_in_flight():
    assert days_in_flight(BUDGET, 0.002, 32) == 2
    assert days_in_flight(BUDGET, 0.0, 32) == 1


def test_one_day_is_fetched_until_a_round_trip_is_known():
    assert days_in_flight(BUDGET, None, 32) == 1


# switched_days: where a walk that goes on by days stands

WINDOW = [date(2026, 3, 12) - timedelta(days=n) for n in range(6)]  # newest first, as days.days() gives them


def test_a_walk_gone_on_by_days_walks_the_day_it_reached_and_every_older_day():
    pages = walk_of(8, 4)  # 32 hours down from 2026-03-12 08:00: reaches 2026-03-11 00:00
    seen = seen_after(*pages)
    days, reached, position = switched_days(WINDOW, pages[-1], seen, Cursor())
    assert reached == date(2026, 3, 11)
    assert days == [date(2026, 3, 11), date(2026, 3, 10), date(2026, 3, 9), date(2026, 3, 8), date(2026, 3, 7)]
    assert position == DayPosition("p7-oldest", False, mark("p0-newest", "2026-03-12 08:00"), mark("p7-oldest", "2026-03-11 00:00"))


def test_a_walk_gone_on_by_days_goes_on_in_the_day_of_its_last_pages_oldest_item():
    pages = walk_of(7, 2)
    across_midnight = page(mark("late", "2026-03-11 02:00"), mark("early", "2026-03-10 23:00"), "early")
    days, reached, position = switched_days(WINDOW, across_midnight, seen_after(*pages, across_midnight), Cursor())
    assert reached == date(2026, 3, 10) and days[0] == date(2026, 3, 10)
    assert position.before_id == "early"


def test_a_walk_gone_on_by_days_keeps_the_newest_of_an_earlier_run_of_the_same_walk():
    pages = walk_of(8, 2)
    earlier = mark("earlier-top", "2026-03-12 09:00")
    _, _, position = switched_days(WINDOW, pages[-1], seen_after(*pages), Cursor(walk_top=earlier, walk_before_id="x"))
    assert position.newest == earlier


def test_a_walk_gone_on_by_days_keeps_its_own_newest_over_an_older_walk_top():
    pages = walk_of(8, 2)
    older = mark("older-top", "2026-03-12 07:00")
    _, _, position = switched_days(WINDOW, pages[-1], seen_after(*pages), Cursor(walk_top=older, walk_before_id="x"))
    assert position.newest == mark("p0-newest", "2026-03-12 08:00")


def test_a_walk_gone_on_by_days_keeps_the_oldest_it_saw_for_the_unlisted_rows():
    pages = walk_of(8, 2)
    odd = page(mark("q", "2026-03-12 07:30"), mark("odd-oldest", "2026-03-09 07:00"), "q")  # an odd order
    seen = seen_after(odd, *pages)
    _, reached, position = switched_days(WINDOW, pages[-1], seen, Cursor())
    assert reached == date(2026, 3, 11)
    assert position.oldest == mark("odd-oldest", "2026-03-09 07:00")


# after_page: the cursor once a page of a serial walk is stored


def test_a_page_moves_the_walk_on_from_where_it_resumes_and_raises_its_top():
    floor = mark("floor", "2026-03-01 00:00")
    cursor = Cursor(high_water=floor, walk_floor=floor, walk_full=True)
    moved = after_page(cursor, page(mark("a", "2026-03-12 08:00"), mark("b", "2026-03-12 07:00"), "b"))
    assert moved == Cursor(high_water=floor, walk_top=mark("a", "2026-03-12 08:00"), walk_before_id="b", walk_floor=floor, walk_full=True)


def test_a_lower_page_keeps_the_walks_top():
    cursor = Cursor(walk_top=mark("a", "2026-03-12 08:00"), walk_before_id="b")
    moved = after_page(cursor, page(mark("c", "2026-03-12 06:00"), mark("d", "2026-03-12 05:00"), "d"))
    assert moved.walk_top == mark("a", "2026-03-12 08:00") and moved.walk_before_id == "d"


def test_a_gap_starts_the_walks_top_again_below_it():
    cursor = Cursor(walk_top=mark("a", "2026-03-12 08:00"), walk_before_id="b")
    after_gap = after_page(cursor, page(mark("c", "2026-03-12 06:00"), mark("d", "2026-03-12 05:00"), "d", gap=True))
    assert after_gap.walk_top is None and after_gap.walk_before_id == "d"
    below = after_page(after_gap, page(mark("e", "2026-03-12 04:00"), mark("f", "2026-03-12 03:00"), "f"))
    assert below.walk_top == mark("e", "2026-03-12 04:00")


def test_the_last_page_makes_the_walks_top_the_high_water_mark_and_ends_the_walk():
    old = mark("old", "2026-03-01 00:00")
    cursor = Cursor(high_water=old, walk_top=mark("a", "2026-03-12 08:00"), walk_before_id="b", walk_floor=old, walk_full=True)
    assert after_page(cursor, page(mark("c", "2026-03-12 06:00"), old, None)) == Cursor(high_water=mark("a", "2026-03-12 08:00"))


def test_a_one_page_walk_makes_its_newest_the_high_water_mark():
    old = mark("old", "2026-03-01 00:00")
    assert after_page(Cursor(high_water=old), page(mark("c", "2026-03-12 06:00"), old, None)) == Cursor(high_water=mark("c", "2026-03-12 06:00"))


def test_a_last_page_that_is_a_gap_leaves_the_high_water_mark_where_it_was():
    old = mark("old", "2026-03-01 00:00")
    cursor = Cursor(high_water=old, walk_top=mark("a", "2026-03-12 08:00"), walk_before_id="b")
    assert after_page(cursor, page(None, None, None, gap=True)) == Cursor(high_water=old)


def test_a_walk_that_listed_nothing_leaves_the_high_water_mark_where_it_was():
    old = mark("old", "2026-03-01 00:00")
    assert after_page(Cursor(high_water=old), page(None, None, None, full=False)) == Cursor(high_water=old)


# walk_floor: how far down a plain walk goes


def test_without_a_high_water_mark_a_walk_has_no_floor_even_for_a_straggler():
    assert walk_floor(None, mark("s", "2026-03-01 00:00")) is None


def test_without_a_straggler_a_walk_goes_down_to_the_high_water_mark():
    high_water = mark("h", "2026-03-10 12:00")
    assert walk_floor(high_water, None) == high_water


def test_a_straggler_below_the_high_water_mark_lowers_the_floor_to_it():
    straggler = mark("s", "2026-03-01 00:00")
    assert walk_floor(mark("h", "2026-03-10 12:00"), straggler) == straggler


def test_a_straggler_above_the_high_water_mark_leaves_the_floor_at_the_mark():
    high_water = mark("h", "2026-03-10 12:00")
    assert walk_floor(high_water, mark("s", "2026-03-10 12:05")) == high_water
    assert walk_floor(high_water, mark("z", "2026-03-10 12:00")) == high_water  # same instant, after it by id


def test_a_straggler_created_in_the_same_instant_as_the_mark_but_below_it_by_id_lowers_the_floor_to_it():
    # The listing is in (created, id) order: "a" comes after "h", possibly on the next page, which a walk
    # that stops at "h" never reads.
    straggler = mark("a", "2026-03-10 12:00")
    assert walk_floor(mark("h", "2026-03-10 12:00"), straggler) == straggler


# newer_suffices: when one `after_id` request may bring everything newer


def test_a_final_high_water_mark_without_stragglers_needs_only_one_after_id_request():
    assert newer_suffices(mark("h", "2026-03-10 12:00"), None, high_water_pending=False)


def test_without_a_high_water_mark_the_listing_is_walked():
    assert not newer_suffices(None, None, high_water_pending=False)


def test_a_straggler_left_to_the_walk_means_walking():
    assert not newer_suffices(mark("h", "2026-03-10 12:00"), mark("s", "2026-03-01 00:00"), high_water_pending=False)


def test_a_high_water_mark_still_pending_means_walking_to_read_it_again():
    assert not newer_suffices(mark("h", "2026-03-10 12:00"), None, high_water_pending=True)


# lost_listing: the warning for a walk whose listing ended above the high water mark


def test_a_first_walk_can_have_missed_nothing():
    assert lost_listing(None, reached=False, oldest=mark("o", "2026-03-01 00:00")) is None


def test_a_walk_that_reached_the_high_water_mark_missed_nothing():
    assert lost_listing(mark("h", "2025-12-01 10:00"), reached=True, oldest=mark("o", "2025-12-01 09:00")) is None


def test_a_walk_that_ended_above_the_high_water_mark_names_the_stretch_that_may_be_lost():
    warning = lost_listing(mark("h", "2025-12-01 10:00:05"), reached=False, oldest=mark("o", "2025-12-14 08:30:00"))
    assert warning == (
        "the stored cursor (transcript h, created 2025-12-01 10:00:05 UTC) is no longer listed: transcripts created "
        "between then and 2025-12-14 08:30:00 UTC may have been missed while the job was down "
        "(the API lists only the last 90 days)"
    )


def test_a_walk_that_listed_nothing_above_the_high_water_mark_says_up_to_now():
    warning = lost_listing(mark("h", "2025-12-01 10:00:05"), reached=False, oldest=None)
    assert warning is not None and "between then and now UTC" in warning


# knows_unlisted: only a whole listing seen tells what is no longer listed


def test_a_full_walk_to_the_end_of_the_listing_without_a_gap_knows_what_is_unlisted():
    assert knows_unlisted(Cursor(walk_full=True), page(reached_end=True), seen_after(page()))


def test_a_plain_walk_does_not_know_what_is_unlisted():
    assert not knows_unlisted(Cursor(), page(reached_end=True), seen_after(page()))


def test_a_full_walk_that_did_not_reach_the_end_does_not_know_what_is_unlisted():
    assert not knows_unlisted(Cursor(walk_full=True), page(reached_end=False), seen_after(page()))


def test_a_full_walk_that_met_a_gap_does_not_know_what_is_unlisted():
    assert not knows_unlisted(Cursor(walk_full=True), page(reached_end=True), seen_after(page(gap=True), page()))


# advance: a day's position once a page of it is stored

DAY = date(2026, 3, 10)


def test_a_days_first_page_moves_it_on_from_its_oldest():
    moved = advance(DayPosition(), day_page(DAY, mark("a", "2026-03-10 23:00"), mark("b", "2026-03-10 20:00"), "b"))
    assert moved == DayPosition("b", False, mark("a", "2026-03-10 23:00"), mark("b", "2026-03-10 20:00"))


def test_a_days_last_page_finishes_it_and_keeps_its_newest():
    position = DayPosition("b", False, mark("a", "2026-03-10 23:00"), mark("b", "2026-03-10 20:00"))
    moved = advance(position, day_page(DAY, mark("c", "2026-03-10 19:00"), mark("d", "2026-03-10 01:00"), None))
    assert moved == DayPosition(None, True, mark("a", "2026-03-10 23:00"), mark("d", "2026-03-10 01:00"))


def test_an_empty_last_page_finishes_the_day_as_it_stood():
    position = DayPosition("b", False, mark("a", "2026-03-10 23:00"), mark("b", "2026-03-10 20:00"))
    assert advance(position, day_page(DAY, None, None, None)) == DayPosition(None, True, position.newest, position.oldest)


def test_a_page_of_items_created_in_the_same_instant_lowers_the_oldest_by_id():
    position = DayPosition("m", False, mark("z", "2026-03-10 23:00"), mark("m", "2026-03-10 20:00"))
    moved = advance(position, day_page(DAY, mark("l", "2026-03-10 20:00"), mark("k", "2026-03-10 20:00"), "k"))
    assert moved.oldest == mark("k", "2026-03-10 20:00")


def test_a_page_whose_oldest_is_newer_than_the_days_keeps_the_days_oldest():
    position = DayPosition("b", False, mark("a", "2026-03-10 23:00"), mark("b", "2026-03-10 05:00"))
    moved = advance(position, day_page(DAY, mark("c", "2026-03-10 22:00"), mark("d", "2026-03-10 06:00"), "d"))
    assert moved.oldest == mark("b", "2026-03-10 05:00") and moved.before_id == "d"


def test_a_page_newer_than_the_days_newest_raises_it():
    position = DayPosition("b", False, mark("a", "2026-03-10 20:00"), mark("b", "2026-03-10 19:00"))
    moved = advance(position, day_page(DAY, mark("c", "2026-03-10 21:00"), mark("d", "2026-03-10 18:00"), "d"))
    assert moved.newest == mark("c", "2026-03-10 21:00")


# days_span: the newest and oldest transcript a walk by days listed


def test_a_walk_by_days_that_listed_nothing_spans_nothing():
    assert days_span({}) == (None, None)
    assert days_span({DAY: DayPosition(None, True)}) == (None, None)


def test_a_walk_by_days_spans_from_the_oldest_of_its_days_to_the_newest():
    positions = {  # in no particular order, as a walk by days finishes them
        date(2026, 3, 11): DayPosition(None, True, mark("n11", "2026-03-11 23:00"), mark("o11", "2026-03-11 01:00")),
        date(2026, 3, 12): DayPosition(None, True, mark("n12", "2026-03-12 09:00"), mark("o12", "2026-03-12 00:10")),
        date(2026, 3, 10): DayPosition(None, True),  # an empty day
        date(2026, 3, 9): DayPosition(None, True, mark("n9", "2026-03-09 23:00"), mark("o9", "2026-03-09 02:00")),
    }
    assert days_span(positions) == (mark("n12", "2026-03-12 09:00"), mark("o9", "2026-03-09 02:00"))


# days_done: days done of days to do, and the oldest day reached


def test_a_walk_by_days_not_yet_begun_has_reached_no_day():
    assert days_done({date(2026, 3, 11): DayPosition(), date(2026, 3, 10): DayPosition()}) == DaysDone(0, 2, None)


def test_the_oldest_day_reached_is_the_oldest_done_or_under_way():
    positions = {
        date(2026, 3, 12): DayPosition(None, True, mark("a", "2026-03-12 01:00"), mark("a", "2026-03-12 01:00")),
        date(2026, 3, 11): DayPosition("b", False, mark("c", "2026-03-11 09:00"), mark("b", "2026-03-11 08:00")),
        date(2026, 3, 10): DayPosition(),
    }
    assert days_done(positions) == DaysDone(1, 3, "2026-03-11")


def test_an_empty_day_done_counts_as_reached():
    positions = {date(2026, 3, 12): DayPosition(), date(2026, 3, 9): DayPosition(None, True), date(2026, 3, 8): DayPosition()}
    assert days_done(positions) == DaysDone(1, 3, "2026-03-09")


def test_a_day_under_way_counts_as_reached_before_it_lists_a_plausible_item():
    positions = {date(2026, 3, 12): DayPosition(None, True), date(2026, 3, 7): DayPosition("x"), date(2026, 3, 6): DayPosition()}
    assert days_done(positions) == DaysDone(1, 3, "2026-03-07")


# all_new: into an account with no rows, every page a walk stores is new


def test_a_walk_into_an_account_with_no_rows_stores_only_new_rows():
    assert all_new(full=False, has_rows=False)


def test_a_walk_into_an_account_with_rows_may_meet_them_again():
    assert not all_new(full=False, has_rows=True)


def test_a_full_walk_reads_again_what_it_stored():
    assert not all_new(full=True, has_rows=False)


def test_the_progress_names_a_minute_in_utc():
    assert minute(at("2026-03-10 07:05:59")) == "2026-03-10 07:05 UTC"
