"""Indexes for an idle run that does not grow with the table

Two partial indexes hold only the transcripts an idle run asks about: those still pending (re-checked by
every run) and those whose details are due (the hydration queue). They stay as small as those sets
whatever the table's size, and the queries' predicates match theirs word for word, so every planner uses
them with or without statistics. sync_runs gets (account, outcome, finished_at): a run's look for runs
still marked running, and the metrics' last success, no longer read an account's whole run history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As etl/store/schema.py writes them: the statuses in the SQL, not bound.
_NOT_FINAL = sa.text("status IS NULL OR (status NOT IN ('completed', 'error'))")
_NEEDS_DETAILS = sa.text("status IN ('completed', 'error') AND hydrated_at IS NULL AND deleted_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_transcripts_pending", "transcripts", ["account", "created", "id"],
        sqlite_where=_NOT_FINAL, postgresql_where=_NOT_FINAL,
    )
    op.create_index(
        "ix_transcripts_hydration_queue", "transcripts", ["account", "created"],
        sqlite_where=_NEEDS_DETAILS, postgresql_where=_NEEDS_DETAILS,
    )
    op.create_index(op.f("ix_sync_runs_account_outcome_finished_at"), "sync_runs", ["account", "outcome", "finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_runs_account_outcome_finished_at"), table_name="sync_runs")
    op.drop_index("ix_transcripts_hydration_queue", table_name="transcripts")
    op.drop_index("ix_transcripts_pending", table_name="transcripts")
