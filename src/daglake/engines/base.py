"""The engine boundary: what the runner asks of DuckDB, BigQuery or Spark, and nothing more.

An engine knows nothing of the graph; the runner knows nothing of the engine's client library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from daglake.sql.compiled import EXECUTE, MATERIALIZE, Statement

__all__ = ["EXECUTE", "MATERIALIZE", "Engine", "Output", "Statement"]

if TYPE_CHECKING:
    from daglake.engine_settings import EngineSettings
    from daglake.lake.tables import LakeTable


@dataclass(frozen=True)
class Output:
    """Where a task's result goes: a warehouse table, or a lake table with its partitioning."""

    table: str
    lake: LakeTable | None = None
    partition_by: tuple[str, ...] = ()


class Engine(ABC):
    name: ClassVar[str]
    dialect: ClassVar[str]  # sqlglot dialect that tasks are translated into

    def __init__(self, settings: EngineSettings, root: Path, *, read_only: bool = False) -> None:
        self.settings = settings
        self.root = root
        self.read_only = read_only

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
    ) -> int | None:
        """Run a SQL task's statements, each table replaced atomically; return rows written when
        known. ``outputs`` says where each MATERIALIZE target goes (warehouse or lake table).

        Raises :class:`~daglake.errors.TaskError` with the path and line of the failing statement;
        on failure nothing the statements did is visible.
        """

    @abstractmethod
    def run_python(
        self,
        function: Callable[[Any], Any],
        make_context: Callable[[Any, Callable[..., int | None]], Any],
        outputs: list[Output],
        location: str,
    ) -> int | None:
        """Call a Python task with its context, atomically: its SQL in one transaction, its lake
        writes published only if it succeeds. A returned value is written to ``outputs[0]``."""

    @abstractmethod
    def attach_lake(self, tables: list[LakeTable]) -> None:
        """Make existing lake tables readable by name (``curated.x``) from SQL."""

    @abstractmethod
    def table_info(self) -> dict[str, dict[str, Any]]:
        """Every warehouse table and view: ``{"kind", "columns": [{"name", "type"}], "rows"}``
        (rows None for views), in a few queries however many tables there are."""

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
