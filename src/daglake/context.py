"""What a Python task receives: the engine handle, the run's date and id, lake paths, a logger,
and ways to read tables and write outputs that daglake publishes atomically."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daglake.lake.tables import ZONES, quote_identifier


@dataclass(frozen=True)
class LakePaths:
    """Folders of the lake's zones; ``lake.zone("landing") / "chat"`` and so on."""

    root: Path

    def zone(self, name: str) -> Path:
        if name not in (*ZONES, "_catalog"):
            raise ValueError(f"unknown lake zone {name!r} (zones: {', '.join(ZONES)})")
        return self.root / name

    @property
    def landing(self) -> Path:
        return self.zone("landing")

    @property
    def quarantine(self) -> Path:
        return self.zone("quarantine")


@dataclass
class TaskContext:
    """Passed as the only argument to a ``@daglake.task`` function."""

    task: str
    outputs: list[str]
    run_id: str
    logical_date: dt.date
    project_root: Path
    lake: LakePaths
    con: Any  # the engine's native handle: a DuckDB connection inside the task's transaction
    log: logging.Logger
    _write: Callable[..., int | None] = field(repr=False)  # (table, data, partition_by, mode, con, append)
    metrics: dict[str, Any] = field(default_factory=dict)
    full_refresh: bool = False  # ``daglake run --full-refresh``: rebuild from scratch, not incrementally

    @property
    def ds(self) -> str:
        """The logical date as ``YYYY-MM-DD``."""
        return self.logical_date.isoformat()

    def sql(self, query: str, params: Any = None) -> Any:
        """Run SQL in the engine's dialect on this task's connection and return a relation."""
        if params is None:
            return self.con.sql(query)
        return self.con.execute(query, params)

    def table(self, name: str) -> Any:
        """A table or lake table as a lazy relation (``ctx.table("raw.orders").df()``)."""
        quoted = ".".join(quote_identifier(part) for part in name.split("."))
        return self.con.sql(f"SELECT * FROM {quoted}")

    def write(
        self,
        table: str,
        data: Any,
        *,
        partition_by: list[str] | None = None,
        mode: str = "overwrite_partitions",
        con: Any = None,
        append: bool = False,
    ) -> int | None:
        """Materialize ``data`` (Arrow, pandas, polars, a DuckDB relation or a SQL string) into
        one of this task's outputs; lake tables are published when the task succeeds.

        ``mode``: ``replace`` the whole table, or ``overwrite_partitions`` (the default) to
        replace only the partitions present in ``data``. ``con``: run the SQL on this
        connection instead (a ``ctx.con.cursor()`` holding temporary tables); lake tables only,
        as a warehouse table must be written inside the task's transaction. ``append``: add
        to what this task already wrote to the table (write in batches, publish once);
        otherwise writing a table again replaces the earlier write.
        """
        if table not in self.outputs:
            raise ValueError(f"{table} is not an output of task {self.task} (outputs: {', '.join(self.outputs)})")
        if mode not in ("replace", "overwrite_partitions"):
            raise ValueError("mode must be 'replace' or 'overwrite_partitions'")
        return self._write(table, data, partition_by, mode, con, append)

    def metric(self, name: str, value: Any) -> None:
        """Record a number about this attempt (e.g. records quarantined); stored with the run."""
        self.metrics[name] = value
