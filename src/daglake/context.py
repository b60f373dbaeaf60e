"""What a Python task receives: the engine handle, the run's date and id, lake paths, a logger,
and ways to read tables and write outputs that daglake publishes atomically."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.lake.tables import ZONES

if TYPE_CHECKING:
    from daglake.engines.base import Output, PythonSession


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
    """Passed as the only argument to a ``@daglake.task`` function.

    ``sql``, ``fetch``, ``temp_table``, ``table`` and ``write`` take SQL in the project's
    dialect and work on every engine; ``native`` is the engine's own handle for anything else."""

    task: str
    outputs: list[str]
    run_id: str
    logical_date: dt.date
    project_root: Path
    lake: LakePaths
    log: logging.Logger
    session: PythonSession = field(repr=False)
    targets: dict[str, Output] = field(repr=False)  # where each output goes
    dialect: str = "bigquery"  # the project's: what ``sql`` and ``write`` are given
    engine_dialect: str = "duckdb"
    metrics: dict[str, Any] = field(default_factory=dict)
    full_refresh: bool = False  # ``daglake run --full-refresh``: rebuild from scratch, not incrementally
    written: set[str] = field(default_factory=set, repr=False)  # outputs ``write`` has written

    @property
    def ds(self) -> str:
        """The logical date as ``YYYY-MM-DD``."""
        return self.logical_date.isoformat()

    @property
    def native(self) -> Any:
        """The engine's handle: a DuckDB connection inside the task's transaction, a BigQuery
        client, a SparkSession."""
        return self.session.native

    @property
    def con(self) -> Any:
        """``native`` under its first name (a DuckDB connection)."""
        return self.session.native

    def sql(self, query: str, params: Any = None) -> Any:
        """Run SQL written in the project's dialect on this task's engine; the engine's result
        (a relation on DuckDB). ``params``: values for ``?``/``$name`` placeholders, run as
        given on the engine."""
        if params is not None:
            return self.session.query(query, params)
        return self.session.query(self._translated(query))

    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        """The rows of a query in the project's dialect as Python tuples, on every engine (a
        count, a few keys): ``ctx.fetch("SELECT count(*) FROM raw.orders")[0][0]``."""
        return self.session.fetch(self._translated(query))

    def temp_table(self, name: str, query: str) -> int:
        """Keep the rows of ``query`` (the project's dialect) as ``name``, a table that this
        task's later ``sql``, ``fetch``, ``table`` and ``write`` read by that bare name and no
        other task sees (tasks run in parallel); dropped when the task ends. Rows kept.

        Computed once, at this call (a DuckDB temporary table; cached rows on Spark), so a
        query reading it several times does not recompute it."""
        if not name.isidentifier():
            raise ValueError(f"ctx.temp_table({name!r}): a temporary table's name is one bare identifier")
        return self.session.temp_table(name, self._translated(query))

    def table(self, name: str) -> Any:
        """A table or lake table as the engine's lazy result (``ctx.table("raw.orders").df()``)."""
        from daglake.sql.translate import select_all

        return self.session.query(select_all(name, self.engine_dialect))

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
        """Materialize ``data`` (Arrow, pandas, polars, the engine's relation or a SQL string in
        the project's dialect) into one of this task's outputs; lake tables are published when
        the task succeeds.

        ``mode``: ``replace`` the whole table, or ``overwrite_partitions`` (the default) to
        replace only the partitions present in ``data``. ``con``: run the SQL on this native
        handle instead (a ``ctx.native.cursor()`` holding temporary tables, SQL in the engine's
        dialect); lake tables only, as a warehouse table is written inside the task's
        transaction. ``append``: add to what this task already wrote to the table (write in
        batches, publish once); otherwise writing a table again replaces the earlier write.
        """
        if table not in self.outputs:
            raise ValueError(f"{table} is not an output of task {self.task} (outputs: {', '.join(self.outputs)})")
        if mode not in ("replace", "overwrite_partitions"):
            raise ValueError("mode must be 'replace' or 'overwrite_partitions'")
        if not isinstance(data, str):
            from daglake.pytasks import TABLE_KINDS, is_table

            if not is_table(data):
                raise TypeError(f"ctx.write({table!r}, {type(data).__name__}): write {TABLE_KINDS} or a SQL string")
        output = self.targets[table]
        if partition_by is not None:
            output = replace(output, partition_by=tuple(partition_by))
        if isinstance(data, str) and con is None:
            data = self._translated(data)
        rows = self.session.write(output, data, replace=mode == "replace", native=con, append=append)
        self.written.add(table)
        return rows

    def metric(self, name: str, value: Any) -> None:
        """Record a number about this attempt (e.g. records quarantined); stored with the run."""
        self.metrics[name] = value

    def _translated(self, query: str) -> str:
        if self.dialect == self.engine_dialect:
            return query
        from daglake.sql.translate import translate_query

        return translate_query(query, self.dialect, self.engine_dialect)
