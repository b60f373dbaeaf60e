"""Spark's tables: Parquet version folders published atomically, exactly as lake tables are.

A warehouse table ``tmp.x`` lives in ``<warehouse>/tmp/x``, a symlink to an immutable version
folder that :mod:`daglake.lake.tables` writes and swaps in with one ``rename``. Spark's own
catalog is in memory and forgets everything when the process ends, so every new session
registers the tables it finds on disk again (external tables over the stable path).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.engines.base import Output
from daglake.lake.tables import (
    LakeTable,
    StagedVersion,
    discard,
    empty_partition_folder,
    footer_rows,
    new_version,
    publish,
    read_partition_types,
    take_staged,
    write_partition_types,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_register_lock = threading.Lock()

# Spark's types in the lake's neutral vocabulary (the names DuckDB gives them), and back
_NEUTRAL = {
    "string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT",
    "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
}
_SPARK = {v: k for k, v in _NEUTRAL.items()} | {"TIMESTAMPTZ": "timestamp", "HUGEINT": "decimal(38,0)"}


def quote(name: str) -> str:
    """``tmp.x`` quoted for Spark SQL: ```tmp`.`x```."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def rows_in(version: Path) -> int:
    """Rows in a version's Parquet files, from their footers."""
    return sum(footer_rows(list(version.rglob("*.parquet"))))


def folder_version(version: Path) -> str:
    """A published version folder's name (a new one at every publish) and its files' names,
    sizes and modification times: a job that wrote into the folder through Spark's catalog
    (``INSERT INTO`` the external table) changes those, not the name. A stat per file."""
    import hashlib

    listing = []
    for path in version.rglob("*"):
        if path.is_file() and not path.name.startswith((".", "_")):
            stat = path.stat()
            listing.append(f"{path.relative_to(version)}:{stat.st_size}:{stat.st_mtime_ns}")
    listing.sort()
    digest = hashlib.blake2b("\n".join(listing).encode(), digest_size=8).hexdigest()
    return f"spark:{version.name}:{digest}"


def content_versions(spark: SparkSession, tables: list[str]) -> dict[str, str | None]:
    """Tables of Spark's catalog that are no daglake folder: row count and the sum of every
    row's 64-bit hash, all in one job of one scan each (None: not a table Spark can read)."""
    found: dict[str, str | None] = dict.fromkeys(tables)
    readable = [t for t in tables if spark.catalog.tableExists(t)]
    if not readable:
        return found
    digest = "CAST(SUM(CAST(xxhash64(*) AS DECIMAL(38, 0))) AS STRING)"
    sql = " UNION ALL ".join(
        f"SELECT {index} AS i, CAST(COUNT(*) AS STRING) AS n, {digest} AS h FROM {quote(name)}" for index, name in enumerate(readable)
    )
    try:
        rows = spark.sql(sql).collect()
    except Exception as exc:
        from daglake.engines.spark_sql import is_spark_error

        if not is_spark_error(exc):
            raise
        return found  # what Spark cannot read: its readers run, and say why
    for index, count, total in rows:
        found[readable[index]] = f"spark:{count}:{total or ''}"
    return found


@dataclass(frozen=True)
class Warehouse:
    """The folder of the engine's tables: ``<schema>/<table>`` links to version folders."""

    root: Path

    def table(self, name: str) -> LakeTable:
        schema, _, table = name.lower().rpartition(".")
        return LakeTable(self.root, schema or "default", table)

    def tables(self) -> list[LakeTable]:
        if not self.root.is_dir():
            return []
        found = []
        for schema in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            for link in sorted(schema.iterdir()):
                table = LakeTable(self.root, schema.name, link.name)
                if not link.name.startswith(".") and table.exists():
                    found.append(table)
        return found


def register(spark: SparkSession, table: LakeTable, *, lake: bool = False) -> None:
    """Make ``table`` readable by its name in this session: an external table over its stable
    path (warehouse), or a view with the partition columns typed as recorded (lake)."""
    name = quote(table.qualified)
    location = str(table.path.absolute()).replace("'", "\\'")
    with _register_lock:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote(table.zone)}")
        if not lake:
            spark.sql(f"DROP TABLE IF EXISTS {name}")
            spark.sql(f"CREATE TABLE {name} USING parquet LOCATION '{location}'")
            return
        current = table.current_version()
        spark.sql(f"CREATE OR REPLACE VIEW {name} AS {_typed_select(spark, location, current)}")


def _typed_select(spark: SparkSession, location: str, version: Path | None) -> str:
    """``SELECT`` of a Parquet folder with its partition columns typed as recorded."""
    types = read_partition_types(version) if version is not None else {}
    columns = [
        f"CAST({quote(c)} AS {_SPARK.get(types[c].upper(), types[c])}) AS {quote(c)}" if c in types else quote(c)
        for c in spark.read.parquet(location).columns
    ]
    return f"SELECT {', '.join(columns)} FROM parquet.`{location}`"


def version_view(spark: SparkSession, version: Path, name: str) -> None:
    """A temporary view ``name`` over one unpublished version (what an audit reads)."""
    location = str(version.absolute()).replace("'", "\\'")
    spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {quote(name)} AS {_typed_select(spark, location, version)}")


def unregister(spark: SparkSession, table: LakeTable) -> None:
    with _register_lock:
        spark.sql(f"DROP TABLE IF EXISTS {quote(table.qualified)}")


def neutral_type(spark_type: str) -> str:
    return _NEUTRAL.get(spark_type, spark_type.upper())


@dataclass
class Staged(StagedVersion):
    output: Output  # what the task writes there


@dataclass
class SparkWrites:
    """Versions written by one task, published only when the whole task succeeds."""

    spark: SparkSession
    warehouse: Warehouse
    staged: list[Staged] = field(default_factory=list)
    dropped: list[LakeTable] = field(default_factory=list)

    def target(self, output: Output) -> LakeTable:
        return output.lake if output.lake is not None else self.warehouse.table(output.table)

    def write(self, output: Output, frame: DataFrame, *, replace: bool = False, append: bool = False, keep: bool = False) -> int:
        """``frame``'s rows as the table's next version (``append``: added to this task's
        earlier write; ``keep``: added to the current version, as ``INSERT INTO`` does)."""
        table = self.target(output)
        staged = next((s for s in self.staged if s.table == table), None)
        if staged is not None and not (append or keep):  # written again: the last write wins
            self.staged.remove(staged)
            discard(staged.version)
            staged = None
        if staged is None:
            staged = Staged(table, new_version(table), carry=output.lake is not None and not replace, output=output)
            self.staged.append(staged)
            if keep and table.current_version() is not None:
                _link_files(table.current_version(), staged.version)  # type: ignore[arg-type]
            if table in self.dropped:
                self.dropped.remove(table)
        version = staged.version
        before = rows_in(version)
        if keep and any(version.rglob("*.parquet")):
            frame = _positional(frame, self.spark.read.parquet(str(version)))
        partition_by = list(output.partition_by) if output.lake is not None else []
        if partition_by:
            frame.write.mode("append").partitionBy(*partition_by).parquet(str(version))
            types = {f.name: neutral_type(f.dataType.simpleString()) for f in frame.schema.fields if f.name in partition_by}
            write_partition_types(version, types)
            folder = empty_partition_folder(version, partition_by)
            if folder is not None:
                frame.drop(*partition_by).limit(0).coalesce(1).write.mode("append").parquet(str(folder))
        else:
            staged.carry = False
            frame.write.mode("append").parquet(str(version))
        return rows_in(version) - before

    def complete(self) -> None:
        """Every staged version made the whole new table (untouched partitions carried in)."""
        for staged in self.staged:
            staged.complete()

    def take(self, output: str) -> Path | None:
        """The staged version of the table ``output``, no longer this task's to publish."""
        return take_staged(self.staged, next((s for s in self.staged if s.output.table == output), None))

    def drop(self, table: LakeTable) -> None:
        for staged in [s for s in self.staged if s.table == table]:
            self.staged.remove(staged)
            discard(staged.version)
        self.dropped.append(table)

    def publish(self, only: set[str] | None = None) -> None:
        """Swap the staged versions in (``only``: those of these tables), then register the
        tables in the session."""
        chosen = [s for s in self.staged if only is None or s.table.qualified in only]
        for staged in chosen:
            staged.complete()
            publish(staged.table, staged.version)
            register(self.spark, staged.table, lake=staged.output.lake is not None)
            self.staged.remove(staged)
        if only is not None:
            return
        for table in self.dropped:
            current = table.current_version()
            if table.path.is_symlink():
                table.path.unlink()
            if current is not None:
                discard(current)
            unregister(self.spark, table)
        self.dropped.clear()

    def publish_read(self, sql: str) -> None:
        """Publish the staged tables ``sql`` reads: a later statement of a file reads what an
        earlier one wrote (Spark cannot read an unpublished version by the table's name)."""
        if not self.staged:
            return
        import sqlglot
        from sqlglot import exp

        try:
            tree = sqlglot.parse_one(sql, read="spark")
        except sqlglot.errors.SqlglotError:
            return
        read = {".".join(p for p in (t.db, t.name) if p).lower() for t in tree.find_all(exp.Table)}
        if read & {s.table.qualified for s in self.staged}:
            self.publish(only=read)

    def discard(self) -> None:
        for staged in self.staged:
            discard(staged.version)
        self.staged.clear()
        self.dropped.clear()


def _positional(frame: DataFrame, table: DataFrame) -> DataFrame:
    """``INSERT INTO t SELECT …`` fills ``t``'s columns by position, cast to their types."""
    from pyspark.sql.functions import col

    fields = table.schema.fields
    if len(frame.columns) != len(fields):
        raise ValueError(f"INSERT gives {len(frame.columns)} values for {len(fields)} columns")
    renamed = frame.toDF(*[f"_daglake_{i}" for i in range(len(fields))])
    return renamed.select(*[col(f"_daglake_{i}").cast(f.dataType).alias(f.name) for i, f in enumerate(fields)])


def _link_files(source: Path, target: Path) -> None:
    """The current version's files, hard-linked into a new version that adds rows to them."""
    for path in source.rglob("*.parquet"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            import shutil

            shutil.copy2(path, destination)


def as_frame(spark: SparkSession, data: Any) -> DataFrame:
    """A Spark DataFrame from what a Python task returns: Spark's own, Arrow, pandas, polars."""
    from pyspark.sql import DataFrame

    if isinstance(data, DataFrame):
        return data
    import pyarrow as pa

    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    if not isinstance(data, pa.Table) and hasattr(data, "to_arrow"):  # polars, a DuckDB relation
        converted = data.to_arrow()
        data = converted.read_all() if isinstance(converted, pa.RecordBatchReader) else converted
    if isinstance(data, pa.Table) or type(data).__module__.startswith("pandas"):
        return spark.createDataFrame(data)
    raise TypeError(f"cannot write {type(data).__name__} on Spark: return a Spark DataFrame, Arrow, pandas, polars or SQL")
