"""SQLAlchemy tables: the one description of the schema, which the migrations must match."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    Table,
    Text,
    TypeDecorator,
    and_,
    literal_column,
    or_,
)

from etl.model.items import FINAL_STATUSES

# Named constraints let Alembic's batch mode on SQLite find and alter them by name.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        # SQLite has no time zones: store UTC wall time so its date functions and text order both work.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class RawJSON(TypeDecorator):
    """JSONB on PostgreSQL: indexable and queryable with ->>; plain JSON text on SQLite.

    Chosen per dialect when a statement is compiled, not with JSON().with_variant(JSONB()): naming JSONB
    here would import the PostgreSQL dialect into every SQLite run, a tenth of an idle run's start-up."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


transcripts = Table(
    "transcripts",
    metadata,
    Column("account", Text, nullable=False, comment="the name of the configured account it was listed by"),
    Column("id", Text, nullable=False),
    Column("status", Text),
    Column("created", UTCDateTime),
    Column("completed", UTCDateTime),
    Column("audio_url", Text),
    Column("resource_url", Text),
    Column("error", Text),
    Column("raw", RawJSON, nullable=False, comment="the list item exactly as received"),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False, comment="when a listed value last changed"),
    Column("deleted_at", UTCDateTime, comment="when the API was first seen to list it as deleted by the user"),
    Column("unlisted_at", UTCDateTime, comment="when a full sync found it had left the API's 90-day listing"),
    # Bumped, from change_counter, in every transaction that writes the row: the export's watermark.
    Column("change_seq", BigInteger, nullable=False, comment="the change sequence of the row's last write"),
    # From GET /v2/transcript/{id}, once the transcript is final (hydration).
    Column("text", Text),
    Column("audio_duration", Float, comment="seconds"),
    Column("confidence", Float),
    Column("language_code", Text),
    Column("speech_model", Text),
    Column("speech_models", RawJSON),
    Column("speech_model_used", Text),
    Column("hydrated_at", UTCDateTime, comment="when its details were fetched"),
    Column("hydrate_attempts", Integer, nullable=False, default=0, comment="failed detail fetches so far"),
    Column("hydrate_after", UTCDateTime, comment="no detail fetch before this time (backoff after failures)"),
    Column("hydrate_error", Text, comment="why the last detail fetch failed"),
    # Which audio intelligence features the transcript was requested with (from its body): with them, "no
    # rows" in a derived table can be told apart from "not requested". NULL when the body did not say.
    Column("speaker_labels", Boolean),
    Column("sentiment_analysis", Boolean),
    Column("entity_detection", Boolean),
    Column("auto_highlights", Boolean),
    Column("iab_categories", Boolean),
    Column("content_safety", Boolean),
    Column("auto_chapters", Boolean),
    Column("summarization", Boolean),
    Column("redact_pii", Boolean),
    Column("multichannel", Boolean),
    Column("audio_channels", Integer),
    Column("language_confidence", Float),
    Column("summary", Text, comment="the summarization feature's summary"),
    Column("derived_at", UTCDateTime, comment="when the derived tables were last filled from its body"),
    # id first: every lookup names the ids, while account is the same in most rows. With (account, id) a
    # cached generic plan on PostgreSQL searched by account alone and read the account's every row.
    PrimaryKeyConstraint("id", "account"),
    Index(None, "status", "created"),
    Index(None, "created"),
    Index(None, "change_seq"),
    Index(None, "hydrated_at", "account"),  # hydrated_at first: an account-first index lured lookups by id
)

# What hydration stores from GET /v2/transcript/{id}: purged when the transcript is deleted.
DETAIL_COLUMNS = (
    "text", "audio_duration", "confidence", "language_code", "speech_model", "speech_models", "speech_model_used",
)
# What etl.details.derive stores on transcripts from the body: the features requested, and a few scalars.
FEATURE_FLAGS = (
    "speaker_labels", "sentiment_analysis", "entity_detection", "auto_highlights", "iab_categories", "content_safety",
    "auto_chapters", "summarization", "redact_pii", "multichannel",
)
FEATURE_COLUMNS = (*FEATURE_FLAGS, "audio_channels", "language_confidence", "summary")


# The two sets an idle run asks about, each behind a partial index that holds only its rows, so asking costs
# the same at any table size and no statistics can make a scan look cheaper. The statuses are written into
# the SQL, not bound: a planner uses a partial index only when it can match the query's predicate to the
# index's, which a value not yet bound cannot be (PostgreSQL's generic plans, SQLite's first prepare).
_FINAL: list[ColumnElement[str]] = [literal_column(f"'{status}'") for status in FINAL_STATUSES]
# Pending: queued, processing, or a status unknown or unreadable (etl/walk/stragglers.py re-checks them).
NOT_FINAL = or_(transcripts.c.status.is_(None), transcripts.c.status.not_in(_FINAL))
# Final, not deleted, details not yet fetched: the hydration queue (etl/details/hydrate.py; status counts it too).
NEEDS_DETAILS = and_(transcripts.c.status.in_(_FINAL), transcripts.c.hydrated_at.is_(None), transcripts.c.deleted_at.is_(None))
_PARTIAL_INDEXES = (
    Index("ix_transcripts_pending", transcripts.c.account, transcripts.c.created, transcripts.c.id, sqlite_where=NOT_FINAL),
    Index("ix_transcripts_hydration_queue", transcripts.c.account, transcripts.c.created, sqlite_where=NEEDS_DETAILS),
)


def give_partial_indexes_their_predicate(dialect: str) -> None:
    """Give the partial indexes their predicate on PostgreSQL, before their DDL is compiled there
    (etl.store.migrate.create_head; the migrations spell theirs out).

    Not as postgresql_where= above: SQLAlchemy loads a dialect to check its keyword arguments, and that
    would import the PostgreSQL dialect into every SQLite run. The predicate is the same on both."""
    if dialect == "postgresql":
        for index in _PARTIAL_INDEXES:
            index.dialect_options["postgresql"]["where"] = index.dialect_options["sqlite"]["where"]


# Where change_seq numbers come from (etl.store.changes). SQLite: one row, one number, the next value taken
# under the database's write lock. PostgreSQL: the sequence, so that writers commit at once. There the
# table is empty: migration 0007 moved its value into the sequence (a downgrade puts it back).
change_counter = Table(
    "change_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)
change_sequence = Sequence("change_sequence", metadata=metadata, minvalue=1, cache=1)  # PostgreSQL only; CACHE 1

transcript_status_changes = Table(
    "transcript_status_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account", Text, nullable=False),
    Column("transcript_id", Text, nullable=False),
    Column("old_status", Text, comment="NULL when it was unreadable"),
    Column("new_status", Text),
    Column("observed_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"], ondelete="CASCADE"),
    Index(None, "transcript_id", "account"),
    Index(None, "observed_at"),
)


def _timed(name: str, position: str | None = None) -> Table:
    """Words, sentences or paragraphs of a transcript: one row per element of the API's list, in its order
    (`position`: its comment)."""
    return Table(
        name,
        metadata,
        Column("transcript_id", Text, primary_key=True),
        Column("account", Text, primary_key=True),
        Column("position", Integer, primary_key=True, comment=position),
        Column("text", Text),
        Column("start_ms", Integer),
        Column("end_ms", Integer),
        Column("confidence", Float),
        Column("speaker", Text),
        Column("channel", Text),
        ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"], ondelete="CASCADE"),
    )


transcript_words = _timed("transcript_words")

transcript_bodies = Table(
    "transcript_bodies",
    metadata,
    Column("transcript_id", Text, primary_key=True),
    Column("account", Text, primary_key=True),
    Column("body", RawJSON, nullable=False, comment="GET /v2/transcript/{id} exactly as received"),
    ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"], ondelete="CASCADE"),
)



def _derived(name: str, *columns: Column | Index) -> Table:
    """A table derived from transcript bodies: one row per element of one part of the body, in its order."""
    return Table(
        name,
        metadata,
        Column("transcript_id", Text, primary_key=True),
        Column("account", Text, primary_key=True),
        Column("position", Integer, primary_key=True, comment="its order in the body; in a summary of scores, highest first"),
        *columns,
        ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"], ondelete="CASCADE"),
    )


# Audio intelligence, from the body hydration already fetched. Times are milliseconds from the audio's start.
transcript_utterances = _derived(
    "transcript_utterances",
    Column("speaker", Text),
    Column("channel", Text),
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Column("confidence", Float),
    Column("text", Text),
    Index(None, "speaker"),
)
transcript_sentiments = _derived(
    "transcript_sentiments",
    Column("sentiment", Text, comment="POSITIVE, NEUTRAL or NEGATIVE"),
    Column("confidence", Float),
    Column("speaker", Text),
    Column("channel", Text),
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Column("text", Text),
    Index(None, "sentiment"),
)
transcript_entities = _derived(
    "transcript_entities",
    Column("entity_type", Text),
    Column("text", Text),
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Index(None, "entity_type"),
)
transcript_highlights = _derived(
    "transcript_highlights",
    Column("text", Text),
    Column("count", Integer),
    Column("rank", Float),
    Column("first_start_ms", Integer, comment="the start of its first occurrence"),
    Column("timestamps", RawJSON, comment="every occurrence as [start_ms, end_ms]"),
    Index(None, "text"),
)
transcript_topics = _derived(
    "transcript_topics",
    Column("label", Text, comment="an IAB category, e.g. Technology&Computing>Computing"),
    Column("relevance", Float, comment="from the summary: its relevance over the whole transcript"),
    Index(None, "label"),
)
transcript_content_safety = _derived(
    "transcript_content_safety",
    Column("label", Text),
    Column("confidence", Float, comment="from the summary: its confidence over the whole transcript"),
    Column("severity_low", Float, comment="from severity_score_summary"),
    Column("severity_medium", Float),
    Column("severity_high", Float),
    Index(None, "label"),
)
transcript_chapters = _derived(
    "transcript_chapters",
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Column("gist", Text),
    Column("headline", Text),
    Column("summary", Text),
)
# Every derived table, by the name the derived_tables setting uses.
DERIVED_TABLES = {
    "utterances": transcript_utterances,
    "sentiments": transcript_sentiments,
    "entities": transcript_entities,
    "highlights": transcript_highlights,
    "topics": transcript_topics,
    "content_safety": transcript_content_safety,
    "chapters": transcript_chapters,
}


# The extra_details setting's parts (GET /v2/transcript/{id}/sentences, ...), each one more request per
# completed transcript.
transcript_sentences = _timed("transcript_sentences", "its order in the API's list")
transcript_paragraphs = _timed("transcript_paragraphs", "its order in the API's list")
transcript_subtitles = Table(
    "transcript_subtitles",
    metadata,
    Column("transcript_id", Text, primary_key=True),
    Column("account", Text, primary_key=True),
    Column("format", Text, primary_key=True, comment="srt or vtt"),
    Column("text", Text, nullable=False, comment="GET /v2/transcript/{id}/srt or /vtt exactly as received"),
    ForeignKeyConstraint(["transcript_id", "account"], ["transcripts.id", "transcripts.account"], ondelete="CASCADE"),
)
# Every table of extra details, by the name the extra_details setting uses (srt and vtt share one).
EXTRA_DETAIL_TABLES = {"sentences": transcript_sentences, "paragraphs": transcript_paragraphs, "srt": transcript_subtitles,
                       "vtt": transcript_subtitles}

# Where each account's sync stands. The high water mark is the newest transcript up to which everything is
# stored; a walk in progress is resumable from walk_before_id down to its floor.
sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("account", Text, primary_key=True),
    Column("high_water_id", Text),
    Column("high_water_created", UTCDateTime),
    Column("walk_top_id", Text),
    Column("walk_top_created", UTCDateTime),
    Column("walk_before_id", Text),
    Column("walk_floor_id", Text),
    Column("walk_floor_created", UTCDateTime),
    # A full walk (sync --full) goes to the end of the listing and then marks what is no longer listed.
    Column("walk_full", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("partitions_refused", Text, comment="why day partitions are not used for this account, once found"),
)

# Where each UTC day of a partitioned walk (a first backfill or sync --full) has got to, committed with
# the day's rows; the rows go when the last day is done.
sync_partitions = Table(
    "sync_partitions",
    metadata,
    Column("account", Text, primary_key=True),
    Column("day", Date, primary_key=True, comment="the UTC day listed with created_on"),
    Column("before_id", Text, comment="where the day's walk goes on; NULL: from its newest"),
    Column("done", Boolean, nullable=False),
    Column("walk_full", Boolean, nullable=False),
    Column("newest_id", Text),
    Column("newest_created", UTCDateTime),
    Column("oldest_id", Text),
    Column("oldest_created", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", Text, nullable=False, comment="running, succeeded, failed or abandoned"),
    Column("pages", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("inserted", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("bad_values", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0, comment="transcripts first seen deleted by the user"),
    Column("unlisted", Integer, nullable=False, default=0, comment="rows found to have left the listing"),
    Column("hydrated", Integer, nullable=False, default=0, comment="transcripts whose details were fetched"),
    Column("hydrate_failures", Integer, nullable=False, default=0, comment="detail fetches that failed (retried later)"),
    Column("error", Text),
    Column("warning", Text, comment="what the user should know though the run succeeded, e.g. a possible gap"),
    Column("pid", Integer),
    Column("hostname", Text),
    Index(None, "account", "started_at"),
    # A run looks up the account's runs still marked running, and the metrics its last success: neither reads
    # the account's whole history, which grows by a row a run.
    Index(None, "account", "outcome", "finished_at"),
)

# The counters of the pages that a run's extra writer connections committed (a walk by days on
# PostgreSQL). Each writer has its own row, so writers do not queue on one row lock. Each page's
# transaction updates its writer's row. The run's own connection adds the rows into sync_runs and
# deletes them in one transaction: when the walk ends, when the run ends, or, for a killed run, when the
# next run marks it abandoned.
sync_run_writers = Table(
    "sync_run_writers",
    metadata,
    Column("sync_run", Integer, primary_key=True),
    Column("writer", Integer, primary_key=True),
    Column("pages", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("bad_values", Integer, nullable=False),
    ForeignKeyConstraint(["sync_run"], ["sync_runs.id"], ondelete="CASCADE"),
)

# Where a database upgraded by the migrations has its columns in another order than the tables above
# (a migration adds a column at the end): etl.store.migrate.create_head gives a new database the same
# order, so every database's `SELECT *` and dump look alike. A column not named here comes after those that are.
UPGRADED_COLUMN_ORDER = {
    "transcripts": [
        "id", "status", "created", "completed", "audio_url", "resource_url", "error", "raw", "first_seen_at",
        "changed_at", "account",
    ],
    "transcript_words": ["account", "transcript_id"],
    "transcript_bodies": ["account", "transcript_id"],
    "sync_cursors": [
        "account", "high_water_id", "high_water_created", "walk_top_id", "walk_top_created", "walk_before_id",
        "walk_floor_id", "walk_floor_created", "updated_at",
    ],
    "sync_runs": [
        "id", "account", "started_at", "finished_at", "outcome", "pages", "requests", "inserted", "updated",
        "unchanged", "bad_values", "error", "pid", "hostname", "deleted", "unlisted", "warning",
    ],
}

# The indexes in the order the migrations create them: planners break ties between equally good indexes by
# their order (SQLite's tries the newest first), so a new database gets this order and the same plans as an
# upgraded one. (The first four of transcripts come in any order there: Alembic's rebuilds of the table
# recreate them from a set.) An index not named here comes after those that are.
UPGRADED_INDEX_ORDER = [
    "ix_transcripts_created", "ix_transcripts_status_created", "ix_transcripts_hydrated_at_account", "ix_transcripts_change_seq",
    "ix_transcripts_pending", "ix_transcripts_hydration_queue",
    "ix_sync_runs_account_started_at", "ix_sync_runs_account_outcome_finished_at",
    "ix_transcript_status_changes_transcript_id_account", "ix_transcript_status_changes_observed_at",
]
