"""Apache Spark through PySpark: ``local[*]`` on a laptop, a cluster master or Spark Connect.

Tables are Parquet written to a new version folder and published atomically when the task
succeeds, like lake tables (:mod:`daglake.engines.spark_tables`); Spark's in-memory catalog is
filled from the folders in every new session. The SparkSession starts on first use, so
validating or planning a project never starts a JVM.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.engine_settings import SparkSettings
from daglake.engines.base import (
    MATERIALIZE,
    Audit,
    Engine,
    Output,
    PythonSession,
    RecordTyper,
    Statement,
)
from daglake.engines.spark_session import LOG_FILE, preflight, spark_session
from daglake.engines.spark_sql import (
    StatementPlan,
    engine_error,
    is_spark_error,
    plan_statement,
    temp_views,
)
from daglake.engines.spark_tables import (
    SparkWrites,
    Warehouse,
    as_frame,
    content_versions,
    folder_version,
    quote,
    register,
    rows_in,
    version_view,
)
from daglake.errors import AuditFailed, TaskError
from daglake.lake import candidates
from daglake.lake.tables import LakeTable, crash_point

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from daglake.lake.json_schema import RecordSchema

_owner_lock = threading.Lock()
_owner: list[Path] = []  # the warehouse whose tables the process's session has registered


class SparkEngine(Engine):
    name = "spark"
    dialect = "spark"

    settings: SparkSettings

    def __init__(self, settings: SparkSettings, root: Path, *, read_only: bool = False, lazy: bool = False) -> None:
        super().__init__(settings, root, read_only=read_only, lazy=lazy)
        preflight(settings)
        self.warehouse = Warehouse((root / settings.warehouse).absolute())
        self._variables: dict[str, Any] = {}
        self._lake: list[LakeTable] = []
        self._spark: SparkSession | None = None
        self._lock = threading.Lock()

    @property
    def spark(self) -> SparkSession:
        """The process's session, with this warehouse's tables registered in it."""
        with self._lock:
            if self._spark is None:
                spark = spark_session(self.settings, self.root)
                with _owner_lock:
                    if _owner != [self.warehouse.root]:
                        _reset_catalog(spark)
                        for table in self.warehouse.tables():
                            register(spark, table)
                        _owner[:] = [self.warehouse.root]
                self._spark = spark
            return self._spark

    def _args(self, names: tuple[str, ...] | None = None, sql: str | None = None) -> dict[str, Any]:
        """The run's values that ``sql`` reads as ``:name`` (Spark refuses them on statements
        without markers of some kinds), or those ``names``."""
        with self._lock:
            variables = dict(self._variables)
        if names is None:
            names = tuple(n for n in variables if sql is not None and re.search(rf":{n}\b", sql))
        return {n: variables[n] for n in names if n in variables}

    # -- Engine --------------------------------------------------------------------------
    def existing_tables(self) -> set[str]:
        """From the warehouse folder: no session needed."""
        return {t.qualified for t in self.warehouse.tables()} | {t.qualified for t in self._lake if t.exists()}

    def source_versions(self, tables: list[str]) -> dict[str, str | None]:
        """A warehouse or lake table: its version folder and the files in it (a stat each, no
        read, no session needed); another table of the running session's catalog (a cluster's
        metastore): a content fingerprint in one job. See :mod:`.spark_tables`."""
        lake = {t.qualified: t for t in self._lake}
        found: dict[str, str | None] = {}
        others = []
        for name in tables:
            table = lake.get(name) or self.warehouse.table(name)
            version = table.current_version()
            if version is not None:
                found[name] = folder_version(version)
            else:
                found[name] = None
                others.append(name)
        with self._lock:
            running = self._spark  # ``--explain`` starts no JVM to find no table
        if others and running is not None:
            found.update(content_versions(running, others))
        return found

    def create_schemas(self, schemas: set[str]) -> None:
        """A schema is a folder, made when its first table is written."""

    def set_variables(self, variables: dict[str, Any]) -> None:
        with self._lock:
            self._variables.update(variables)

    def run_statements(
        self,
        statements: list[Statement],
        outputs: dict[str, Output],
        location: str,
        log: Callable[[str], None] | None = None,
        jobs: list[str] | None = None,
        audit: Audit | None = None,
    ) -> int | None:
        """Every table a file's statements write is staged and published when all succeeded
        (or before a later statement of the file reads it: atomic per table then)."""
        rows: int | None = None
        if log is not None:
            log(f"-- Spark's own log (the JVM's, for every task of the process): {LOG_FILE}")
        with self._writes(location, outputs.values(), audit) as writes:
            for statement in statements:
                started = time.perf_counter()
                args = self._args(statement.parameters)
                plan = self._plan(statement, outputs)
                if log is not None:
                    log(f"-- {location}:{statement.line}\n{plan.describe()};")
                try:
                    count = self._execute(plan, writes, args)
                except TaskError:
                    raise
                except Exception as exc:
                    if not is_spark_error(exc):
                        raise
                    raise engine_error(exc, location, statement.line) from exc
                if count is not None:
                    rows = (rows or 0) + count
                if log is not None:
                    written = "" if count is None else f", {count} rows"
                    log(f"-- done in {time.perf_counter() - started:.3f} s{written}")
        return rows

    def _plan(self, statement: Statement, outputs: dict[str, Output]) -> StatementPlan:
        if statement.kind == MATERIALIZE:
            target = statement.target or ""
            return StatementPlan("write", statement.query, outputs.get(target) or Output(target))
        plan = plan_statement(statement.query)
        if plan.output is not None:
            given = outputs.get(plan.output.table)
            if given is not None:
                plan = StatementPlan(plan.action, plan.sql, given, plan.schema)
        return plan

    def _execute(self, plan: StatementPlan, writes: SparkWrites, args: dict[str, Any]) -> int | None:
        spark = self.spark
        if plan.action == "run":
            writes.publish_read(plan.sql)
            spark.sql(plan.sql, args=args or None).collect()
            return None
        assert plan.output is not None
        target = writes.target(plan.output)
        if plan.action == "drop":
            writes.drop(target)
            return None
        if plan.action == "create_if_missing" and target.exists():
            return 0
        frame: DataFrame
        if plan.schema is not None:
            frame = spark.createDataFrame([], plan.schema)
        else:
            writes.publish_read(plan.sql)
            frame = spark.sql(plan.sql, args=args or None)
        return writes.write(plan.output, frame, replace=plan.action == "overwrite", keep=plan.action == "insert")

    @contextlib.contextmanager
    def _writes(
        self, location: str, outputs: Collection[Output] = (), audit: Audit | None = None
    ) -> Iterator[SparkWrites]:
        writes = SparkWrites(self.spark, self.warehouse)
        try:
            yield writes
            if audit is not None:
                self._audit(writes, audit)
            writes.publish()
        except BaseException:
            writes.discard()
            raise
        for output in outputs:
            candidates.drop(self.root, output.table)

    def _audit(self, writes: SparkWrites, audit: Audit) -> None:
        """The new versions, complete, as temporary views the checks read instead of the
        tables; refused, they are moved aside as the tables' candidates."""
        writes.complete()
        names: dict[str, str] = {}
        for staged in writes.staged:
            names[staged.output.table] = f"_daglake_candidate_{secrets.token_hex(6)}"
            version_view(self.spark, staged.version, names[staged.output.table])
        crash_point("audit")
        try:
            audit(lambda sql: self.fetch(sql), names)
        except AuditFailed:
            for table in names:
                version = writes.take(table)
                if version is not None:
                    candidates.keep(self.root, table, version)
            raise
        finally:
            for name in names.values():
                self.spark.catalog.dropTempView(name)

    def candidate_sql(self, table: str) -> str | None:
        folder = candidates.candidate_path(self.root, table)
        if not folder.is_dir() or not any(folder.rglob("*.parquet")):
            return None
        return f"SELECT * FROM parquet.`{folder.absolute()!s}`"

    @contextlib.contextmanager
    def python_session(
        self, outputs: list[Output], location: str, jobs: list[str] | None = None, audit: Audit | None = None
    ) -> Iterator[PythonSession]:
        with self._writes(location, outputs, audit) as writes:
            session = _Session(self, writes)
            try:
                yield session
            except TaskError:
                raise
            except Exception as exc:
                if not is_spark_error(exc):
                    raise
                raise engine_error(exc, location) from exc
            finally:
                session.drop_temp_tables()

    def attach_lake(self, tables: list[LakeTable]) -> None:
        self._lake = [t for t in tables if t.exists()]
        if self._lake:
            for table in self._lake:
                register(self.spark, table, lake=True)

    def lake_columns(self, table: LakeTable) -> list[tuple[str, str]]:
        register(self.spark, table, lake=True)
        return [(f.name, f.dataType.simpleString()) for f in self.spark.table(quote(table.qualified)).schema.fields]

    def table_info(self, names: Collection[str] | None = None) -> dict[str, dict[str, Any] | None]:
        info: dict[str, dict[str, Any] | None] = {}
        for table in self.warehouse.tables():
            schema = self.spark.table(quote(table.qualified)).schema
            columns = [{"name": f.name, "type": f.dataType.simpleString()} for f in schema.fields]
            version = table.current_version()
            info[table.qualified] = {"kind": "table", "columns": columns, "rows": rows_in(version) if version else 0}
        return info

    def fetch(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            frame = self.spark.sql(sql, args=self._args(sql=sql) or None)
            if limit is not None:
                frame = frame.limit(limit)
            table = frame.toArrow()
        except Exception as exc:
            if not is_spark_error(exc):
                raise
            raise engine_error(exc, None) from exc
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(table.column_names), list(zip(*columns, strict=True)) if columns else []

    def close(self) -> None:
        """The session belongs to the process (it may serve another engine): it stays."""


def _reset_catalog(spark: SparkSession) -> None:
    """Forget another warehouse's tables (a process that opens a second project, e.g. tests)."""
    for database in spark.catalog.listDatabases():
        if database.name != "default":
            spark.sql(f"DROP DATABASE IF EXISTS {quote(database.name)} CASCADE")


class _Session(PythonSession):
    """A Python task on Spark: ``native`` is the SparkSession; writes are published when the
    task returns. Its temporary tables are cached rows under views named apart (Spark's temporary
    views belong to the session, which every task shares), read through its SQL's bare names."""

    def __init__(self, engine: SparkEngine, writes: SparkWrites) -> None:
        self.engine = engine
        self.native = engine.spark
        self._writes = writes
        self._temp: dict[str, tuple[str, DataFrame]] = {}  # name (lower case): (view, rows)

    def query(self, sql: str, params: Any = None) -> DataFrame:
        sql = self._local(sql)
        args = params if params is not None else self.engine._args(sql=sql)
        frame: DataFrame = self.native.sql(sql, args=args or None)
        return frame

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.query(sql).collect()]

    def temp_table(self, name: str, sql: str) -> int:
        frame = self.query(sql).cache()
        rows = frame.count()
        view = f"_daglake_temp_{secrets.token_hex(4)}_{name.lower()}"
        frame.createOrReplaceTempView(view)
        self._drop(name.lower())
        self._temp[name.lower()] = (view, frame)
        return rows

    def drop_temp_tables(self) -> None:
        for name in list(self._temp):
            self._drop(name)

    def _drop(self, name: str) -> None:
        view, frame = self._temp.pop(name, (None, None))
        if view is not None and frame is not None:
            self.native.catalog.dropTempView(view)
            frame.unpersist()

    def _local(self, sql: str) -> str:
        """``sql`` reading this task's temporary tables by their views' names."""
        if not self._temp or not re.search("|".join(rf"\b{re.escape(n)}\b" for n in self._temp), sql, re.IGNORECASE):
            return sql
        return temp_views(sql, {name: view for name, (view, _) in self._temp.items()})

    def record_typer(self, schema: RecordSchema) -> RecordTyper:
        from daglake.engines.spark_json import SparkRecordTyper

        return SparkRecordTyper(self.native, schema)

    def write(
        self, output: Output, data: Any, *, replace: bool = False, native: Any = None, append: bool = False
    ) -> int | None:
        if isinstance(data, str):
            if native is None:
                data = self.query(data)
            else:
                data = native.sql(data, args=self.engine._args(sql=data) or None)
        elif native is not None:
            raise ValueError("con= goes with a SQL string (the query to run on that session)")
        return self._writes.write(output, as_frame(self.native, data), replace=replace, append=append)
