"""Transcript details: every final transcript fetched once with GET /v2/transcript/{id}, concurrently.

Worker threads only fetch; this thread writes, a batch per transaction. The queue is the table itself
(final, not deleted, not yet hydrated, not backing off), so an interrupted run resumes where its last
batch committed, and a transcript whose fetch keeps failing waits longer each time without holding up
the others. A body that is not final yet (the details lag the list) counts as a failed fetch.

With the body come its words, when store_words asks for them. A completed transcript also brings the
extra details (sentences, paragraphs, subtitles) that extra_details names, one request each. The audio
intelligence tables are derived from the body in the same transaction (etl.details.derive).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update

from etl.api.client import TEXT_PARTS, ApiClient
from etl.details import derive
from etl.details import values as readers
from etl.errors import AuthError, EtlError, RateLimited, RetriesExhausted
from etl.model.items import DELETED_AUDIO_URL, FINAL_STATUSES, as_stored
from etl.model.storable import escape, unescape
from etl.store import interrupt
from etl.store.changes import next_change_seq
from etl.store.engine import store_or_refuse
from etl.store.schema import DETAIL_COLUMNS, EXTRA_DETAIL_TABLES, NEEDS_DETAILS, transcript_bodies, transcript_subtitles, transcript_words, transcripts

log = logging.getLogger(__name__)

BATCH = 50  # rows a transaction: small enough to lose little to a kill, large enough to batch well
CHUNK = 1000  # ids read from the queue at a time: memory stays flat however large the backlog
RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(days=1)
# Fetches in a row that used up their retries: then the API or the network is down, not those transcripts.
OUTAGE = 4


@dataclass
class HydrateOptions:
    workers: int = 64  # the bound on fetches in flight; how many are is the budget's rate times the latency
    store_words: bool = False
    store_bodies: bool = True
    keep_presigned_credentials: bool = False
    deriver: derive.Deriver = field(default_factory=derive.Deriver)  # fills the audio intelligence tables
    extra_details: tuple[str, ...] = ()  # more of each completed transcript, one request each (etl.config)


@dataclass
class _Fetched:
    transcript_id: str
    attempts: int
    body: dict[str, Any] | None = None
    parts: dict[str, Any] = field(default_factory=dict)  # its extra details, by name, as stored
    error: str | None = None
    exhausted: RetriesExhausted | None = None  # the error, when the fetch used up its retries

    @property
    def rate_limited(self) -> bool:
        """The fetch used up its retries on 429s alone: the transcript is not at fault, the pace was."""
        return isinstance(self.exhausted, RateLimited)

    @property
    def details(self) -> dict[str, Any]:
        """The body of a fetch that worked: only those reach the writers."""
        if self.body is None:
            raise ValueError(f"transcript {self.transcript_id} has no fetched body")
        return self.body


def hydrate(
    conn: Connection,
    client: ApiClient,
    account: str,
    options: HydrateOptions,
    on_batch: Callable[[int, int], None] = lambda hydrated, failed: None,
) -> tuple[int, int]:
    """Fetch the details of every final transcript still without them; return (hydrated, failed).

    `on_batch` runs inside each batch's transaction, before its commit (or commits it itself)."""
    hydrated = failed = 0
    fetchers: _Fetchers | None = None  # started with the first chunk: an idle run starts no threads
    try:
        for chunk in _queue(conn, account):
            fetchers = fetchers or _Fetchers(client, options)
            for batch in _batches(_unless_down(fetchers.fetch(chunk))):
                with interrupt.writing():
                    written, failures = _write(conn, account, batch, options)
                    hydrated, failed = hydrated + written, failed + failures
                    on_batch(hydrated, failed)
                    conn.commit()
    finally:
        if fetchers is not None:
            fetchers.close()
        options.deriver.tell()  # these bodies were just stored: each kind of trouble is said now, once
    return hydrated, failed


def hydration_backlog(conn: Connection, account: str) -> int:
    """How many transcripts hydration would fetch now: the total its progress counts towards."""
    count = conn.execute(select(func.count()).where(_due(account, _utcnow()))).scalar_one()
    conn.rollback()  # end the read transaction, as _queue does
    return count


def _due(account: str, now: datetime):
    return and_(
        transcripts.c.account == account,
        NEEDS_DETAILS,
        (transcripts.c.hydrate_after.is_(None)) | (transcripts.c.hydrate_after <= now),
    )


class _Fetchers:
    """Threads that fetch details, handing back each result as it completes.

    Daemon threads, not an executor: an executor's threads are joined when the process exits, so Ctrl-C or
    SIGTERM would wait for every fetch in flight (each up to request_deadline) instead of ending the run
    at once. Closing stops the threads taking more work."""

    def __init__(self, client: ApiClient, options: HydrateOptions) -> None:
        self._client = client
        self._workers = options.workers
        self._keep_presigned_credentials = options.keep_presigned_credentials
        self._extra_details = options.extra_details
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.Queue = queue.Queue()  # Queue, not SimpleQueue: its wait gives way to a signal
        self._closed = threading.Event()
        for number in range(self._workers):
            threading.Thread(target=self._run, name=f"hydrate-{number}", daemon=True).start()

    def fetch(self, chunk: list[tuple[str, int]]) -> Iterator[_Fetched]:
        for job in chunk:
            self._todo.put(job)
        for _ in chunk:
            outcome = self._done.get()
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome

    def close(self) -> None:
        self._closed.set()
        for _ in range(self._workers):
            self._todo.put(None)

    def _run(self) -> None:
        while (job := self._todo.get()) is not None and not self._closed.is_set():
            transcript_id, attempts = job
            try:
                self._done.put(_fetch(self._client, transcript_id, attempts, self._keep_presigned_credentials, self._extra_details))
            except BaseException as exc:  # raised in the writing thread, where it asks for the result
                self._done.put(exc)


def _queue(conn: Connection, account: str) -> Iterator[list[tuple[str, int]]]:
    """Chunks of (id, attempts) due for hydration, newest first; each chunk is read after the last is written."""
    while True:
        chunk = conn.execute(
            select(transcripts.c.id, transcripts.c.hydrate_attempts)
            .where(_due(account, _utcnow()))
            .order_by(transcripts.c.created.desc())
            .limit(CHUNK)
        ).all()
        conn.rollback()  # end the read transaction: writers (and SQLite's WAL) are not held up
        if not chunk:
            return
        yield [tuple(row) for row in chunk]


def _fetch(
    client: ApiClient, transcript_id: str, attempts: int, keep_presigned_credentials: bool, extra_details: tuple[str, ...]
) -> _Fetched:
    """The body and, of a completed transcript, its `extra_details`, as stored (etl.model.storable,
    etl.model.credentials); `transcript_id` is the stored id, the API is asked for its own. Any part that
    fails fails the fetch."""
    part = None  # the extra detail being fetched: named when it fails
    try:
        body = client.get_transcript(unescape(transcript_id))
        if body.get("status") not in FINAL_STATUSES:
            # The details lag the list, which showed it final: they are not yet its details.
            said = escape(client.redact(f"{body.get('status')!r:.100}"))
            return _Fetched(transcript_id, attempts, error=f"the API's details say status {said} while the list says it is final")
        body, _ = as_stored(body, redact=not keep_presigned_credentials)
        parts = {}
        for part in extra_details if body.get("status") == "completed" and not _deleted(body) else ():
            parts[part], _ = as_stored(client.get_transcript_part(unescape(transcript_id), part), redact=False)
        return _Fetched(transcript_id, attempts, body=body, parts=parts)
    except AuthError:
        raise  # the key itself is refused: no other fetch can succeed either
    except RecursionError:  # read, but too deep for the walks that make it storable
        return _Fetched(transcript_id, attempts, error=f"its {part or 'body'} nests its values too deeply to store")
    except ValueError:
        return _Fetched(transcript_id, attempts, error=f"its {part or 'body'} holds NaN or Infinity, which are not JSON")
    except RetriesExhausted as exc:
        return _Fetched(transcript_id, attempts, error=_of(part, escape(client.redact(str(exc)))), exhausted=exc)
    except EtlError as exc:
        return _Fetched(transcript_id, attempts, error=_of(part, escape(client.redact(str(exc)))))


def _of(part: str | None, error: str) -> str:
    """A failed fetch's error, naming the extra detail that failed it."""
    return error if part is None else f"its {part}: {error}"


def _unless_down(results: Iterator[_Fetched]) -> Iterator[_Fetched]:
    """The fetches of one chunk as they complete, until OUTAGE in a row have used up their retries: the API or
    the network is down, and the run ends on that error rather than count a failed attempt against, and push
    back the next fetch of, every transcript in the backlog. A fetch that used up its retries is held until one
    that did not shows the API answering; the ones held when the run ends are not written, their attempts not
    counted. A fetch that used up its retries on 429s alone is never written: its transcript stays due, for the
    next chunk at the pace the client has learnt since, or the next run. A chunk that wrote nothing else ends
    the run on its error, rather than ask for the same transcripts again and again."""
    held: list[_Fetched] = []
    refused: RetriesExhausted | None = None  # of the last fetch that used up its retries on 429s alone
    written = False
    for fetched in results:
        if fetched.rate_limited:
            refused = fetched.exhausted
            continue
        written = True
        if fetched.exhausted is None:
            yield from held
            held.clear()
            yield fetched
            continue
        held.append(fetched)
        if len(held) >= OUTAGE:
            raise fetched.exhausted
    if refused is not None and not written:
        raise refused
    yield from held


def _batches(results: Iterator[_Fetched]) -> Iterator[list[_Fetched]]:
    batch: list[_Fetched] = []
    for fetched in results:
        batch.append(fetched)
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
    if done:
        refused = _store_each(conn, account, done, options, now, seq)
        refused_ids = {fetched.transcript_id for fetched in refused}
        done = [fetched for fetched in done if fetched.transcript_id not in refused_ids]
        failed += refused
    if failed:
        row = and_(transcripts.c.account == account, transcripts.c.id == bindparam("b_id"), transcripts.c.deleted_at.is_(None))
        for fetched in failed:
            log.warning("transcript %s: details not fetched: %s", fetched.transcript_id, fetched.error)
        conn.execute(
            # A new change_seq: these columns travel in the change feed too.
            update(transcripts).where(row).values(
                hydrate_attempts=bindparam("v_attempts"), hydrate_after=bindparam("v_after"), hydrate_error=bindparam("v_error"),
                change_seq=seq,
            ),
            [
                {"b_id": f.transcript_id, "v_attempts": f.attempts + 1, "v_after": now + _retry_delay(f.attempts), "v_error": f.error}
                for f in failed
            ],
        )
    return len(done), len(failed)


def _store_each(
    conn: Connection, account: str, done: list[_Fetched], options: HydrateOptions, now: datetime, seq: int
) -> list[_Fetched]:
    """Store the batch's details; if the database refuses a value, transcript by transcript, so that a
    refused one (returned as a failure, retried later) never holds up the others."""
    refused = store_or_refuse(conn, done, lambda part: _store(conn, account, part, options, now, seq))
    return [replace(fetched, body=None, error=f"the database refused its details: {reason}") for fetched, reason in refused]


def _store(conn: Connection, account: str, done: list[_Fetched], options: HydrateOptions, now: datetime, seq: int) -> None:
    row = and_(transcripts.c.account == account, transcripts.c.id == bindparam("b_id"), transcripts.c.deleted_at.is_(None))
    # Bound names must differ from column names in an UPDATE's SET: hence the v_ prefix.
    contents = {f.transcript_id: None if _deleted(f.details) else f.details for f in done}
    details = [
        {"hydrated_at": now, "change_seq": seq, **_details(f), **derive.columns(contents[f.transcript_id], now)}
        for f in done
    ]
    conn.execute(
        update(transcripts).where(row).values({name: bindparam(f"v_{name}") for name in details[0]}),
        [{"b_id": f.transcript_id, **{f"v_{k}": v for k, v in d.items()}} for f, d in zip(done, details, strict=True)],
    )
    ids = [f.transcript_id for f in done]
    if options.store_words:
        _replace(conn, transcript_words, account, ids, [w for f in done for w in _words(account, f)])
    if options.store_bodies:
        bodies = [{"account": account, "transcript_id": f.transcript_id, "body": f.details} for f in done if not _deleted(f.details)]
        _replace(conn, transcript_bodies, account, ids, bodies)
    options.deriver.replace(conn, account, contents)
    if options.extra_details:
        _replace_extra_details(conn, account, done, options.extra_details)


def _details(fetched: _Fetched) -> dict[str, Any]:
    """The typed columns; a deleted transcript keeps none of its content."""
    body = fetched.details
    if _deleted(body):
        return {name: None for name in DETAIL_COLUMNS} | {"hydrate_error": None}
    return {
        "text": readers.text(body.get("text")),
        "audio_duration": _number(fetched, "audio_duration"),
        "confidence": _number(fetched, "confidence"),
        "language_code": readers.text(body.get("language_code")),
        "speech_model": readers.text(body.get("speech_model")),
        "speech_models": body.get("speech_models") if isinstance(body.get("speech_models"), list) else None,
        "speech_model_used": readers.text(body.get("speech_model_used")),
        "hydrate_error": None,
    }


def _number(fetched: _Fetched, name: str) -> float | None:
    """A number column: NULL, with a warning, for a value present that a float cannot hold (10**400, or text)."""
    value = fetched.details.get(name)
    read = readers.number(value)
    if read is None and value is not None:
        log.warning("transcript %s: %s %.60s is not a number a column holds: stored as NULL", fetched.transcript_id, name, value)
    return read


def _words(account: str, fetched: _Fetched) -> list[dict[str, Any]]:
    words = fetched.details.get("words")
    if _deleted(fetched.details) or not isinstance(words, list):
        return []
    return _timed(account, fetched.transcript_id, words)


def _timed(account: str, transcript_id: str, elements: list[Any]) -> list[dict[str, Any]]:
    """Rows of words, sentences or paragraphs: each element's text, times (ms), confidence, speaker and channel."""
    return [
        {
            "account": account,
            "transcript_id": transcript_id,
            "position": position,
            "text": readers.text(element.get("text")),
            "start_ms": readers.integer(element.get("start")),
            "end_ms": readers.integer(element.get("end")),
            "confidence": readers.number(element.get("confidence")),
            "speaker": readers.label(element.get("speaker")),
            "channel": readers.label(element.get("channel")),
        }
        for position, element in enumerate(elements)
        if isinstance(element, dict)
    ]


def _replace_extra_details(conn: Connection, account: str, done: list[_Fetched], kinds: tuple[str, ...]) -> None:
    """Each transcript's sentences, paragraphs and subtitles of the kinds asked for, in place of those it had."""
    ids = [f.transcript_id for f in done]
    for kind in kinds:
        if kind not in TEXT_PARTS:  # the client checked that the response holds a list of them
            rows = [row for f in done if kind in f.parts for row in _timed(account, f.transcript_id, f.parts[kind][kind])]
            _replace(conn, EXTRA_DETAIL_TABLES[kind], account, ids, rows)
    formats = [kind for kind in kinds if kind in TEXT_PARTS]
    if formats:
        table = transcript_subtitles
        conn.execute(delete(table).where(table.c.account == account, table.c.transcript_id.in_(ids), table.c.format.in_(formats)))
        subtitles = [
            {"account": account, "transcript_id": f.transcript_id, "format": kind, "text": f.parts[kind]}
            for f in done for kind in formats if kind in f.parts
        ]
        if subtitles:
            conn.execute(insert(table), subtitles)


def _replace(conn: Connection, table, account: str, ids: list[str], rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(table).where(table.c.account == account, table.c.transcript_id.in_(ids)))
    if rows:
        conn.execute(insert(table), rows)


def _deleted(body: dict[str, Any]) -> bool:
    """The API's one signal of a deletion; a body whose text reads "Deleted by user." is a transcript like any other."""
    return body.get("audio_url") == DELETED_AUDIO_URL


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_MAX, RETRY_BASE * 2**attempts)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)

