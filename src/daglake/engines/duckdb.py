"""Embedded DuckDB: one warehouse file, a cursor per worker thread, a transaction per task."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb

from daglake.engines.base import Engine, EngineSettings, SqlStatement
from daglake.errors import TaskError, UsageError

_LINE_MARKER = re.compile(r"\n+LINE \d+:.*", re.DOTALL)


def engine_message(exc: BaseException) -> str:
    """DuckDB's message without the ``LINE n:`` excerpt of translated SQL (it misleads users)."""
    return _LINE_MARKER.sub("", str(exc)).strip()


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        path = settings.root / settings.path if settings.path != ":memory:" else None
        self._local = threading.local()
        try:
            if path is None:
                self._connection = duckdb.connect(":memory:")
            elif settings.read_only and not path.exists():
                self._connection = duckdb.connect(":memory:")  # nothing built yet: nothing exists
            else:
                if not settings.read_only:
                    path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = duckdb.connect(str(path), read_only=settings.read_only)
        except duckdb.IOException as exc:
            raise UsageError(f"{settings.path}: cannot open the warehouse: {engine_message(exc)}") from exc
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._variables: dict[str, Any] = {}

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            cursor.execute("SET TimeZone = 'UTC'")  # BigQuery's times are UTC, not the host's
            self._local.cursor = cursor
            with self._lock:
                self._cursors.append(cursor)
                variables = dict(self._variables)
            self._apply_variables(cursor, variables)
        return cursor

    def set_variables(self, variables: dict[str, Any]) -> None:
        """DuckDB variables are per connection: set on every cursor, now and when created."""
        with self._lock:
            self._variables.update(variables)
            cursors = list(self._cursors)
        for cursor in cursors:
            self._apply_variables(cursor, variables)

    @staticmethod
    def _apply_variables(cursor: duckdb.DuckDBPyConnection, variables: dict[str, Any]) -> None:
        for name, value in variables.items():
            cursor.execute(f"SET VARIABLE {name} = $value", {"value": value})

    def existing_tables(self) -> set[str]:
        rows = self._cursor().execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall()
        return {(name if schema == "main" else f"{schema}.{name}").lower() for schema, name in rows}

    def create_schemas(self, schemas: set[str]) -> None:
        cursor = self._cursor()
        for schema in sorted(schemas - {"main"}):
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def run_statements(
        self, statements: list[SqlStatement], location: str, log: Callable[[str], None] | None = None
    ) -> int | None:
        cursor = self._cursor()
        rows: int | None = None
        cursor.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                started = time.perf_counter()
                if log is not None:
                    log(f"-- {location}:{statement.line}\n{statement.sql};")
                try:
                    result = cursor.execute(statement.sql)
                    count = None
                    if result.description and result.description[0][0] == "Count":
                        fetched = result.fetchone()
                        count = int(fetched[0]) if fetched else None
                        rows = (rows or 0) + (count or 0)
                except duckdb.Error as exc:
                    raise TaskError(engine_message(exc), f"{location}:{statement.line}") from exc
                if log is not None:
                    written = "" if count is None else f", {count} rows"
                    log(f"-- done in {time.perf_counter() - started:.3f} s{written}")
            try:
                cursor.execute("COMMIT")
            except duckdb.Error as exc:
                raise TaskError(f"commit failed: {engine_message(exc)}", location) from exc
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # already gone: nothing was committed
                cursor.execute("ROLLBACK")
            raise
        return rows

    def fetch(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = self._cursor().execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchmany(limit) if limit is not None else result.fetchall()
        return columns, rows

    def close(self) -> None:
        with self._lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
        self._connection.close()
