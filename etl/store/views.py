"""The analytics views as the schema's head has them: what a new database gets (migrate.create_head).

Migrations 0003 and 0004 keep their own copies, frozen as they were written: history must not change when a
view does. A change to a view here comes with a migration that replaces it, and tests/test_fresh_schema.py
checks that the migrations and this module give the same views.
"""

from __future__ import annotations

from sqlalchemy import Connection

# The UTC calendar day of `created` (of `t.created` in a join), and seconds from `created` to `completed`.
_DAY = {"postgresql": "(created AT TIME ZONE 'UTC')::date", "sqlite": "date(created)"}
_T_DAY = {"postgresql": "(t.created AT TIME ZONE 'UTC')::date", "sqlite": "date(t.created)"}
_SECONDS = {
    "postgresql": "CAST(extract(epoch FROM completed - created) AS DOUBLE PRECISION)",
    "sqlite": "(julianday(completed) - julianday(created)) * 86400.0",
}

# In the order they are created. The first four are migration 0003's, over transcripts; the others 0004's,
# over the audio intelligence tables; 0008 replaced four so that each column has one type on both databases:
# a count is a whole number (PostgreSQL's sum of a bigint is numeric), every other figure a double. Every share
# and ratio is one division of two whole numbers as doubles, so both databases give the same figure to the
# last bit (PostgreSQL's numeric division would not).
VIEWS: dict[str, str | dict[str, str]] = {
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
               CAST(sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
                 / CAST(nullif(sum(CASE WHEN status IN ('completed', 'error') THEN 1 ELSE 0 END), 0) AS DOUBLE PRECISION)
                 AS error_rate
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
    "daily_sentiment": """
        SELECT account, day, sentiment, results,
               CAST(results AS DOUBLE PRECISION)
                 / CAST(sum(results) OVER (PARTITION BY account, day) AS DOUBLE PRECISION) AS share
        FROM (
            SELECT t.account AS account, {t_day} AS day, s.sentiment AS sentiment, count(*) AS results
            FROM transcript_sentiments AS s
            JOIN transcripts AS t ON t.id = s.transcript_id AND t.account = s.account
            WHERE t.created IS NOT NULL
            GROUP BY t.account, {t_day}, s.sentiment
        ) AS counted""",
    "speaker_talk_time": """
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
    # Built on speaker_talk_time, created before it (views are created in the order of this dict).
    "daily_talk_time": """
        SELECT account, day, speaker, transcripts, utterances, CAST(talk_ms AS DOUBLE PRECISION) / 1000.0 AS talk_seconds,
               CAST(talk_ms AS DOUBLE PRECISION)
                 / CAST(nullif(sum(talk_ms) OVER (PARTITION BY account, day), 0) AS DOUBLE PRECISION) AS talk_ratio
        FROM (
            SELECT account, day, speaker, count(*) AS transcripts,
                   CAST(sum(utterances) AS BIGINT) AS utterances, CAST(sum(talk_ms) AS BIGINT) AS talk_ms
            FROM speaker_talk_time
            GROUP BY account, day, speaker
        ) AS talked""",
    "daily_entity_types": """
        SELECT t.account AS account, {t_day} AS day, e.entity_type AS entity_type, count(*) AS mentions,
               count(DISTINCT e.transcript_id) AS transcripts
        FROM transcript_entities AS e
        JOIN transcripts AS t ON t.id = e.transcript_id AND t.account = e.account
        WHERE t.created IS NOT NULL
        GROUP BY t.account, {t_day}, e.entity_type""",
    "daily_topics": """
        SELECT t.account AS account, {t_day} AS day, p.label AS label, count(*) AS transcripts
        FROM transcript_topics AS p
        JOIN transcripts AS t ON t.id = p.transcript_id AND t.account = p.account
        WHERE t.created IS NOT NULL
        GROUP BY t.account, {t_day}, p.label""",
}


def create(conn: Connection) -> None:
    """Create every view (the tables they read must exist)."""
    dialect = conn.dialect.name
    for name, body in VIEWS.items():
        sql = body[dialect] if isinstance(body, dict) else body
        sql = sql.format(day=_DAY[dialect], t_day=_T_DAY[dialect], seconds=_SECONDS[dialect])
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {sql}")
