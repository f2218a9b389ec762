"""Transcript details, status history, the change feed and the analytics views

Hydration columns on transcripts, words and full bodies in their own tables, an append-only
transcript_status_changes, change_seq with its counter, and four views per UTC day of `created`.

The views read transcripts: a later migration that rebuilds that table in SQLite batch mode must drop
them first and create them again after (drop_views() and create_views() below).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The UTC calendar day of `created`, and seconds from `created` to `completed`, in each dialect.
_DAY = {"postgresql": "(created AT TIME ZONE 'UTC')::date", "sqlite": "date(created)"}
_SECONDS = {
    "postgresql": "extract(epoch FROM completed - created)",
    "sqlite": "(julianday(completed) - julianday(created)) * 86400.0",
}

_VIEWS = {
    "daily_status_counts": """
        SELECT account, {day} AS day, status, count(*) AS transcripts
        FROM transcripts WHERE created IS NOT NULL
        GROUP BY account, {day}, status""",
    "daily_audio_hours": """
        SELECT account, {day} AS day, sum(audio_duration) / 3600.0 AS audio_hours,
               count(audio_duration) AS transcripts
        FROM transcripts WHERE created IS NOT NULL AND status = 'completed'
        GROUP BY account, {day}""",
    "daily_error_rate": """
        SELECT account, {day} AS day,
               sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END) AS finished,
               sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
               sum(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)
                 / nullif(sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END), 0) AS error_rate
        FROM transcripts WHERE created IS NOT NULL
        GROUP BY account, {day}""",
    # Median and p95 by nearest rank: the smallest value with at least that share of values at or below
    # it. PostgreSQL's percentile_disc and SQLite's ranking below compute the same, exactly.
    "daily_turnaround": {
        "postgresql": """
            SELECT account, {day} AS day, count(*) AS completed,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY {seconds}) AS median_seconds,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY {seconds}) AS p95_seconds
            FROM transcripts WHERE status = 'completed' AND created IS NOT NULL AND completed IS NOT NULL
            GROUP BY account, {day}""",
        "sqlite": """
            SELECT account, day, count(*) AS completed,
                   min(CASE WHEN rank >= 0.5 * n THEN seconds END) AS median_seconds,
                   min(CASE WHEN rank >= 0.95 * n THEN seconds END) AS p95_seconds
            FROM (
                SELECT account, {day} AS day, {seconds} AS seconds,
                       row_number() OVER (PARTITION BY account, {day} ORDER BY {seconds}) AS rank,
                       count(*) OVER (PARTITION BY account, {day}) AS n
                FROM transcripts WHERE status = 'completed' AND created IS NOT NULL AND completed IS NOT NULL
            ) AS ranked
            GROUP BY account, day""",
    },
}


def create_views() -> None:
    dialect = op.get_bind().dialect.name
    for name, body in _VIEWS.items():
        sql = body[dialect] if isinstance(body, dict) else body
        op.execute(f"CREATE VIEW {name} AS {sql.format(day=_DAY[dialect], seconds=_SECONDS[dialect])}")


def drop_views() -> None:
    for name in _VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")


def upgrade() -> None:
    counter = op.create_table('change_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_counter'))
    )
    # Rows stored before the change feed existed share sequence 1; every later write is above it.
    op.bulk_insert(counter, [{"id": 1, "value": 1}])
    op.create_table('transcript_bodies',
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('transcript_id', sa.Text(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False, comment='GET /v2/transcript/{id} exactly as received'),
    sa.ForeignKeyConstraint(['transcript_id', 'account'], ['transcripts.id', 'transcripts.account'], name=op.f('fk_transcript_bodies_transcript_id_transcripts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('transcript_id', 'account', name=op.f('pk_transcript_bodies'))
    )
    op.create_table('transcript_status_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('transcript_id', sa.Text(), nullable=False),
    sa.Column('old_status', sa.Text(), nullable=True, comment='NULL when it was unreadable'),
    sa.Column('new_status', sa.Text(), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['transcript_id', 'account'], ['transcripts.id', 'transcripts.account'], name=op.f('fk_transcript_status_changes_transcript_id_transcripts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcript_status_changes'))
    )
    with op.batch_alter_table('transcript_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcript_status_changes_transcript_id_account'), ['transcript_id', 'account'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcript_status_changes_observed_at'), ['observed_at'], unique=False)

    op.create_table('transcript_words',
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('transcript_id', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('speaker', sa.Text(), nullable=True),
    sa.Column('channel', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['transcript_id', 'account'], ['transcripts.id', 'transcripts.account'], name=op.f('fk_transcript_words_transcript_id_transcripts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('transcript_id', 'account', 'position', name=op.f('pk_transcript_words'))
    )
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_seq', sa.BigInteger(), nullable=False, server_default="1", comment="the change sequence of the row's last write"))
        batch_op.add_column(sa.Column('text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('audio_duration', sa.Float(), nullable=True, comment='seconds'))
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('language_code', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('speech_model', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('speech_models', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('speech_model_used', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('hydrated_at', sa.DateTime(timezone=True), nullable=True, comment='when its details were fetched'))
        batch_op.add_column(sa.Column('hydrate_attempts', sa.Integer(), nullable=False, server_default="0", comment='failed detail fetches so far'))
        batch_op.add_column(sa.Column('hydrate_after', sa.DateTime(timezone=True), nullable=True, comment='no detail fetch before this time (backoff after failures)'))
        batch_op.add_column(sa.Column('hydrate_error', sa.Text(), nullable=True, comment='why the last detail fetch failed'))
        batch_op.create_index(batch_op.f('ix_transcripts_hydrated_at_account'), ['hydrated_at', 'account'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcripts_change_seq'), ['change_seq'], unique=False)
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.alter_column('change_seq', server_default=None, existing_type=sa.BigInteger(), existing_nullable=False)
        batch_op.alter_column('hydrate_attempts', server_default=None, existing_type=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hydrated', sa.Integer(), nullable=False, server_default="0", comment='transcripts whose details were fetched'))
        batch_op.add_column(sa.Column('hydrate_failures', sa.Integer(), nullable=False, server_default="0", comment='detail fetches that failed (retried later)'))
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.alter_column('hydrated', server_default=None, existing_type=sa.Integer(), existing_nullable=False)
        batch_op.alter_column('hydrate_failures', server_default=None, existing_type=sa.Integer(), existing_nullable=False)
    create_views()



def downgrade() -> None:
    drop_views()
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('hydrate_failures')
        batch_op.drop_column('hydrated')
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcripts_change_seq'))
        batch_op.drop_index(batch_op.f('ix_transcripts_hydrated_at_account'))
        batch_op.drop_column('hydrate_error')
        batch_op.drop_column('hydrate_after')
        batch_op.drop_column('hydrate_attempts')
        batch_op.drop_column('hydrated_at')
        batch_op.drop_column('speech_model_used')
        batch_op.drop_column('speech_models')
        batch_op.drop_column('speech_model')
        batch_op.drop_column('language_code')
        batch_op.drop_column('confidence')
        batch_op.drop_column('audio_duration')
        batch_op.drop_column('text')
        batch_op.drop_column('change_seq')

    op.drop_table('transcript_words')
    with op.batch_alter_table('transcript_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcript_status_changes_observed_at'))
        batch_op.drop_index(batch_op.f('ix_transcript_status_changes_transcript_id_account'))

    op.drop_table('transcript_status_changes')
    op.drop_table('transcript_bodies')
    op.drop_table('change_counter')
