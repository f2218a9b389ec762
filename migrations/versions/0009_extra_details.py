"""Sentences, paragraphs and subtitles of transcripts: the extra_details setting's tables

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _keyed(name, last, *columns):
    op.create_table(
        name,
        sa.Column("transcript_id", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        last,
        *columns,
        sa.ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"],
                                name=op.f(f"fk_{name}_transcript_id_transcripts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transcript_id", "account", last.name, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    for name in ("transcript_sentences", "transcript_paragraphs"):
        _keyed(
            name, sa.Column("position", sa.Integer(), nullable=False, comment="its order in the API's list"),
            sa.Column("text", sa.Text()), sa.Column("start_ms", sa.Integer()), sa.Column("end_ms", sa.Integer()),
            sa.Column("confidence", sa.Float()), sa.Column("speaker", sa.Text()), sa.Column("channel", sa.Text()),
        )
    _keyed(
        "transcript_subtitles", sa.Column("format", sa.Text(), nullable=False, comment="srt or vtt"),
        sa.Column("text", sa.Text(), nullable=False, comment="GET /v2/transcript/{id}/srt or /vtt exactly as received"),
    )


def downgrade() -> None:
    for name in ("transcript_subtitles", "transcript_paragraphs", "transcript_sentences"):
        op.drop_table(name)
