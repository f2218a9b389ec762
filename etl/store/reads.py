"""What the walk reads of the stored rows: whether an account has any, when a transcript was created, and
the pending transcripts below the high water mark that the stragglers' re-check settles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from etl.model.position import Boundary
from etl.model.storable import escape
from etl.store.schema import NOT_FINAL, transcripts


def has_rows(conn: Connection, account: str) -> bool:
    return conn.execute(select(transcripts.c.id).where(transcripts.c.account == account).limit(1)).first() is not None


def created_of(conn: Connection, account: str, transcript_id: str) -> datetime | None:
    """The `created` of a transcript named by its id as the API sends it."""
    return conn.execute(
        select(transcripts.c.created).where(transcripts.c.account == account, transcripts.c.id == escape(transcript_id))
    ).scalar()


def is_pending(conn: Connection, account: str, transcript_id: str) -> bool:
    """Whether this stored transcript is still pending: the high water mark's own row is re-read by the walk
    that meets it, not by the stragglers' re-check."""
    return conn.execute(
        select(transcripts.c.id).where(transcripts.c.account == account, transcripts.c.id == transcript_id, NOT_FINAL)
    ).first() is not None


class StoredRows:
    """The stored rows the stragglers' re-check reads, for one account on one connection."""

    def __init__(self, conn: Connection, account: str) -> None:
        self.conn, self.account = conn, account

    def pending_below(self, high_water: Boundary, listed_since: datetime) -> list[tuple[str, datetime, str | None]]:
        """Pending transcripts still listed, created at or before the high water mark: (id, created, status),
        oldest first."""
        mine = transcripts.c.account == self.account
        rows = self.conn.execute(
            select(transcripts.c.id, transcripts.c.created, transcripts.c.status)
            .where(
                mine,
                transcripts.c.unlisted_at.is_(None),
                NOT_FINAL,
                transcripts.c.created >= listed_since,
                transcripts.c.created <= high_water.created,
                transcripts.c.id != high_water.id,
            )
            .order_by(transcripts.c.created, transcripts.c.id)
        ).all()
        return [(row.id, row.created, row.status) for row in rows]

    def nth_newest_created(self, n: int) -> datetime | None:
        """When the n-th newest listed transcript stored was created; None if fewer are stored."""
        return self.conn.execute(
            select(transcripts.c.created)
            .where(transcripts.c.account == self.account, transcripts.c.unlisted_at.is_(None))
            .order_by(transcripts.c.created.desc())
            .offset(n - 1)
            .limit(1)
        ).scalar()

    def next_newer(self, created: datetime) -> str | None:
        """The next newer transcript stored: one created at `created` is listed just below it."""
        return self.conn.execute(
            select(transcripts.c.id)
            .where(transcripts.c.account == self.account, transcripts.c.unlisted_at.is_(None), transcripts.c.created > created)
            .order_by(transcripts.c.created, transcripts.c.id)
            .limit(1)
        ).scalar()

    def count_since(self, since: datetime) -> int:
        """The stored transcripts created at or after `since`."""
        return self.conn.execute(
            select(func.count()).select_from(transcripts).where(transcripts.c.account == self.account, transcripts.c.created >= since)
        ).scalar_one()
