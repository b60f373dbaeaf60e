"""Writing query results and Python data into warehouse tables and lake tables with DuckDB."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daglake.engines.base import Output
from daglake.lake.tables import (
    LakeTable,
    carry_over,
    discard,
    empty_partition_folder,
    new_version,
    publish,
    quote_identifier,
    quote_literal,
)


def qualified_name(table: str) -> str:
    return ".".join(quote_identifier(part) for part in table.split("."))


def lake_view_sql(table: LakeTable) -> str:
    """Lake tables are tables: ``curated.x`` in SQL reads the current Parquet version."""
    return (
        f"CREATE OR REPLACE VIEW {qualified_name(table.qualified)} AS SELECT * FROM "
        f"read_parquet({quote_literal(table.glob)}, hive_partitioning = true, union_by_name = true)"
    )


@dataclass
class Writes:
    """Lake versions written by a task, published only when the whole task succeeds."""

    cursor: Any
    staged: list[tuple[LakeTable, Path]] = field(default_factory=list)

    def write(self, output: Output, source_sql: str, *, replace: bool = False, cursor: Any = None) -> int | None:
        """``cursor``: another connection to run ``source_sql`` on (lake tables only)."""
        cursor = self.cursor if cursor is None else cursor
        if output.lake is None:
            result = cursor.execute(
                f"CREATE OR REPLACE TABLE {qualified_name(output.table)} AS {source_sql}"
            ).fetchone()
            return int(result[0]) if result else None
        for staged in [s for s in self.staged if s[0] == output.lake]:  # written again: last wins
            self.staged.remove(staged)
            discard(staged[1])
        version = new_version(output.lake)
        self.staged.append((output.lake, version))
        partition_by = list(output.partition_by)
        token = secrets.token_hex(4)
        if partition_by:
            columns = ", ".join(quote_identifier(c) for c in partition_by)
            result = cursor.execute(
                f"COPY ({source_sql}) TO {quote_literal(str(version))} (FORMAT parquet, "
                f"PARTITION_BY ({columns}), FILENAME_PATTERN 'part-{token}-{{i}}', OVERWRITE_OR_IGNORE)"
            ).fetchone()
            if not replace:
                carry_over(output.lake, version)
            folder = empty_partition_folder(version, partition_by)
            if folder is not None:
                cursor.execute(
                    f"COPY (SELECT * EXCLUDE ({columns}) FROM ({source_sql}) LIMIT 0) "
                    f"TO {quote_literal(str(folder / 'part-empty.parquet'))} (FORMAT parquet)"
                )
        else:
            target = version / f"part-{token}-0.parquet"
            result = cursor.execute(
                f"COPY ({source_sql}) TO {quote_literal(str(target))} (FORMAT parquet)"
            ).fetchone()
        return int(result[0]) if result else None

    def write_data(self, output: Output, data: Any, *, replace: bool = False, cursor: Any = None) -> int | None:
        """Arrow, pandas, polars, a DuckDB relation, or a SQL string in the engine's dialect."""
        if isinstance(data, str):
            return self.write(output, data, replace=replace, cursor=cursor)
        if cursor is not None:
            raise ValueError("con= goes with a SQL string (the query to run on that connection)")
        name = f"_daglake_data_{secrets.token_hex(4)}"
        self.cursor.register(name, data)
        try:
            return self.write(output, f"SELECT * FROM {name}", replace=replace)
        finally:
            self.cursor.unregister(name)

    def publish(self) -> None:
        """Swap every staged version in, then point the SQL views at the lake tables."""
        for table, version in self.staged:
            publish(table, version)
            self.cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(table.zone)}")
            self.cursor.execute(lake_view_sql(table))
        self.staged.clear()

    def discard(self) -> None:
        for _, version in self.staged:
            discard(version)
        self.staged.clear()
