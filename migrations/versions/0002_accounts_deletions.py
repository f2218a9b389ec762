"""Several accounts, deletions and the listing window

Every transcript row carries the account that listed it (existing rows belong to 'default', the name a
single-account setup has always used), and the primary key becomes (id, account). Rows gain deleted_at
and unlisted_at; a walk can be a full one (sync --full).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transcripts", recreate="always") as batch_op:
        batch_op.add_column(
            sa.Column("account", sa.Text(), nullable=False, server_default="default",
                      comment="the name of the configured account it was listed by")
        )
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True,
                                      comment="when the API was first seen to list it as deleted by the user"))
        batch_op.add_column(sa.Column("unlisted_at", sa.DateTime(timezone=True), nullable=True,
                                      comment="when a full sync found it had left the API's 90-day listing"))
        batch_op.drop_constraint("pk_transcripts", type_="primary")
        # id first: lookups name ids; account is the same in most rows (see etl/store/schema.py).
        batch_op.create_primary_key("pk_transcripts", ["id", "account"])
    with op.batch_alter_table("transcripts") as batch_op:
        batch_op.alter_column("account", server_default=None, existing_type=sa.Text(), existing_nullable=False)
    op.execute("UPDATE transcripts SET deleted_at = changed_at WHERE audio_url = 'http://deleted_by_user'")
    with op.batch_alter_table("sync_cursors") as batch_op:
        batch_op.add_column(sa.Column("walk_full", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("sync_cursors") as batch_op:
        batch_op.alter_column("walk_full", server_default=None, existing_type=sa.Boolean(), existing_nullable=False)
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.add_column(sa.Column("deleted", sa.Integer(), nullable=False, server_default="0",
                                      comment="transcripts first seen deleted by the user"))
        batch_op.add_column(sa.Column("unlisted", sa.Integer(), nullable=False, server_default="0",
                                      comment="rows found to have left the listing"))
        batch_op.add_column(sa.Column("warning", sa.Text(), nullable=True,
                                      comment="what the user should know though the run succeeded, e.g. a possible gap"))
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.alter_column("deleted", server_default=None, existing_type=sa.Integer(), existing_nullable=False)
        batch_op.alter_column("unlisted", server_default=None, existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    # Rows of accounts other than 'default' cannot be told apart without the account column: refuse to
    # merge them silently into one id space.
    others = op.get_bind().execute(sa.text("SELECT count(*) FROM transcripts WHERE account <> 'default'")).scalar()
    if others:
        raise RuntimeError(f"{others} transcripts belong to accounts other than 'default'; delete them before downgrading")
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.drop_column("warning")
        batch_op.drop_column("unlisted")
        batch_op.drop_column("deleted")
    with op.batch_alter_table("sync_cursors") as batch_op:
        batch_op.drop_column("walk_full")
    with op.batch_alter_table("transcripts", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_transcripts", type_="primary")
        batch_op.create_primary_key("pk_transcripts", ["id"])
        batch_op.drop_column("unlisted_at")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("account")
