"""Writing query results and Python data into warehouse tables and lake tables with DuckDB."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daglake.engines.base import Output
from daglake.lake.tables import (
    LakeTable,
    StagedVersion,
    discard,
    empty_partition_folder,
    new_version,
    partition_folder,
    publish,
    quote_identifier,
    quote_literal,
    take_staged,
    version_read_sql,
    write_partition_types,
)


def qualified_name(table: str) -> str:
    return ".".join(quote_identifier(part) for part in table.split("."))


def lake_view_sql(table: LakeTable) -> str:
    """Lake tables are tables: ``curated.x`` in SQL reads the current Parquet version."""
    return f"CREATE OR REPLACE VIEW {qualified_name(table.qualified)} AS SELECT * FROM {table.read_sql()}"


def _by_partition(source_sql: str, version: Path, partition_by: list[str]) -> list[tuple[Path, str]] | None:
    """The folders and queries of a :class:`~daglake.lake.tables.PartitionedQuery`'s parts when
    each can be written by hand (its partition columns, plain values), else None."""
    parts = getattr(source_sql, "parts", None)
    if parts is None:
        return None
    found = []
    for values, part_sql in parts:
        folder = partition_folder(version, {c: values.get(c, "") for c in partition_by})
        if folder is None or set(values) != set(partition_by):
            return None
        found.append((folder, str(part_sql)))
    return found


def _write_parts(cursor: Any, parts: list[tuple[Path, str]], token: str) -> int:
    rows = 0
    for number, (folder, part_sql) in enumerate(parts):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"part-{token}-{number}.parquet"
        written = cursor.execute(f"COPY ({part_sql}) TO {quote_literal(str(target))} (FORMAT parquet)").fetchone()
        rows += int(written[0]) if written else 0
    return rows


@dataclass
class Writes:
    """Lake versions written by a task, published only when the whole task succeeds."""

    cursor: Any
    staged: list[StagedVersion] = field(default_factory=list)

    def write(
        self, output: Output, source_sql: str, *, replace: bool = False, cursor: Any = None, append: bool = False
    ) -> int | None:
        """``cursor``: another connection to run ``source_sql`` on (lake tables only).
        ``append``: add to what this task already wrote to the table (else the last write wins)."""
        cursor = self.cursor if cursor is None else cursor
        if output.lake is None:
            result = cursor.execute(
                f"CREATE OR REPLACE TABLE {qualified_name(output.table)} AS {source_sql}"
            ).fetchone()
            return int(result[0]) if result else None
        staged = next((s for s in self.staged if s.table == output.lake), None)
        if staged is not None and not append:  # written again: the last write wins
            self.staged.remove(staged)
            discard(staged.version)
            staged = None
        first = staged is None
        if staged is None:
            staged = StagedVersion(output.lake, new_version(output.lake), carry=not replace)
            self.staged.append(staged)
        version = staged.version
        partition_by = list(output.partition_by)
        token = secrets.token_hex(4)
        if partition_by:
            columns = ", ".join(quote_identifier(c) for c in partition_by)
            by_hand = _by_partition(source_sql, version, partition_by)
            if by_hand is not None:
                result = (_write_parts(cursor, by_hand, token),)
            else:
                result = cursor.execute(
                    f"COPY ({source_sql}) TO {quote_literal(str(version))} (FORMAT parquet, "
                    f"PARTITION_BY ({columns}), FILENAME_PATTERN 'part-{token}-{{i}}', OVERWRITE_OR_IGNORE)"
                ).fetchone()
            if first:  # appended batches have the same columns
                described = cursor.execute(f"DESCRIBE SELECT {columns} FROM ({source_sql})").fetchall()
                write_partition_types(version, {row[0]: row[1] for row in described})
            folder = empty_partition_folder(version, partition_by)
            if folder is not None:
                cursor.execute(
                    f"COPY (SELECT * EXCLUDE ({columns}) FROM ({source_sql}) LIMIT 0) "
                    f"TO {quote_literal(str(folder / 'part-empty.parquet'))} (FORMAT parquet)"
                )
        else:
            staged.carry = False  # an unpartitioned table is always replaced whole
            target = version / f"part-{token}-0.parquet"
            result = cursor.execute(
                f"COPY ({source_sql}) TO {quote_literal(str(target))} (FORMAT parquet)"
            ).fetchone()
        return int(result[0]) if result else None

    def write_data(
        self, output: Output, data: Any, *, replace: bool = False, cursor: Any = None, append: bool = False
    ) -> int | None:
        """Arrow, pandas, polars, a DuckDB relation, or a SQL string in the engine's dialect."""
        if isinstance(data, str):
            return self.write(output, data, replace=replace, cursor=cursor, append=append)
        if cursor is not None:
            raise ValueError("con= goes with a SQL string (the query to run on that connection)")
        name = f"_daglake_data_{secrets.token_hex(4)}"
        self.cursor.register(name, data)
        try:
            return self.write(output, f"SELECT * FROM {name}", replace=replace, append=append)
        finally:
            self.cursor.unregister(name)

    def complete(self) -> None:
        """Every staged version made the whole new table (untouched partitions carried in)."""
        for staged in self.staged:
            staged.complete()

    def show_staged(self) -> None:
        """Inside the task's transaction, the lake tables' names read their new versions."""
        for staged in self.staged:
            self.cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(staged.table.zone)}")
            self.cursor.execute(
                f"CREATE OR REPLACE VIEW {qualified_name(staged.table.qualified)} AS "
                f"SELECT * FROM {version_read_sql(staged.version)}"
            )

    def take(self, table: LakeTable) -> Path | None:
        """The staged version of ``table``, no longer this task's to publish or discard."""
        return take_staged(self.staged, next((s for s in self.staged if s.table == table), None))

    def publish(self) -> None:
        """Swap every staged version in, then point the SQL views at the lake tables."""
        self.complete()
        for staged in self.staged:
            publish(staged.table, staged.version)
            self.cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(staged.table.zone)}")
            self.cursor.execute(lake_view_sql(staged.table))
        self.staged.clear()

    def discard(self) -> None:
        for staged in self.staged:
            discard(staged.version)
        self.staged.clear()
