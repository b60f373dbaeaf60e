"""Keeping sqlglot quiet and quick: it logs what it cannot parse or translate (with no handler
configured Python prints that to stderr, in the middle of the CLI's output), and the
millions of nodes of a big file's trees make Python's cyclic garbage collector walk them
again and again while they are built."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Catch(logging.Filter):
    """Stops this thread's records at the ``sqlglot`` logger, keeping the warnings (its debug
    notes, e.g. about index offsets, say nothing about the user's SQL)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        return False


@contextmanager
def sqlglot_warnings() -> Iterator[list[str]]:
    """The warnings sqlglot logs in this thread inside the ``with``, instead of printed."""
    logger = logging.getLogger("sqlglot")
    catch = _Catch()
    logger.addFilter(catch)
    try:
        yield catch.messages
    finally:
        logger.removeFilter(catch)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the ``with`` (parsing an 8 MB file spent a third
    of its time there); what became garbage is collected afterwards as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
