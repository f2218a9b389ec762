"""The change sequence: the number each writing transaction stamps on the rows it writes, and the bound
up to which an export may read them and hand out a watermark.

The change feed's promise (docs/data/change-feed.md) is that a watermark never skips a write: whatever
commits after an export hands out watermark W carries a change_seq above W. An export may therefore
hand out a number only once every transaction holding that number or a lower one has ended.

SQLite has one writer at a time. Each writing transaction takes the next value of the one-row
change_counter under the database's write lock, which it holds until it commits. So the numbers follow
commit order, and every committed number is settled.

PostgreSQL lets writers commit at the same time, so a lower number can commit after a higher one.
Numbers come from the sequence change_sequence. It must stay at CACHE 1: with a cache, a session hands
out a number it reserved earlier. Before a writer takes a number, it registers t, the highest number
handed out so far, as a shared transaction-level advisory lock. Its own number will be above t. The
server's lock table is the registry. Every session sees it at once (it is not transactional). The
server releases the lock when the transaction ends, however it ends: commit, rollback, or a kill -9 of
the process. A writer waits for no one: shared locks do not conflict.

An export first takes its bound B, then reads rows in a snapshot that begins after that:
  1. S = max(change_seq) of the committed rows;
  2. L = the registrations in the lock table;
  B = min(S, every t in L).
Every number s <= B belongs to a transaction that ended before step 2, so the snapshot that follows
sees all of that transaction's rows. Proof: numbers only grow, so s <= S was handed out no later than
S was, which was before step 1. Its writer registered some t < s before taking s. Had the writer still
been running at step 2, its t would be in L, and then B <= t < s, a contradiction.
The export writes the rows with since < change_seq <= B and hands out the highest it wrote. A
transaction still running, or begun later, holds only numbers above B. A committed row above B waits
for a later export.

A reader never waits for a writer. A writer that holds its transaction open holds back the bound, not
the other writers, until it ends. A standby cannot see the primary's locks, so exports read the
primary.

A registration is a two-key advisory lock (the high and the low 32 bits of t) in share mode. The run
locks (etl.store.lock) use the one-key form, so they are never mistaken for registrations. A foreign
lock of the same form can only lower the bound: watermarks come later, and no write is skipped.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from etl.errors import DatabaseError, UsageError
from etl.store.schema import change_counter, transcripts

# The highest number handed out (is_called false: none yet, the next is last_value), registered. Taking
# the number is a separate, later statement: the registration is in place before the number exists.
_REGISTER = """
SELECT pg_advisory_xact_lock_shared((t >> 32)::int4, (t & 4294967295)::bit(32)::int4)
FROM (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS t FROM change_sequence) AS handed_out
"""
_TAKE = "SELECT nextval('change_sequence')"
_REGISTERED = """
SELECT min((classid::bigint << 32) | objid::bigint) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND mode = 'ShareLock'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def next_change_seq(conn: Connection) -> int:
    """The next change sequence number, for rows the current transaction writes (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_REGISTER)
        return conn.exec_driver_sql(_TAKE).scalar_one()
    return conn.execute(
        update(change_counter).where(change_counter.c.id == 1).values(value=change_counter.c.value + 1)
        .returning(change_counter.c.value)
    ).scalar_one()


def require_known(conn: Connection, since: int) -> None:
    """Refuse a watermark this database never handed out: one below zero, or one above its highest change_seq
    (a database rebuilt or restored from a backup since). Exporting from it would skip every row up to it."""
    highest = conn.execute(select(func.max(transcripts.c.change_seq))).scalar() or 0
    conn.rollback()
    if not 0 <= since <= highest:
        raise UsageError(
            f"--since {since} is not a watermark of this database, whose highest watermark is {highest} (and none is "
            "below 0): it came from another database, or from this one before a rebuild or restore; "
            "export from --since 0 to read every row again"
        )


def settled(conn: Connection) -> int | None:
    """The highest change_seq an export may read up to now (None: no rows): every transaction holding a
    number up to it has ended. It ends the connection's transaction, so the export's reads that follow
    begin in a snapshot taken after it."""
    try:
        top = conn.execute(select(func.max(transcripts.c.change_seq))).scalar()  # step 1
        if conn.dialect.name != "postgresql" or top is None:
            return top
        if conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar():
            raise DatabaseError(
                "the change feed reads the primary: a standby cannot see which writes are still in flight, so "
                "its watermark could skip one; point database_url at the primary"
            )
        lowest = conn.exec_driver_sql(_REGISTERED).scalar()  # step 2
        return top if lowest is None else min(top, lowest)
    finally:
        conn.rollback()
