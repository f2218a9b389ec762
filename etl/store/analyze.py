"""Fresh planner statistics on PostgreSQL while a run grows the table.

PostgreSQL plans a table it has no statistics for as if it were tiny: a first sync's page lookups then
scan the whole table, each page longer than the last. So a run that inserts many rows analyzes the table
itself, at 1,000 new rows and at every four times as many since: cheap, and long before autovacuum would.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

ANALYZE_FIRST, ANALYZE_GROWTH = 1_000, 4


class Analyzer:
    """ANALYZE transcripts on this connection when the run's counts say it has grown (PostgreSQL only)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.at = ANALYZE_FIRST if conn.dialect.name == "postgresql" else None

    def after_inserts(self, inserted: int) -> None:
        """Once the run has inserted ANALYZE_FIRST rows, then at every ANALYZE_GROWTH times as many."""
        if self.at is not None and inserted >= self.at:
            self._analyze()
            self.at *= ANALYZE_GROWTH

    def after_hydration(self, hydrated: int) -> None:
        """Hydration rewrites many rows too: without fresh statistics the next run's queue query scans the
        `created` index (over a second at 300,000 rows instead of 150 ms)."""
        if self.at is not None and hydrated >= ANALYZE_FIRST:
            self._analyze()

    def _analyze(self) -> None:
        self.conn.execute(text("ANALYZE transcripts"))
        self.conn.commit()
