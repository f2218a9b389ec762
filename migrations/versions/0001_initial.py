"""transcripts, sync cursors and sync runs

Revision ID: 0001
Revises: 
Create Date: 2026-11-25

Timestamps are timestamptz on PostgreSQL and UTC text on SQLite (etl.store.schema.UTCDateTime).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_cursors',
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('high_water_id', sa.Text(), nullable=True),
    sa.Column('high_water_created', sa.DateTime(timezone=True), nullable=True),
    sa.Column('walk_top_id', sa.Text(), nullable=True),
    sa.Column('walk_top_created', sa.DateTime(timezone=True), nullable=True),
    sa.Column('walk_before_id', sa.Text(), nullable=True),
    sa.Column('walk_floor_id', sa.Text(), nullable=True),
    sa.Column('walk_floor_created', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_sync_cursors'))
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=False, comment='running, succeeded, failed or abandoned'),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('bad_values', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('hostname', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_runs_account_started_at'), ['account', 'started_at'], unique=False)

    op.create_table('transcripts',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed', sa.DateTime(timezone=True), nullable=True),
    sa.Column('audio_url', sa.Text(), nullable=True),
    sa.Column('resource_url', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False, comment='the list item exactly as received'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False, comment='when a listed value last changed'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcripts'))
    )
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcripts_created'), ['created'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcripts_status_created'), ['status', 'created'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcripts_status_created'))
        batch_op.drop_index(batch_op.f('ix_transcripts_created'))

    op.drop_table('transcripts')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_runs_account_started_at'))

    op.drop_table('sync_runs')
    op.drop_table('sync_cursors')
