"""Ctrl-C and SIGTERM end a command with its one line and status 130, at any instant, and a run between
database writes, never inside one.

A KeyboardInterrupt raised in the middle of a statement or a commit leaves the connection in a state
SQLAlchemy can only throw away, holding SQLite's write lock until the process exits: the run could then
not even record that it stopped. So the handler raises at once while the run waits on the network, and
only after the write in progress while one is.

The handler is installed before anything heavy is imported (etl.main), since importing takes seconds on a
loaded machine. A signal before the command's body runs ends the process at once: nothing was written yet.
Once a signal has stopped the command, or the command has ended, further signals are ignored: the stop
records the run and writes its metrics whatever else arrives (SIGKILL still ends it at once).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # the handler is installed before SQLAlchemy is imported: see the module's docstring
    from sqlalchemy import Connection

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
STARTING_LINE = "aai-etl: error: interrupted while starting; nothing was written\n"

_writing = 0
_pending = False
_installed = False  # only in the aai-etl process: a program calling the CLI keeps its own handlers
_phase = "starting"  # then "running" while a command's body runs, "stopping" once its end is decided


def install() -> None:
    """Route SIGINT and SIGTERM (systemd stop, Kubernetes eviction) through the handler below."""
    global _installed
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _installed = True


def running() -> None:
    """A command's body begins: a signal now raises KeyboardInterrupt, which the CLI turns into its line."""
    global _phase
    _phase = "running"


def stopping() -> None:
    """The command's end is decided: later signals change nothing."""
    global _phase
    _phase = "stopping"
    if _installed:
        # Ignored, not handled: Python puts the default action (death by the signal) back for handled
        # signals while it shuts down, but leaves ignored ones alone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def writing() -> Iterator[None]:
    """A stretch of database work that a signal must not cut: it takes effect when the stretch ends."""
    global _writing, _pending
    _writing += 1
    try:
        yield
    finally:
        _writing -= 1
        if not _writing and _pending:
            _pending = False
            _stop()


def _stop() -> NoReturn:
    stopping()
    raise KeyboardInterrupt


def _on_signal(signum: int, frame: object) -> None:
    global _pending
    if _phase == "starting":
        try:
            os.write(2, STARTING_LINE.encode())
        except OSError:
            pass  # stderr closed: the status alone tells
        os._exit(INTERRUPTED)  # nothing is open or written yet: no cleanup to wait for
    if _phase == "stopping":
        return
    if _writing:
        _pending = True
        return
    _stop()


@contextmanager
def committed(conn: Connection) -> Iterator[None]:
    """Database work that commits as one transaction, which a signal must not cut: the commit ends it."""
    with writing():
        yield
        conn.commit()
