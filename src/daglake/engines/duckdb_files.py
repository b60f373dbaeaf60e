"""One DuckDB database per warehouse file per process, shared by every user in the process.

DuckDB refuses a second connection to a file with another configuration (read-only next to
read-write) while one is open in the process. ``daglake serve`` runs a project while
appending rows and reading the catalogue, so every connection to a file goes through here:
the first user opens it, later users get cursors on the same database, the last one out
closes it (releasing the file for other processes). A read-write database serves readers too;
a writer arriving while the file is open read-only waits for those readers to finish.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daglake._lazy import lazy_module

if TYPE_CHECKING:
    import duckdb
else:
    duckdb = lazy_module("duckdb")



@dataclass
class _Open:
    connection: duckdb.DuckDBPyConnection
    read_only: bool
    users: int = 0
    joined: int = 0  # users since it was opened


_changed = threading.Condition()
_open: dict[str, _Open] = {}


def connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A cursor on the process's database for ``path``; give it back with :func:`release`.

    Raises ``duckdb.IOException`` when another process holds the file.
    """
    key = os.path.realpath(path)
    with _changed:
        while True:
            entry = _open.get(key)
            if entry is None:
                entry = _Open(duckdb.connect(str(path), read_only=read_only), read_only)
                _open[key] = entry
                break
            if read_only or not entry.read_only:
                break
            _changed.wait()  # read-only users finish within a validation or a listing
        entry.users += 1
        entry.joined += 1
        try:
            return entry.connection.cursor()
        except BaseException:
            _leave(key, entry)
            raise


def release(path: Path, cursor: duckdb.DuckDBPyConnection) -> None:
    """Close ``cursor``; the last user of the file closes the database."""
    key = os.path.realpath(path)
    cursor.close()
    with _changed:
        entry = _open.get(key)
        if entry is not None:
            _leave(key, entry)


def _leave(key: str, entry: _Open) -> None:
    entry.users -= 1
    if entry.users <= 0:
        del _open[key]
        entry.connection.close()
        _changed.notify_all()


def alone(path: Path) -> bool:
    """Whether one user has had ``path`` open since it was opened: nobody else in the process
    can have written it meanwhile."""
    with _changed:
        entry = _open.get(os.path.realpath(path))
        return entry is not None and entry.joined == 1


def is_open(path: Path) -> bool:
    """Whether this process has ``path`` open (tests, and the API's idle checks)."""
    with _changed:
        return os.path.realpath(path) in _open
