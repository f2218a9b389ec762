"""Day partitions of a first backfill or sync --full

sync_partitions holds where each UTC day of a partitioned walk has got to, committed with the day's rows,
so a killed run resumes every day where it stopped. sync_cursors.partitions_refused remembers that the
account's API did not honour created_on, so later runs walk serially at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_partitions",
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False, comment="the UTC day listed with created_on"),
        sa.Column("before_id", sa.Text(), nullable=True, comment="where the day's walk goes on; NULL: from its newest"),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("walk_full", sa.Boolean(), nullable=False),
        sa.Column("newest_id", sa.Text(), nullable=True),
        sa.Column("newest_created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("oldest_id", sa.Text(), nullable=True),
        sa.Column("oldest_created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "day", name=op.f("pk_sync_partitions")),
    )
    with op.batch_alter_table("sync_cursors") as batch_op:
        batch_op.add_column(sa.Column("partitions_refused", sa.Text(), nullable=True,
                                      comment="why day partitions are not used for this account, once found"))


def downgrade() -> None:
    with op.batch_alter_table("sync_cursors") as batch_op:
        batch_op.drop_column("partitions_refused")
    op.drop_table("sync_partitions")
