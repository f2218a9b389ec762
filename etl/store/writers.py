"""A small pool of writer connections: jobs stored at the same time, each on its own connection.

Each writer is a thread with its own connection and its own queue. It runs the jobs handed to it in the
order they came, and each job commits its own transaction. Jobs with the same key always go to the same
writer, so they commit in order: a day's pages, each committed with the day's position, never
overtake one another. The caller hands out jobs and collects what each committed job returned.
Writers run no signal handler. Ctrl-C reaches the caller, and closing the pool lets each writer finish
the job it is in the middle of.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from etl.store.engine import connect

_QUEUED = 4  # jobs waiting per writer: enough to keep it busy, few enough to keep memory flat
_STOP = object()


class WriterPool:
    """`count` writers on connections of `engine`, numbered from 1. `work(conn, writer, job)` stores one job
    and commits it; the caller's thread gets what it returned through `on_result`, in commit order for
    each writer."""

    def __init__(
        self, engine: Engine, count: int, work: Callable[[Connection, int, Any], Any], on_result: Callable[[Any], None],
    ) -> None:
        self._work, self._on_result = work, on_result
        self._inboxes: list[queue.Queue] = [queue.Queue(maxsize=_QUEUED) for _ in range(count)]
        self._done: queue.SimpleQueue = queue.SimpleQueue()  # (result, None) or (None, error)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._connections = [connect(engine) for _ in range(count)]
        self._threads = [
            threading.Thread(target=self._serve, args=(number,), name=f"aai-etl-writer-{number + 1}", daemon=True)
            for number in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: int, job: Any) -> None:
        """Hand the job to the writer of `key`, waiting while its queue is full. Raises the first error of
        any writer, once every result committed before it has been handed on."""
        inbox = self._inboxes[key % len(self._inboxes)]
        while True:
            self._collect()
            if self._error is not None:
                raise self._error
            try:
                inbox.put(job, timeout=0.05)
                return
            except queue.Full:
                continue

    def close(self, finish: bool) -> BaseException | None:
        """Stop the writers: `finish`, after every job handed out; otherwise after the job each is in. Hands
        on every result not yet handed on, closes the connections, and returns the first error of any
        writer (None: none, or already raised by `submit`)."""
        raised = self._error
        if not finish:
            self._stop.set()
        for inbox in self._inboxes:
            inbox.put(_STOP)  # there is room soon: each writer takes every job, stored or not, until this one
        for thread in self._threads:
            thread.join()
        for conn in self._connections:
            conn.close()
        self._collect()
        return None if self._error is raised else self._error

    def _collect(self) -> None:
        while True:
            try:
                result, error = self._done.get_nowait()
            except queue.Empty:
                return
            if error is None:
                self._on_result(result)
            elif self._error is None:
                self._error = error

    def _serve(self, number: int) -> None:
        inbox, conn = self._inboxes[number], self._connections[number]
        failed = False
        while True:
            job = inbox.get()
            if job is _STOP:
                return
            if failed or self._stop.is_set():
                continue  # not stored: the caller is stopping
            try:
                result = self._work(conn, number + 1, job)
            except BaseException as exc:  # handed to the caller, which raises it
                failed = True
                try:
                    conn.rollback()
                except Exception:
                    pass  # the connection itself may be what failed; the error above is the one to report
                self._done.put((None, exc))
            else:
                self._done.put((result, None))
