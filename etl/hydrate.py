"""Transcript details: every final transcript fetched once with GET /v2/transcript/{id}, concurrently.

Worker threads only fetch; this thread writes, a batch per transaction. The queue is the table itself
(final, not deleted, not yet hydrated, not backing off), so an interrupted run resumes where its last
batch committed, and a transcript whose fetch keeps failing waits longer each time without holding up
the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update

from etl import derive, interrupt
from etl.client import ApiClient
from etl.errors import AuthError, EtlError
from etl.items import DELETED_AUDIO_URL, FINAL_STATUSES
from etl.load import DETAIL_COLUMNS, next_change_seq
from etl.schema import transcript_bodies, transcript_words, transcripts

log = logging.getLogger(__name__)

DELETED_TEXT = "Deleted by user."
BATCH = 50  # rows a transaction: small enough to lose little to a kill, large enough to batch well
CHUNK = 1000  # ids read from the queue at a time: memory stays flat however large the backlog
RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(days=1)
# Final, not deleted, details not yet fetched: the transcripts hydration is for (status counts them too).
NEEDS_DETAILS = and_(
    transcripts.c.status.in_(FINAL_STATUSES), transcripts.c.hydrated_at.is_(None), transcripts.c.deleted_at.is_(None)
)


@dataclass
class HydrateOptions:
    workers: int = 8
    store_words: bool = False
    store_bodies: bool = True
    deriver: derive.Deriver = field(default_factory=derive.Deriver)  # fills the audio intelligence tables


@dataclass
class _Fetched:
    transcript_id: str
    attempts: int
    body: dict[str, Any] | None = None
    error: str | None = None


def hydrate(
    conn: Connection,
    client: ApiClient,
    account: str,
    options: HydrateOptions,
    on_batch: Callable[[int, int], None] = lambda hydrated, failed: None,
) -> tuple[int, int]:
    """Fetch the details of every final transcript still without them; return (hydrated, failed).

    `on_batch` runs inside each batch's transaction, before its commit."""
    hydrated = failed = 0
    with ThreadPoolExecutor(options.workers, thread_name_prefix="hydrate") as pool:
        for chunk in _queue(conn, account):
            futures = [pool.submit(_fetch, client, transcript_id, attempts) for transcript_id, attempts in chunk]
            try:
                for batch in _batches(as_completed(futures)):
                    with interrupt.writing():
                        written, failures = _write(conn, account, batch, options)
                        hydrated, failed = hydrated + written, failed + failures
                        on_batch(hydrated, failed)
                        conn.commit()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return hydrated, failed


def _queue(conn: Connection, account: str) -> Iterator[list[tuple[str, int]]]:
    """Chunks of (id, attempts) due for hydration, newest first; each chunk is read after the last is written."""
    while True:
        now = _utcnow()
        chunk = conn.execute(
            select(transcripts.c.id, transcripts.c.hydrate_attempts)
            .where(
                transcripts.c.account == account,
                NEEDS_DETAILS,
                (transcripts.c.hydrate_after.is_(None)) | (transcripts.c.hydrate_after <= now),
            )
            .order_by(transcripts.c.created.desc())
            .limit(CHUNK)
        ).all()
        conn.rollback()  # end the read transaction: writers (and SQLite's WAL) are not held up
        if not chunk:
            return
        yield [tuple(row) for row in chunk]


def _fetch(client: ApiClient, transcript_id: str, attempts: int) -> _Fetched:
    try:
        return _Fetched(transcript_id, attempts, body=client.get_transcript(transcript_id))
    except AuthError:
        raise  # the key itself is refused: no other fetch can succeed either
    except EtlError as exc:
        return _Fetched(transcript_id, attempts, error=str(exc))


def _batches(futures) -> Iterator[list[_Fetched]]:
    batch: list[_Fetched] = []
    for future in futures:
        batch.append(future.result())
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(conn: Connection, account: str, batch: list[_Fetched], options: HydrateOptions) -> tuple[int, int]:
    now = _utcnow()
    seq = next_change_seq(conn)
    done = [fetched for fetched in batch if fetched.body is not None]
    failed = [fetched for fetched in batch if fetched.body is None]
    row = and_(transcripts.c.account == account, transcripts.c.id == bindparam("b_id"), transcripts.c.deleted_at.is_(None))
    if done:
        # Bound names must differ from column names in an UPDATE's SET: hence the v_ prefix.
        contents = {f.transcript_id: None if _deleted(f.body) else f.body for f in done}
        details = [
            {"hydrated_at": now, "change_seq": seq, **_details(f.body), **derive.columns(contents[f.transcript_id], now)}
            for f in done
        ]
        conn.execute(
            update(transcripts).where(row).values({name: bindparam(f"v_{name}") for name in details[0]}),
            [{"b_id": f.transcript_id, **{f"v_{k}": v for k, v in d.items()}} for f, d in zip(done, details)],
        )
        ids = [f.transcript_id for f in done]
        if options.store_words:
            _replace(conn, transcript_words, account, ids, [w for f in done for w in _words(account, f)])
        if options.store_bodies:
            bodies = [{"account": account, "transcript_id": f.transcript_id, "body": f.body} for f in done if not _deleted(f.body)]
            _replace(conn, transcript_bodies, account, ids, bodies)
        options.deriver.replace(conn, account, contents)
    if failed:
        for fetched in failed:
            log.warning("transcript %s: details not fetched: %s", fetched.transcript_id, fetched.error)
        conn.execute(
            update(transcripts).where(row).values(
                hydrate_attempts=bindparam("v_attempts"), hydrate_after=bindparam("v_after"), hydrate_error=bindparam("v_error")
            ),
            [
                {"b_id": f.transcript_id, "v_attempts": f.attempts + 1, "v_after": now + _retry_delay(f.attempts), "v_error": f.error}
                for f in failed
            ],
        )
    return len(done), len(failed)


def _details(body: dict[str, Any]) -> dict[str, Any]:
    """The typed columns; a deleted transcript keeps none of its content."""
    if _deleted(body):
        return {name: None for name in DETAIL_COLUMNS} | {"hydrate_error": None}
    return {
        "text": _typed(body, "text", str),
        "audio_duration": _number(body.get("audio_duration")),
        "confidence": _number(body.get("confidence")),
        "language_code": _typed(body, "language_code", str),
        "speech_model": _typed(body, "speech_model", str),
        "speech_models": _typed(body, "speech_models", list),
        "speech_model_used": _typed(body, "speech_model_used", str),
        "hydrate_error": None,
    }


def _words(account: str, fetched: _Fetched) -> list[dict[str, Any]]:
    words = fetched.body.get("words")
    if _deleted(fetched.body) or not isinstance(words, list):
        return []
    return [
        {
            "account": account,
            "transcript_id": fetched.transcript_id,
            "position": position,
            "text": _typed(word, "text", str),
            "start_ms": _integer(word.get("start")),
            "end_ms": _integer(word.get("end")),
            "confidence": _number(word.get("confidence")),
            "speaker": None if word.get("speaker") is None else str(word["speaker"]),
            "channel": None if word.get("channel") is None else str(word["channel"]),
        }
        for position, word in enumerate(words)
        if isinstance(word, dict)
    ]


def _replace(conn: Connection, table, account: str, ids: list[str], rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(table).where(table.c.account == account, table.c.transcript_id.in_(ids)))
    if rows:
        conn.execute(insert(table), rows)


def _deleted(body: dict[str, Any]) -> bool:
    return body.get("audio_url") == DELETED_AUDIO_URL or body.get("text") == DELETED_TEXT


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_MAX, RETRY_BASE * 2**attempts)


def _typed(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    return value if isinstance(value, kind) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)

