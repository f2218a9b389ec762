"""The request budget: one pacer shared by every thread of a run, listing and hydration alike.

Requests leave evenly spaced at the budget's rate, never in bursts, so a server that counts per second
sees at most one more than the rate in any second: a budget under the server's limit meets no 429. How
many requests are in flight follows from the rate and the latency (rate x latency); the caller bounds it
with the number of threads it lets wait here. A 429 pauses every thread for what Retry-After says and
halves the rate; without another 429 the rate then creeps back up to the budget.
"""

from __future__ import annotations

import threading
import time

# After a 429 the rate regains this share of the budget each second: from half back to the budget in 10 s.
RECOVERY_PER_SECOND = 0.05
# However many 429s come, the rate never drops below this share of the budget.
FLOOR = 1 / 32
# A thread takes a slot at most this far ahead, and otherwise looks again then: slots taken long before
# they come would keep the spacing of a rate that has since changed.
HORIZON = 0.1


class Pacer:
    """Spaces the requests of every thread of one client at most `requests_per_minute`."""

    def __init__(self, requests_per_minute: float) -> None:
        self.budget = requests_per_minute / 60.0  # requests a second
        self.rate = self.budget
        self._lock = threading.Lock()
        self._next = 0.0  # time.monotonic() at which the next request may leave
        self._resume_at = 0.0  # the end of a pause a 429 asked for
        self._rate_at = time.monotonic()  # when self.rate was last worked out

    def wait(self) -> None:
        """Block until this thread's request may leave."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._recover(now)
                slot = max(now, self._next, self._resume_at)
                taken = slot - now <= HORIZON
                if taken:
                    self._next = slot + 1 / self.rate
            if slot > now:
                time.sleep(min(slot - now, HORIZON))
            # Unless a 429 arrived while this thread slept and its slot fell inside the pause.
            if taken and time.monotonic() >= self._resume_at:
                return

    def rate_limited(self, seconds: float) -> None:
        """A 429: every thread waits `seconds`; the rate halves once per pause, however many requests in
        flight at the time are refused with it."""
        with self._lock:
            now = time.monotonic()
            if now >= self._resume_at:
                self._recover(now)
                self.rate = max(self.budget * FLOOR, self.rate / 2)
            self._resume_at = max(self._resume_at, now + seconds)
            self._rate_at = self._resume_at

    def _recover(self, now: float) -> None:
        if now > self._rate_at:
            self.rate = min(self.budget, self.rate + self.budget * RECOVERY_PER_SECOND * (now - self._rate_at))
            self._rate_at = now
