"""Rows appended to DuckDB tables (``POST /{table}``): names from information_schema, values
bound as strings that DuckDB casts to the column types, never spliced into SQL."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from daglake.engines.base import AppendError, Column, RowWriter
from daglake.engines.duckdb_lake import qualified_name

BAD_VALUE = (duckdb.ConversionException, duckdb.DataError, duckdb.ConstraintException, duckdb.InvalidInputException)
STALE = (duckdb.CatalogException, duckdb.BinderException)  # a run replaced the table meanwhile


class DuckDBRowWriter(RowWriter):
    def __init__(self, cursor: duckdb.DuckDBPyConnection, message: Any) -> None:
        self.cursor = cursor
        self._message = message  # DuckDB's text without its LINE excerpt

    def columns(self, schema: str, table: str) -> tuple[str, list[Column]] | None:
        rows = self.cursor.execute(
            "SELECT c.table_name, c.column_name, c.data_type "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "  ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema "
            "  AND t.table_name = c.table_name "
            "WHERE c.table_catalog = current_database() AND c.table_schema = $schema "
            "  AND t.table_type = 'BASE TABLE' AND lower(c.table_name) = lower($table) "
            "ORDER BY c.ordinal_position",
            {"schema": schema, "table": table},
        ).fetchall()
        if not rows:
            return None
        return rows[0][0], [Column(name, kind) for _, name, kind in rows]

    def tables(self, schema: str) -> list[str]:
        rows = self.cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = $schema AND table_type = 'BASE TABLE' ORDER BY table_name",
            {"schema": schema},
        ).fetchall()
        return [row[0] for row in rows]

    def insert(
        self, schema: str, table: str, columns: list[str], rows: list[dict[str, str]], *, precise: bool
    ) -> list[dict[str, Any]]:
        """One INSERT … RETURNING (one transaction). A VALUES list costs the least; an Arrow table
        (``precise``) makes a conversion error name its column, for an append that failed alone."""
        target = f"{qualified_name(f'{schema}.{table}')} ({', '.join(qualified_name(n) for n in columns)})"
        try:
            if precise:
                daglake_api_appended_rows = pa.table(  # noqa: F841 - read by DuckDB by name (replacement scan)
                    {name: pa.array([row.get(name) for row in rows], pa.string()) for name in columns}
                )
                result = self.cursor.execute(f"INSERT INTO {target} SELECT * FROM daglake_api_appended_rows RETURNING *")
            else:
                placeholders = "(" + ", ".join("?" for _ in columns) + ")"
                values = [row.get(name) for row in rows for name in columns]
                result = self.cursor.execute(
                    f"INSERT INTO {target} VALUES {', '.join([placeholders] * len(rows))} RETURNING *", values
                )
            names = [d[0] for d in result.description or []]
            stored = result.fetchall()
        except duckdb.Error as exc:
            raise _append_error(exc, self._message(exc)) from exc
        return [dict(zip(names, row, strict=True)) for row in stored]


def _append_error(exc: duckdb.Error, message: str) -> AppendError:
    if isinstance(exc, BAD_VALUE):
        return AppendError(message, "invalid_value")
    if isinstance(exc, duckdb.TransactionException):
        return AppendError(message, "conflict", retry=True)
    return AppendError(message, "error", retry=isinstance(exc, STALE))
