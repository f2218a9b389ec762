"""Parallel writers on PostgreSQL

change_seq numbers come from the sequence change_sequence (PostgreSQL only), continuing from
change_counter's value, whose row goes. A reader settles the bound it may export up to from the writers' registrations
(etl.store.changes), so writers no longer queue on change_counter's row lock. sync_run_writers holds the
counters of the pages each extra writer connection commits, one row per writer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_run_writers",
        sa.Column("sync_run", sa.Integer(), nullable=False),
        sa.Column("writer", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("bad_values", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sync_run"], ["sync_runs.id"], name=op.f("fk_sync_run_writers_sync_run_sync_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sync_run", "writer", name=op.f("pk_sync_run_writers")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # CACHE 1: etl.store.changes relies on no session handing out a number it reserved earlier.
        op.execute("CREATE SEQUENCE change_sequence AS bigint MINVALUE 1 CACHE 1")
        # The row goes: a run of an older aai-etl still in flight then fails at its next page instead of
        # taking a number no export can see. The DELETE waits for such a run's open transaction, so the
        # sequence continues from the last number it took.
        op.execute(
            "WITH moved AS (DELETE FROM change_counter WHERE id = 1 RETURNING value) "
            "SELECT setval('change_sequence', value) FROM moved"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO change_counter (id, value) "
            "SELECT 1, CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM change_sequence"
        )
        op.execute("DROP SEQUENCE change_sequence")
    op.drop_table("sync_run_writers")
