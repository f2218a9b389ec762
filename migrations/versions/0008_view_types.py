"""One type per view column on both databases

PostgreSQL gave some view columns a numeric type where SQLite has a whole number or a double: the sum of a
bigint count (daily_talk_time.utterances, talk_ms), seconds from extract(epoch) (daily_turnaround), and
divisions by 1000.0 or of a numeric sum (talk_seconds, daily_error_rate.error_rate). The views are replaced
with casts to BIGINT and DOUBLE PRECISION, so `stats --view` gives the same JSON on both. SQLite's values do
not change; its view bodies change with the shared text.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DAY = {'postgresql': "(created AT TIME ZONE 'UTC')::date", 'sqlite': 'date(created)'}
_T_DAY = {'postgresql': "(t.created AT TIME ZONE 'UTC')::date", 'sqlite': 'date(t.created)'}
# Seconds from created to completed: as this revision has them, and as 0003 had them.
_SECONDS = {'postgresql': 'CAST(extract(epoch FROM completed - created) AS DOUBLE PRECISION)', 'sqlite': '(julianday(completed) - julianday(created)) * 86400.0'}
_OLD_SECONDS = {'postgresql': 'extract(epoch FROM completed - created)', 'sqlite': '(julianday(completed) - julianday(created)) * 86400.0'}

# The four views as this revision makes them, created in this order (daily_talk_time reads speaker_talk_time).
_NEW = {
    'daily_error_rate': """
        SELECT account, {day} AS day,
               sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END) AS finished,
               sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
               CAST(sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
                 / CAST(nullif(sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END), 0) AS DOUBLE PRECISION)
                 AS error_rate
        FROM transcripts WHERE created IS NOT NULL
        GROUP BY account, {day}""",
    'daily_turnaround': {
        'postgresql': """
            SELECT account, {day} AS day, count(*) AS completed,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY {seconds}) AS median_seconds,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY {seconds}) AS p95_seconds
            FROM transcripts WHERE status = 'completed' AND created IS NOT NULL AND completed IS NOT NULL
            GROUP BY account, {day}""",
        'sqlite': """
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
    'speaker_talk_time': """
        SELECT account, day, transcript_id, speaker, utterances, talk_ms,
               CAST(talk_ms AS DOUBLE PRECISION) / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, transcript_id), 0) AS DOUBLE PRECISION)
                 AS talk_ratio
        FROM (
            SELECT t.account AS account, {t_day} AS day, u.transcript_id AS transcript_id, u.speaker AS speaker,
                   count(*) AS utterances, sum(u.end_ms - u.start_ms) AS talk_ms
            FROM transcript_utterances AS u
            JOIN transcripts AS t ON t.id = u.transcript_id AND t.account = u.account
            WHERE t.created IS NOT NULL
            GROUP BY t.account, {t_day}, u.transcript_id, u.speaker
        ) AS talked""",
    'daily_talk_time': """
        SELECT account, day, speaker, transcripts, utterances, CAST(talk_ms AS DOUBLE PRECISION) / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, day), 0) AS DOUBLE PRECISION) AS talk_ratio
        FROM (
            SELECT account, day, speaker, count(*) AS transcripts,
                   CAST(sum(utterances) AS BIGINT) AS utterances, CAST(sum(talk_ms) AS BIGINT) AS talk_ms
            FROM speaker_talk_time
            GROUP BY account, day, speaker
        ) AS talked""",
}

# As 0003 and 0004 made them.
_OLD = {
    'daily_error_rate': """
        SELECT account, {day} AS day,
               sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END) AS finished,
               sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
               sum(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)
                 / nullif(sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END), 0) AS error_rate
        FROM transcripts WHERE created IS NOT NULL
        GROUP BY account, {day}""",
    'daily_turnaround': {
        'postgresql': """
            SELECT account, {day} AS day, count(*) AS completed,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY {seconds}) AS median_seconds,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY {seconds}) AS p95_seconds
            FROM transcripts WHERE status = 'completed' AND created IS NOT NULL AND completed IS NOT NULL
            GROUP BY account, {day}""",
        'sqlite': """
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
    'speaker_talk_time': """
        SELECT account, day, transcript_id, speaker, utterances, talk_ms, talk_ms / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, transcript_id), 0) AS DOUBLE PRECISION)
                 AS talk_ratio
        FROM (
            SELECT t.account AS account, {t_day} AS day, u.transcript_id AS transcript_id, u.speaker AS speaker,
                   count(*) AS utterances, sum(u.end_ms - u.start_ms) AS talk_ms
            FROM transcript_utterances AS u
            JOIN transcripts AS t ON t.id = u.transcript_id AND t.account = u.account
            WHERE t.created IS NOT NULL
            GROUP BY t.account, {t_day}, u.transcript_id, u.speaker
        ) AS talked""",
    'daily_talk_time': """
        SELECT account, day, speaker, transcripts, utterances, talk_ms / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, day), 0) AS DOUBLE PRECISION) AS talk_ratio
        FROM (
            SELECT account, day, speaker, count(*) AS transcripts, sum(utterances) AS utterances, sum(talk_ms) AS talk_ms
            FROM speaker_talk_time
            GROUP BY account, day, speaker
        ) AS talked""",
}


def _replace(views: dict, seconds: dict[str, str]) -> None:
    dialect = op.get_bind().dialect.name
    for name in reversed(views):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for name, body in views.items():
        sql = body[dialect] if isinstance(body, dict) else body
        op.execute(f"CREATE VIEW {name} AS {sql.format(day=_DAY[dialect], t_day=_T_DAY[dialect], seconds=seconds[dialect])}")


def upgrade() -> None:
    _replace(_NEW, _SECONDS)


def downgrade() -> None:
    _replace(_OLD, _OLD_SECONDS)
