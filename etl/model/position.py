"""Places in the listing: the transcript that marks one, the cursor of a serial walk (the high water mark
and where an interrupted walk goes on) and the position of one day of a walk by days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Boundary:
    """A transcript that marks a place in the listing."""

    id: str
    created: datetime


def newer(top: Boundary | None, newest: Boundary | None) -> Boundary | None:
    """The newer of two places in the listing's (created, id) order; either may be unknown."""
    if top is None or newest is None:
        return top or newest
    return newest if (newest.created, newest.id) > (top.created, top.id) else top


@dataclass(frozen=True)
class Cursor:
    """A serial walk's place: the high water mark (the newest transcript a finished walk listed) and, while a
    walk is under way, the newest it has listed (`walk_top`), where it goes on and how far down it goes."""

    high_water: Boundary | None = None
    walk_top: Boundary | None = None
    walk_before_id: str | None = None
    walk_floor: Boundary | None = None
    walk_full: bool = False

    @property
    def walking(self) -> bool:
        """A walk was interrupted after at least one committed page: resume it before anything else."""
        return self.walk_before_id is not None


@dataclass(frozen=True)
class DayPosition:
    """Where one UTC day of a partitioned walk has got to, and the newest and oldest transcripts it listed."""

    before_id: str | None = None
    done: bool = False
    newest: Boundary | None = None
    oldest: Boundary | None = None
