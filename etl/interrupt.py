"""Ctrl-C and SIGTERM end a run between database writes, never inside one.

A KeyboardInterrupt raised in the middle of a statement or a commit leaves the connection in a state
SQLAlchemy can only throw away, holding SQLite's write lock until the process exits: the run could then
not even record that it stopped. So the handler raises at once while the run waits on the network, and
only after the write in progress while one is.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_writing = 0
_pending = False


def install() -> None:
    """Route SIGINT and SIGTERM (systemd stop, Kubernetes eviction) through the handler below."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


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
            raise KeyboardInterrupt


def _on_signal(signum: int, frame: object) -> None:
    global _pending
    if _writing:
        _pending = True
        return
    raise KeyboardInterrupt
