"""The request budget: one pacer shared by every thread of a run, listing and hydration alike.

Requests leave evenly spaced at the pacer's rate, never in bursts, so a server that counts per second
sees at most one more than the rate in any second: a budget under the server's limit meets no 429. How
many requests are in flight follows from the rate and the latency (rate x latency); the caller bounds it
with the number of threads it lets wait here.

A 429 means the server accepts less than the rate. The pacer then sets its rate a little under what the
server accepted since the last 429 (the requests answered between them, over the time between them), or
halves it when too few were answered to tell; every thread waits what Retry-After says (a second without
it). Without another 429 the rate then probes slowly upwards, towards the budget, so a server whose limit
rises again is found.
"""

from __future__ import annotations

import threading
import time

# After a 429 the rate is set this far under what the server was seen to accept: room for its bursts.
MARGIN = 0.95
# Fewer answered requests than this between two 429s tell too little about the server's rate: halve instead.
SAMPLE = 5
# Without a 429 the rate rises by this share of itself each second: a server's limit reached from 5% under
# it in about 2.5 s, after which a server that allows short bursts answers 429 only once those are spent.
PROBE = 0.02
# The pause after a 429 without Retry-After: the server's count recovers meanwhile, so the requests it
# answers until the next 429 measure its rate, not a burst still left over from a higher pace.
PAUSE = 1.0
# However many 429s come, the rate never drops below this share of the budget.
FLOOR = 1 / 256
# A thread takes a slot at most this far ahead, and otherwise looks again then: slots taken long before
# they come would keep the spacing of a rate that has since changed.
HORIZON = 0.1


def measured(answered: int, seconds: float) -> float | None:
    """The rate the server accepted between two 429s; None when too few requests were answered to tell."""
    if answered < SAMPLE or seconds <= 0:
        return None
    return answered / seconds


def slowed(rate: float, accepted: float | None, floor: float) -> float:
    """The rate after a 429: a little under what the server accepted, never above the rate that met the 429;
    half the rate when what it accepts is not known."""
    if accepted is None:
        return max(floor, rate / 2)
    return max(floor, min(rate, accepted) * MARGIN)


def probed(rate: float, budget: float, seconds: float) -> float:
    """The rate after `seconds` without a 429: a little higher, never above the budget."""
    return min(budget, rate * (1 + PROBE) ** seconds)


class Pacer:
    """Spaces the requests of every thread of one client at most `requests_per_minute`, and under the rate the
    server was last seen to accept."""

    def __init__(self, requests_per_minute: float) -> None:
        self.budget = requests_per_minute / 60.0  # requests a second
        self.rate = self.budget
        self._lock = threading.Lock()
        self._next = 0.0  # time.monotonic() at which the next request may leave
        self._resume_at = 0.0  # the end of a pause a 429 asked for
        self._rate_at = time.monotonic()  # when self.rate was last worked out
        self._slowed_at = self._rate_at  # when a 429 last set the rate
        self._answered = 0  # requests the server accepted since then

    def wait(self) -> float:
        """Block until this thread's request may leave; return when it left (time.monotonic())."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._probe(now)
                slot = max(now, self._next, self._resume_at)
                taken = slot - now <= HORIZON
                if taken:
                    self._next = slot + 1 / self.rate
            if slot > now:
                time.sleep(min(slot - now, HORIZON))
            # Unless a 429 arrived while this thread slept and its slot fell inside the pause.
            if taken and time.monotonic() >= self._resume_at:
                return time.monotonic()

    def answered(self) -> None:
        """The server accepted a request (answered anything but 429)."""
        with self._lock:
            self._answered += 1

    def rate_limited(self, sent: float, retry_after: float | None) -> float:
        """A 429 to a request that left at `sent`: every thread waits `retry_after` seconds (PAUSE if not given)
        and the rate follows what the server accepted. Requests that left before the last slowdown were paced
        at the old rate: their 429s change the rate no further, and pause only as long as they say. Returns the
        seconds until requests may leave again."""
        with self._lock:
            now = time.monotonic()
            pause = retry_after or 0.0
            if sent >= self._slowed_at:
                self._probe(now)
                self.rate = slowed(self.rate, measured(self._answered, now - self._slowed_at), self.budget * FLOOR)
                self._slowed_at = self._rate_at = now
                self._answered = 0
                pause = PAUSE if retry_after is None else retry_after
            self._resume_at = max(self._resume_at, now + pause)
            self._rate_at = max(self._rate_at, self._resume_at)  # no probing upwards during a pause
            return max(self._resume_at, self._next) - now

    def _probe(self, now: float) -> None:
        if now > self._rate_at:
            self.rate = probed(self.rate, self.budget, now - self._rate_at)
            self._rate_at = now
