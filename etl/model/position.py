"""A place in the listing: the transcript that marks it, and which of two places is the newer."""

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
