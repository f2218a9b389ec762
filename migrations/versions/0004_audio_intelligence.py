"""Audio intelligence as tables, derived from transcript bodies, and views over them

Seven tables (utterances, sentiments, entities, highlights, topics, content safety, chapters), the
features each transcript was requested with and a few more of its details on transcripts, and five
views per account and UTC day of the transcript's `created`. The tables are filled by hydration, and
for transcripts hydrated before this migration by `aai-etl derive` (from transcript_bodies).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_DAY = {"postgresql": "(t.created AT TIME ZONE 'UTC')::date", "sqlite": "date(t.created)"}
_FLAGS = (
    "speaker_labels", "sentiment_analysis", "entity_detection", "auto_highlights", "iab_categories", "content_safety",
    "auto_chapters", "summarization", "redact_pii", "multichannel",
)
# Every share and ratio is one division of two whole numbers as doubles, so both databases give the
# same figure to the last bit (PostgreSQL's numeric division would not).
_VIEWS = {
    "daily_sentiment": """
        SELECT account, day, sentiment, results,
               CAST(results AS DOUBLE PRECISION)
                 / CAST(sum(results) OVER (PARTITION BY account, day) AS DOUBLE PRECISION) AS share
        FROM (
            SELECT t.account AS account, {day} AS day, s.sentiment AS sentiment, count(*) AS results
            FROM transcript_sentiments AS s
            JOIN transcripts AS t ON t.id = s.transcript_id AND t.account = s.account
            WHERE t.created IS NOT NULL
            GROUP BY t.account, {day}, s.sentiment
        ) AS counted""",
    "speaker_talk_time": """
        SELECT account, day, transcript_id, speaker, utterances, talk_ms, talk_ms / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, transcript_id), 0) AS DOUBLE PRECISION)
                 AS talk_ratio
        FROM (
            SELECT t.account AS account, {day} AS day, u.transcript_id AS transcript_id, u.speaker AS speaker,
                   count(*) AS utterances, sum(u.end_ms - u.start_ms) AS talk_ms
            FROM transcript_utterances AS u
            JOIN transcripts AS t ON t.id = u.transcript_id AND t.account = u.account
            WHERE t.created IS NOT NULL
            GROUP BY t.account, {day}, u.transcript_id, u.speaker
        ) AS talked""",
    # Built on speaker_talk_time, created before it (views are created in the order of this dict).
    "daily_talk_time": """
        SELECT account, day, speaker, transcripts, utterances, talk_ms / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, day), 0) AS DOUBLE PRECISION) AS talk_ratio
        FROM (
            SELECT account, day, speaker, count(*) AS transcripts, sum(utterances) AS utterances, sum(talk_ms) AS talk_ms
            FROM speaker_talk_time
            GROUP BY account, day, speaker
        ) AS talked""",
    "daily_entity_types": """
        SELECT t.account AS account, {day} AS day, e.entity_type AS entity_type, count(*) AS mentions,
               count(DISTINCT e.transcript_id) AS transcripts
        FROM transcript_entities AS e
        JOIN transcripts AS t ON t.id = e.transcript_id AND t.account = e.account
        WHERE t.created IS NOT NULL
        GROUP BY t.account, {day}, e.entity_type""",
    "daily_topics": """
        SELECT t.account AS account, {day} AS day, p.label AS label, count(*) AS transcripts
        FROM transcript_topics AS p
        JOIN transcripts AS t ON t.id = p.transcript_id AND t.account = p.account
        WHERE t.created IS NOT NULL
        GROUP BY t.account, {day}, p.label""",
}


def _derived(name, *columns, index=None):
    op.create_table(
        name,
        sa.Column("transcript_id", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, comment="its order in the body; in a summary of scores, highest first"),
        *columns,
        sa.ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"],
                                name=op.f(f"fk_{name}_transcript_id_transcripts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transcript_id", "account", "position", name=op.f(f"pk_{name}")),
    )
    if index:
        op.create_index(op.f(f"ix_{name}_{index}"), name, [index], unique=False)


def upgrade() -> None:
    for flag in _FLAGS:
        op.add_column("transcripts", sa.Column(flag, sa.Boolean(), nullable=True))
    op.add_column("transcripts", sa.Column("audio_channels", sa.Integer(), nullable=True))
    op.add_column("transcripts", sa.Column("language_confidence", sa.Float(), nullable=True))
    op.add_column("transcripts", sa.Column("summary", sa.Text(), nullable=True, comment="the summarization feature's summary"))
    op.add_column("transcripts", sa.Column("derived_at", sa.DateTime(timezone=True), nullable=True,
                                           comment="when the derived tables were last filled from its body"))
    _derived(
        "transcript_utterances",
        sa.Column("speaker", sa.Text()), sa.Column("channel", sa.Text()), sa.Column("start_ms", sa.Integer()),
        sa.Column("end_ms", sa.Integer()), sa.Column("confidence", sa.Float()), sa.Column("text", sa.Text()),
        index="speaker",
    )
    _derived(
        "transcript_sentiments",
        sa.Column("sentiment", sa.Text(), comment="POSITIVE, NEUTRAL or NEGATIVE"), sa.Column("confidence", sa.Float()),
        sa.Column("speaker", sa.Text()), sa.Column("channel", sa.Text()), sa.Column("start_ms", sa.Integer()),
        sa.Column("end_ms", sa.Integer()), sa.Column("text", sa.Text()),
        index="sentiment",
    )
    _derived(
        "transcript_entities",
        sa.Column("entity_type", sa.Text()), sa.Column("text", sa.Text()), sa.Column("start_ms", sa.Integer()),
        sa.Column("end_ms", sa.Integer()),
        index="entity_type",
    )
    _derived(
        "transcript_highlights",
        sa.Column("text", sa.Text()), sa.Column("count", sa.Integer()), sa.Column("rank", sa.Float()),
        sa.Column("first_start_ms", sa.Integer(), comment="the start of its first occurrence"),
        sa.Column("timestamps", _JSON, comment="every occurrence as [start_ms, end_ms]"),
        index="text",
    )
    _derived(
        "transcript_topics",
        sa.Column("label", sa.Text(), comment="an IAB category, e.g. Technology&Computing>Computing"),
        sa.Column("relevance", sa.Float(), comment="from the summary: its relevance over the whole transcript"),
        index="label",
    )
    _derived(
        "transcript_content_safety",
        sa.Column("label", sa.Text()),
        sa.Column("confidence", sa.Float(), comment="from the summary: its confidence over the whole transcript"),
        sa.Column("severity_low", sa.Float(), comment="from severity_score_summary"),
        sa.Column("severity_medium", sa.Float()), sa.Column("severity_high", sa.Float()),
        index="label",
    )
    _derived(
        "transcript_chapters",
        sa.Column("start_ms", sa.Integer()), sa.Column("end_ms", sa.Integer()), sa.Column("gist", sa.Text()),
        sa.Column("headline", sa.Text()), sa.Column("summary", sa.Text()),
    )
    dialect = op.get_bind().dialect.name
    for name, body in _VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body.format(day=_DAY[dialect])}")


def downgrade() -> None:
    for name in reversed(_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for name in ("chapters", "content_safety", "topics", "highlights", "entities", "sentiments", "utterances"):
        op.drop_table(f"transcript_{name}")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), not batch mode: rebuilding transcripts
    # would break 0003's views over it.
    for column in ("derived_at", "summary", "language_confidence", "audio_channels", *reversed(_FLAGS)):
        op.drop_column("transcripts", column)
