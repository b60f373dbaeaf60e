"""The engine boundary: what the runner asks of DuckDB, BigQuery or Spark, and nothing more.

An engine knows nothing of the graph; the runner knows nothing of the engine's client library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from daglake.errors import UsageError
from daglake.sql.compiled import EXECUTE, MATERIALIZE, Statement

__all__ = ["EXECUTE", "MATERIALIZE", "AppendError", "Audit", "Column", "Engine", "Fetch", "Output", "PythonSession", "RecordTyper", "RowWriter", "Statement"]

if TYPE_CHECKING:
    from daglake.engine_settings import EngineSettings
    from daglake.lake.json_schema import RecordSchema
    from daglake.lake.tables import LakeTable


Fetch = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]
# Called with a fetch that sees the task's new, unpublished versions and, per output table,
# the name its new version is read by there; raises AuditFailed to keep the old versions.
Audit = Callable[[Fetch, Mapping[str, str]], None]


@dataclass(frozen=True)
class Output:
    """Where a task's result goes: a warehouse table, or a lake table with its partitioning."""

    table: str
    lake: LakeTable | None = None
    partition_by: tuple[str, ...] = ()


class PythonSession(ABC):
    """What a Python task's context asks of the engine: SQL in the engine's dialect, and writes
    of its outputs. ``native`` is the engine's own handle (``ctx.native``)."""

    native: Any

    @abstractmethod
    def query(self, sql: str, params: Any = None) -> Any:
        """Run ``sql`` (already in the engine's dialect) and return the engine's result."""

    @abstractmethod
    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (in the engine's dialect) as Python tuples."""

    def temp_table(self, name: str, sql: str) -> int:
        """Keep the rows of ``sql`` (in the engine's dialect) as the table ``name`` that this
        session's later SQL reads by that bare name and no other task sees; dropped when the
        task ends. Rows kept."""
        raise UsageError(f"temporary tables in Python tasks are not available on {type(self).__name__}")

    @abstractmethod
    def write(
        self, output: Output, data: Any, *, replace: bool = False, native: Any = None, append: bool = False
    ) -> int | None:
        """Write ``data`` (Arrow, pandas, polars, the engine's relation, or SQL in its dialect)
        to ``output``: ``replace`` the whole table or only the partitions present;
        ``native``: another handle to run the SQL on; ``append``: add to this task's earlier
        write of the table. Rows written when known."""

    def has_table(self, output: Output) -> bool | None:
        """Whether ``output`` exists as this session sees it (its own writes included, however
        made); None when the engine cannot tell without a costly call."""
        return None

    def record_typer(self, schema: RecordSchema) -> RecordTyper:
        """What types JSON deliveries on this engine (the lake's ingestion)."""
        raise UsageError(f"ingesting JSON files into the lake is not available on {type(self).__name__}")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as the engine names it


class AppendError(Exception):
    """An append the engine refused. ``kind``: ``invalid_value`` (a value its column cannot
    take), ``conflict`` (the table kept changing), ``error`` (anything else); ``retry``: worth
    trying again once the table's columns are looked up afresh."""

    def __init__(self, message: str, kind: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.message, self.kind, self.retry = message, kind, retry


class RowWriter(ABC):
    """Rows appended to a dataset's tables (``POST /{table}``), values given as text that the
    engine casts to the column types."""

    @abstractmethod
    def columns(self, schema: str, table: str) -> tuple[str, list[Column]] | None:
        """The table's name as the engine spells it and its columns, matched without case;
        None when there is no such base table."""

    @abstractmethod
    def tables(self, schema: str) -> list[str]:
        """The dataset's base tables."""

    @abstractmethod
    def insert(
        self, schema: str, table: str, columns: list[str], rows: list[dict[str, str]], *, precise: bool
    ) -> list[dict[str, Any]]:
        """Append ``rows`` (values by column) at once, all or none, and return each row as
        stored. ``precise``: take longer to name the column of a bad value. Raises
        :class:`AppendError`."""


class RecordTyper(ABC):
    """An engine typing a delivery's JSON records against a declared schema, a batch at a
    time (``daglake.lake.ingest`` drives it; the quarantine reasons are the same everywhere).
    ``native`` is the handle the accepted and quarantined queries run on."""

    native: Any

    @abstractmethod
    def add_file(self, index: int, path: Path, ingest_date: Any, name: str) -> Iterator[int]:
        """Gather the file's records with their positions; yields the bytes gathered, piece by
        piece, so the caller may type a batch between pieces of a large file."""

    @abstractmethod
    def add_unreadable(self, index: int, ingest_date: Any, name: str, reason: str) -> None:
        """Gather a file that cannot be read at all (a corrupt ``.gz``) as one invalid record
        of position 0 with ``reason`` and no text: it is quarantined whole."""

    @abstractmethod
    def type_batch(self) -> tuple[int, int]:
        """Type what was gathered since the last batch: ``(valid, invalid)`` records."""

    @abstractmethod
    def accepted_sql(self) -> str:
        """The batch's valid records: the typed columns, ingest_date, source_file, source_position."""

    @abstractmethod
    def quarantined_sql(self) -> str:
        """The batch's invalid records: ingest_date, source_file, source_position, reason, record."""

    @abstractmethod
    def empty_sql(self) -> str:
        """The accepted table's columns with no rows."""

    @abstractmethod
    def close(self) -> None:
        """Drop what was gathered."""


class Engine(ABC):
    name: ClassVar[str]
    dialect: ClassVar[str]  # sqlglot dialect that tasks are translated into

    def __init__(self, settings: EngineSettings, root: Path, *, read_only: bool = False, lazy: bool = False) -> None:
        """``lazy``: the caller copes with the warehouse being opened at first use (a run:
        an unchanged one may never need it); an engine that can defer opening reads it in its
        own constructor (DuckDB), the others ignore it."""
        self.settings = settings
        self.root = root
        self.read_only = read_only

    def open(self) -> None:  # noqa: B027 (most engines have nothing to open late)
        """Open what ``lazy`` left closed, now (before a task runs); raises as opening does."""

    @classmethod
    def opening_creates_nothing(cls, settings: EngineSettings, root: Path) -> bool:
        """Whether opening for writing now leaves nothing behind that a refused run must not
        (the warehouse exists already): then a run validates on the connection it runs on."""
        return False

    @abstractmethod
    def existing_tables(self) -> set[str]:
        """Every table and view as ``dataset.table`` (lower case)."""

    @abstractmethod
    def create_schemas(self, schemas: set[str]) -> None:
        """Make sure each dataset/schema exists before tasks write into it."""

    @abstractmethod
    def set_variables(self, variables: dict[str, Any]) -> None:
        """Values that SQL reads as ``@name`` (the logical date ``@ds``, ``@run_id``)."""

    @abstractmethod
    def run_statements(
        self,
        statements: list[Statement],
        outputs: dict[str, Output],
        location: str,
        log: Callable[[str], None] | None = None,
        jobs: list[str] | None = None,
        audit: Audit | None = None,
    ) -> int | None:
        """Run a SQL task's statements, each table replaced atomically; return rows written when
        known. ``outputs`` says where each MATERIALIZE target goes (warehouse or lake table);
        ``jobs`` collects the ids of the engine's jobs, where it has them (BigQuery);
        ``audit`` runs on the new versions before any is published: when it raises
        :class:`~daglake.errors.AuditFailed` they are kept as candidates, not published.

        Raises :class:`~daglake.errors.TaskError` with the path and line of the failing statement;
        on failure nothing the statements did is visible.
        """

    @abstractmethod
    def python_session(
        self, outputs: list[Output], location: str, jobs: list[str] | None = None, audit: Audit | None = None
    ) -> AbstractContextManager[PythonSession]:
        """A Python task's hold on the engine for one attempt: what it writes becomes visible
        only when the ``with`` block ends without an error (DuckDB: one transaction; lake
        versions published at its end), after ``audit`` as for :meth:`run_statements`. Engine errors raised inside it come out as
        :class:`~daglake.errors.TaskError`; ``jobs`` collects the ids of the engine's jobs it
        ran, as for :meth:`run_statements`. Calling the task is not the engine's business."""

    def candidate_sql(self, table: str) -> str | None:
        """What reads ``table``'s candidate, the new version its audit refused, in the engine's
        dialect (``daglake show TABLE --candidate``); None when it has none."""
        return None

    def estimate(self, statements: list[Statement], location: str) -> int | None:
        """Bytes the statements would scan, when the engine can say before running (BigQuery's
        dry run); None when it cannot."""
        return None

    def missing_functions(self, names: set[str]) -> set[str]:
        """Those of ``names`` (lower case, dotted as called: ``net.host``) the engine has no
        function for, found without running anything; empty when the engine cannot tell."""
        return set()

    def functions_stamp(self) -> str | None:
        """What ``missing_functions`` depends on (the engine and its release), so a verdict can
        be remembered; None when it must be asked each time."""
        return None

    def source_versions(self, tables: list[str]) -> dict[str, str | None]:
        """A version of each of ``tables`` (``dataset.table``, not built by daglake) that
        changes whenever its content does, found cheaply; None for a table the engine cannot
        tell about (its readers then always run)."""
        return dict.fromkeys(tables)

    def price_per_tib(self) -> float | None:
        """What a TiB scanned costs on this engine, when its queries are priced by bytes."""
        return None

    @abstractmethod
    def attach_lake(self, tables: list[LakeTable]) -> None:
        """Make existing lake tables readable by name (``curated.x``) from SQL."""

    def row_writer(self) -> RowWriter:
        """What appends rows to this engine's tables (the API's ``POST /{table}``)."""
        raise UsageError(f"appending rows is not available on {type(self).__name__}")

    def lake_columns(self, table: LakeTable) -> list[tuple[str, str]]:
        """A lake table's ``(column, type)`` as this engine reads it (partition columns too)."""
        raise UsageError(f"lake tables are not available on {type(self).__name__}")

    def parquet_rows(self, paths: list[Path]) -> list[int]:
        """Rows in each Parquet file of ``paths``, from its footer alone."""
        from daglake.lake.tables import footer_rows

        return footer_rows(paths)

    @abstractmethod
    def table_info(self, names: Collection[str] | None = None) -> dict[str, dict[str, Any] | None]:
        """Every warehouse table and view: ``{"kind", "columns": [{"name", "type"}], "rows"}``
        (rows None for views), in a few queries however many tables there are. Given ``names``,
        an engine whose descriptions cost a call per table describes only those and maps the
        other tables that exist to None."""

    @abstractmethod
    def fetch(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only query and return column names and rows."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the engine is not used afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
