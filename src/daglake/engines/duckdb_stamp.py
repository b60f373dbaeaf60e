"""What an unchanged run needs from the DuckDB warehouse without opening it.

When a run that opened the warehouse for writing closes it (the last user in the process, its
changes checkpointed into the file), it records the file's identity (size, modification and
change times, inode), the tables it holds, and the versions of the source tables it read when
nothing was written since. The next run that finds the file exactly so (and no write-ahead
log beside it: uncheckpointed writes of another process) takes those from the record and opens
the file only when a task has to run: an unchanged run imports and opens no DuckDB at all.
Anything that writes the file changes its times; then the file is opened as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daglake.sql.cache import atomic_write_text

STAMP = Path(".daglake") / "duckdb-warehouse.json"
FORMAT = 1


@dataclass(frozen=True)
class Stamp:
    tables: frozenset[str]
    versions: dict[str, str | None] | None  # None: unknown (something was written after reading them)


def _identity(path: Path) -> list[Any] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return [os.path.realpath(path), found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]


def read(root: Path, path: Path, options: dict[str, Any]) -> Stamp | None:
    """The record of ``path`` when the file is exactly as it was recorded, with the same
    database settings; None otherwise."""
    if Path(f"{path}.wal").exists():
        return None
    try:
        data = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("options") != options:
        return None
    if data.get("file") != _identity(path):
        return None
    return Stamp(frozenset(data.get("tables") or ()), data.get("versions"))


def write(root: Path, path: Path, options: dict[str, Any], tables: set[str], versions: dict[str, str | None] | None) -> None:
    """Record ``path`` as it is now (call once the database is closed)."""
    identity = _identity(path)
    record = {"format": FORMAT, "file": identity, "options": options, "tables": sorted(tables), "versions": versions}
    try:
        atomic_write_text(root / STAMP, json.dumps(record, default=str))
    except OSError:
        return  # only the next run's start is slower
