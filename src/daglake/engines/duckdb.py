"""Embedded DuckDB: one warehouse file, a cursor per worker thread, a transaction per task."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake._lazy import lazy_module
from daglake.engine_settings import DuckDBSettings, EngineSettings
from daglake.engines import duckdb_files, duckdb_stamp
from daglake.engines.base import (
    MATERIALIZE,
    Audit,
    Engine,
    Output,
    PythonSession,
    RecordTyper,
    RowWriter,
    Statement,
)
from daglake.engines.duckdb_lake import Writes, lake_view_sql, qualified_name
from daglake.errors import AuditFailed, TaskError, UsageError, WarehouseBusy
from daglake.lake import candidates
from daglake.lake.json_schema import RecordSchema
from daglake.lake.tables import LakeTable, crash_point, quote_literal

if TYPE_CHECKING:
    import duckdb
else:
    duckdb = lazy_module("duckdb")  # an unchanged run, which opens no warehouse, never imports it

_LINE_MARKER = re.compile(r"\n+LINE \d+:.*", re.DOTALL)
_GLOB = re.compile(r"[*?\[{]")


def _count(result: duckdb.DuckDBPyConnection) -> int | None:
    """Rows a CREATE … AS or INSERT wrote (DuckDB answers with a ``Count`` column)."""
    if result.description and result.description[0][0] == "Count":
        fetched = result.fetchone()
        return int(fetched[0]) if fetched else None
    return None


_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


def _table_sql(table: str) -> str:
    """``tmp.names`` as written in SQL: plain parts as they are, any other part quoted."""
    return ".".join(part if _PLAIN.fullmatch(part) else qualified_name(part) for part in table.split("."))


def _qualified(schema: str, name: str) -> str:
    return (name if schema == "main" else f"{schema}.{name}").lower()


def engine_message(exc: BaseException) -> str:
    """DuckDB's message without the ``LINE n:`` excerpt of translated SQL (it misleads users)."""
    return _LINE_MARKER.sub("", str(exc)).strip()


_SUBJECT = re.compile(r'"([A-Za-z_][A-Za-z0-9_.]*)"|name ([A-Za-z_][A-Za-z0-9_.]*) does not exist')


_POSITION = re.compile(r"\n\s*LINE (\d+):")


def engine_error(
    exc: BaseException, path: str, line: int | None = None, *, verbatim: bool = False
) -> TaskError:
    """DuckDB's error as a task error: the message, and where. When DuckDB ran the user's own
    text (``verbatim``) its ``LINE n:`` is a line of the file, counted from ``line``; otherwise
    the name it complains about (DuckDB quotes it: ``Referenced column "nme" not found``),
    which is in the user's SQL too, lets the caller find the line."""
    message = engine_message(exc)
    found = _SUBJECT.search(message)
    subject = (found.group(1) or found.group(2)).split(".")[-1] if found else None
    position = _POSITION.search(str(exc))
    if verbatim and line and position:
        return TaskError(message, path, line + int(position.group(1)) - 1)
    return TaskError(message, path, line, subject=subject)


# written like calls, parsed as syntax: not in duckdb_functions()
_SYNTAX = {
    "cast", "try_cast", "coalesce", "ifnull", "nullif", "extract", "exists", "grouping",
    "grouping_id", "interval", "columns", "unpack", "row", "struct", "array", "position",
    "trim", "substring", "overlay", "current_timestamp", "current_date", "current_time",
    "localtimestamp", "localtime", "if", "in", "any", "all", "values", "lambda",
}
_FUNCTION_SCHEMAS = {"main", "system", "pg_catalog", "temp"}
_BUILTIN_FUNCTIONS = Path(__file__).with_name("duckdb_functions.txt")
FUNCTION_NAMES = "SELECT DISTINCT lower(function_name) FROM duckdb_functions()"


def new_connection_functions() -> list[str]:
    """What a new connection of the installed DuckDB has, no extension loaded on the way:
    ``duckdb_functions.txt`` for this release (``scripts/duckdb-functions.py`` writes it)."""
    with duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}) as connection:
        return sorted(name for (name,) in connection.execute(FUNCTION_NAMES).fetchall())


def _has_function(name: str, known: Collection[str]) -> bool:
    schema, _, function = name.rpartition(".")
    return (not schema or schema in _FUNCTION_SCHEMAS) and (function in known or function in _SYNTAX)


@functools.cache
def _builtin_functions() -> frozenset[str]:
    """The functions every connection of the installed DuckDB release has (written by
    ``scripts/duckdb-functions.py``); empty for another release, whose list may differ."""
    header, _, names = _BUILTIN_FUNCTIONS.read_text(encoding="utf-8").partition("\n")
    return frozenset(names.splitlines()) if header == f"# duckdb {duckdb.__version__}" else frozenset()


OPEN_WAIT = 2.0  # seconds another process may keep the file: `daglake serve` between appends


def _open_shared(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The process's database for ``path``, waiting briefly while another process holds it."""
    deadline = time.monotonic() + OPEN_WAIT
    while True:
        try:
            return duckdb_files.connect(path, read_only=read_only)
        except duckdb.IOException:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.05)  # nothing to wait on across processes but time


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"

    settings: DuckDBSettings

    def __init__(self, settings: DuckDBSettings, root: Path, *, read_only: bool = False, lazy: bool = False) -> None:
        super().__init__(settings, root, read_only=read_only, lazy=lazy)
        self._path = root / settings.path if settings.path != ":memory:" else None
        self._local = threading.local()
        self._shared: Path | None = None  # the file, when shared with the process's other users
        self._db: duckdb.DuckDBPyConnection | None = None
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.RLock()
        self._variables: dict[str, Any] = {}
        self._known_functions: set[str] | None = None
        # an unchanged warehouse is opened only when a task has to run (duckdb_stamp)
        self._stamp: duckdb_stamp.Stamp | None = None
        self._wrote = False  # by this engine: the source versions it read may be stale
        self._versions: dict[str, str | None] = {}
        if lazy and self._path is not None and not read_only and not duckdb_files.is_open(self._path):
            self._stamp = duckdb_stamp.read(root, self._path, settings.options())
        elif read_only and self._path is not None and not self._path.exists():
            self._stamp = duckdb_stamp.Stamp(frozenset(), {})  # nothing built yet: nothing exists
        if self._stamp is None:
            self._open()

    def open(self) -> None:
        self._connection  # noqa: B018 (opens it)

    @property
    def _connection(self) -> duckdb.DuckDBPyConnection:
        db = self._db
        return db if db is not None else self._open()

    def _open(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._db is not None:
                return self._db
            path, read_only = self._path, self.read_only
            try:
                if path is None:
                    db = duckdb.connect(":memory:")
                elif read_only and not path.exists():
                    db = duckdb.connect(":memory:")  # nothing built yet: nothing exists
                else:
                    if not read_only:
                        path.parent.mkdir(parents=True, exist_ok=True)
                    db = _open_shared(path, read_only=read_only)
                    self._shared = path
            except duckdb.IOException as exc:
                held = WarehouseBusy if "lock" in str(exc).lower() else UsageError  # another process has it
                raise held(f"{self.settings.path}: cannot open the warehouse: {engine_message(exc)}") from exc
            for name, value in sorted(self.settings.options().items()):  # database-wide settings
                try:
                    db.execute(f"SET {name} = $value", {"value": value})
                except duckdb.Error as exc:
                    self._release(db)  # a shared file stays open while anyone holds it
                    raise UsageError(f"engine.{name} = {value!r}: {engine_message(exc)}") from exc
            self._db, self._stamp = db, None
            return db

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

    @classmethod
    def opening_creates_nothing(cls, settings: EngineSettings, root: Path) -> bool:
        assert isinstance(settings, DuckDBSettings)
        return settings.path == ":memory:" or (root / settings.path).is_file()

    def existing_tables(self) -> set[str]:
        if self._stamp is not None:
            return set(self._stamp.tables)
        return self._list_tables(self._cursor())

    @staticmethod
    def _list_tables(cursor: duckdb.DuckDBPyConnection) -> set[str]:
        rows = cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall()
        return {_qualified(schema, name) for schema, name in rows}

    def source_versions(self, tables: list[str]) -> dict[str, str | None]:
        """Row count and the sum of every row's hash, all tables in one query of one scan
        each (about 30 ns a row: 0.27 s for 10 million rows of three columns). A sum, not a
        XOR: two equal rows added do not cancel out."""
        if not tables:
            return {}
        known = self._stamp.versions if self._stamp is not None else None
        if known is not None and all(t in known for t in tables):
            return {t: known[t] for t in tables}
        found = self._scan_versions(tables)
        with self._lock:
            self._versions.update(found)
        return found

    def _scan_versions(self, tables: list[str]) -> dict[str, str | None]:
        parts = [
            f"SELECT {index} AS i, count(*)::VARCHAR || ':' || coalesce(sum(hash(t))::VARCHAR, '') FROM {_table_sql(name)} AS t"
            for index, name in enumerate(tables)
        ]
        found: dict[str, str | None] = dict.fromkeys(tables)
        try:
            rows = self._cursor().execute(" UNION ALL ".join(parts)).fetchall()
        except duckdb.Error:
            return found  # a table that cannot be read: its readers run and say why
        for index, version in rows:
            found[tables[index]] = f"duckdb:{version}"
        return found

    def functions_stamp(self) -> str | None:
        """The installed DuckDB binary (its path, size and time: any reinstall changes them),
        found without importing duckdb, which an unchanged run otherwise never needs."""
        spec = importlib.util.find_spec("_duckdb")
        if spec is None or spec.origin is None:
            return f"duckdb {duckdb.__version__}"
        info = os.stat(spec.origin)
        return f"duckdb {spec.origin} {info.st_size} {info.st_mtime_ns}"

    def missing_functions(self, names: set[str]) -> set[str]:
        """DuckDB is asked for its functions only about names its release's list
        (``duckdb_functions.txt``) lacks: extensions' functions, or a call that really fails."""
        listed = _builtin_functions()
        unlisted = {name for name in names if not _has_function(name, listed)}
        if not unlisted:
            return set()
        known = self._functions()
        return {name for name in unlisted if not _has_function(name, known)}

    def _functions(self) -> set[str]:
        """Every function DuckDB has here, those of installed extensions too: they are loaded
        from the local disk first (what DuckDB would autoload), never downloaded."""
        if self._known_functions is None:
            cursor = self._connection.cursor()
            try:
                cursor.execute("SET autoinstall_known_extensions = false")
                installed = cursor.execute(
                    "SELECT extension_name FROM duckdb_extensions() WHERE installed AND NOT loaded"
                ).fetchall()
                for (extension,) in installed:
                    if _PLAIN.fullmatch(extension):
                        with contextlib.suppress(duckdb.Error):
                            cursor.execute(f"LOAD {extension}")
                rows = cursor.execute(FUNCTION_NAMES).fetchall()
            finally:
                cursor.close()
            self._known_functions = {name for (name,) in rows}
        return self._known_functions

    def create_schemas(self, schemas: set[str]) -> None:
        if self._stamp is not None and schemas - {"main"} <= {t.split(".")[0] for t in self._stamp.tables if "." in t}:
            return  # all there already
        cursor = self._cursor()
        for schema in sorted(schemas - {"main"}):
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    @contextlib.contextmanager
    def _transaction(
        self, location: str, outputs: Collection[Output] = (), audit: Audit | None = None, *, one_statement: bool = False
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, Writes]]:
        """One DuckDB transaction, plus lake versions published just before it commits: on any
        failure both are undone and nothing the task did is visible. ``audit`` reads the new
        versions inside the transaction first; when it refuses them they become candidates.
        ``one_statement`` that writes only the warehouse is a transaction of its own already."""
        cursor = self._cursor()
        self._wrote = True
        writes = Writes(cursor)
        if one_statement and audit is None and all(output.lake is None for output in outputs):
            yield cursor, writes  # no BEGIN and COMMIT round trips: ~0.3-0.9 ms a task
        else:
            with self._committed(cursor, writes, outputs, audit, location):
                yield cursor, writes
        for output in outputs:
            candidates.drop(self.root, output.table)

    @contextlib.contextmanager
    def _committed(
        self, cursor: duckdb.DuckDBPyConnection, writes: Writes, outputs: Collection[Output], audit: Audit | None, location: str
    ) -> Iterator[None]:
        """``BEGIN`` … the audit, the lake versions' publishing, ``COMMIT``; all undone on failure."""
        cursor.execute("BEGIN TRANSACTION")
        try:
            yield
            if audit is not None:
                self._audit(cursor, writes, outputs, audit, location)
            writes.publish()
            try:
                cursor.execute("COMMIT")
            except duckdb.Error as exc:
                raise TaskError(f"commit failed: {engine_message(exc)}", location) from exc
        except BaseException:
            writes.discard()
            with contextlib.suppress(duckdb.Error):  # already gone: nothing was committed
                cursor.execute("ROLLBACK")
            raise

    def _audit(
        self, cursor: duckdb.DuckDBPyConnection, writes: Writes, outputs: Collection[Output], audit: Audit, location: str
    ) -> None:
        writes.complete()
        writes.show_staged()
        crash_point("audit")

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            try:
                result = cursor.execute(sql)
                return [d[0] for d in result.description or []], result.fetchall()
            except duckdb.Error as exc:
                raise TaskError(engine_message(exc), location) from exc

        try:
            audit(fetch, {output.table: output.table for output in outputs})
        except AuditFailed:
            for output in outputs:
                self._keep_candidate(cursor, writes, output)
            raise

    def _keep_candidate(self, cursor: duckdb.DuckDBPyConnection, writes: Writes, output: Output) -> None:
        """The refused version, out of the transaction that is about to be rolled back."""
        staged = writes.take(output.lake) if output.lake is not None else None
        if staged is None:
            staged = candidates.new_candidate(self.root, output.table)
            target = quote_literal(str(staged / "data.parquet"))
            try:
                cursor.execute(f"COPY (SELECT * FROM {_table_sql(output.table)}) TO {target} (FORMAT parquet)")
            except duckdb.Error:  # a check that could not run aborted the transaction: no copy
                candidates.drop_folder(staged)
                return
        candidates.keep(self.root, output.table, staged)

    def candidate_sql(self, table: str) -> str | None:
        read = candidates.read_sql(self.root, table)
        return None if read is None else f"SELECT * FROM {read}"

    def run_statements(
        self,
        statements: list[Statement],
        outputs: dict[str, Output],
        location: str,
        log: Callable[[str], None] | None = None,
        jobs: list[str] | None = None,
        audit: Audit | None = None,
    ) -> int | None:
        """Every statement in one transaction; a query whose target is a lake table is written
        to a new version, published just before the transaction commits."""
        rows: int | None = None
        with self._transaction(location, outputs.values(), audit, one_statement=len(statements) == 1) as (cursor, writes):
            for statement in statements:
                started = time.perf_counter()
                output = outputs.get(statement.target or "") if statement.kind == MATERIALIZE else None
                try:
                    if output is not None and output.lake is not None:
                        if log is not None:
                            log(f"-- {location}:{statement.line} into {output.table}\n{statement.query};")
                        count: int | None = writes.write(output, statement.query)
                    else:
                        sql = statement.query
                        if statement.kind == MATERIALIZE:
                            sql = f"CREATE OR REPLACE TABLE {_table_sql(statement.target or '')} AS {sql}"
                        if log is not None:
                            log(f"-- {location}:{statement.line}\n{sql};")
                        count = _count(cursor.execute(sql))
                except duckdb.Error as exc:
                    raise engine_error(exc, location, statement.line, verbatim=statement.verbatim) from exc
                if count is not None:
                    rows = (rows or 0) + count
                if log is not None:
                    written = "" if count is None else f", {count} rows"
                    log(f"-- done in {time.perf_counter() - started:.3f} s{written}")
        return rows

    @contextlib.contextmanager
    def python_session(
        self, outputs: list[Output], location: str, jobs: list[str] | None = None, audit: Audit | None = None
    ) -> Iterator[PythonSession]:
        with self._transaction(location, outputs, audit) as (cursor, writes):
            session = _Session(cursor, writes)
            try:
                yield session
                session.drop_temp_tables()  # a failed task's are rolled back with it
            except duckdb.Error as exc:
                raise engine_error(exc, location) from exc

    def table_info(self, names: Collection[str] | None = None) -> dict[str, dict[str, Any] | None]:
        """Every table, whatever ``names`` says: three queries describe them all."""
        cursor = self._cursor()
        info: dict[str, dict[str, Any]] = {}
        for schema, name, rows in cursor.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
            "WHERE database_name = current_database()"
        ).fetchall():
            info[_qualified(schema, name)] = {"kind": "table", "columns": [], "rows": int(rows)}
        for schema, name in cursor.execute(
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall():
            info[_qualified(schema, name)] = {"kind": "view", "columns": [], "rows": None}
        # duckdb_columns(), which information_schema.columns wraps: the same rows, 3-4x faster
        for schema, name, column, kind in cursor.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"
        ).fetchall():
            entry = info.get(_qualified(schema, name))
            if entry is not None:
                entry["columns"].append({"name": column, "type": kind})
        return dict(info)

    def attach_lake(self, tables: list[LakeTable]) -> None:
        tables = [t for t in tables if t.exists()]
        if not tables:
            return
        cursor = self._cursor()
        for table in tables:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.zone}"')
            cursor.execute(lake_view_sql(table))

    def row_writer(self) -> RowWriter:
        from daglake.engines.duckdb_append import DuckDBRowWriter

        self._wrote = True
        return DuckDBRowWriter(self._cursor(), engine_message)

    def lake_columns(self, table: LakeTable) -> list[tuple[str, str]]:
        rows = self._cursor().execute(f"DESCRIBE SELECT * FROM {table.read_sql()}").fetchall()
        return [(row[0], row[1]) for row in rows]

    def parquet_rows(self, paths: list[Path]) -> list[int]:
        """From DuckDB's own footer reader: no pyarrow to import (~0.15 s of a lake run)."""
        names = [str(path) for path in paths]
        if not names:
            return []
        if any(_GLOB.search(name) for name in names):  # DuckDB would read them as patterns
            return super().parquet_rows(paths)
        found = dict(self._cursor().execute("SELECT file_name, num_rows FROM parquet_file_metadata($files)", {"files": names}).fetchall())
        return [int(found[name]) for name in names]

    def fetch(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        self._wrote = True  # any SQL at all
        try:
            result = self._cursor().execute(sql)
            columns = [d[0] for d in result.description or []]
            rows = result.fetchmany(limit) if limit is not None else result.fetchall()
        except duckdb.Error as exc:
            raise TaskError(engine_message(exc)) from exc
        return columns, rows

    def close(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return  # never opened: the warehouse is as its stamp says
        path = self._shared
        tables: set[str] | None = None
        alone = False  # the versions read hold only when no one else wrote the file meanwhile
        if path is not None and not self.read_only:
            alone = duckdb_files.alone(path) and not self._wrote
            with contextlib.suppress(duckdb.Error):
                tables = self._list_tables(db)
        self._release(db)
        if path is not None and tables is not None and not duckdb_files.is_open(path):
            versions = dict(self._versions) if alone else None
            duckdb_stamp.write(self.root, path, self.settings.options(), tables, versions)

    def _release(self, db: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
        if self._shared is not None:
            duckdb_files.release(self._shared, db)
            self._shared = None
        else:
            db.close()


class _Session(PythonSession):
    """A Python task inside the engine's transaction: ``native`` is its DuckDB cursor."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, writes: Writes) -> None:
        self.native = cursor
        self._writes = writes
        self._temp_tables: set[str] = set()

    def query(self, sql: str, params: Any = None) -> Any:
        if params is None:
            return self.native.sql(sql)
        return self.native.execute(sql, params)

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.native.execute(sql).fetchall()
        return rows

    def temp_table(self, name: str, sql: str) -> int:
        """A temporary table of the task's cursor (its own connection: no other worker sees it)."""
        quoted = '"' + name.replace('"', '""') + '"'
        created = self.native.execute(f"CREATE OR REPLACE TEMP TABLE {quoted} AS {sql}").fetchone()
        self._temp_tables.add(quoted)
        return int(created[0]) if created else 0

    def drop_temp_tables(self) -> None:
        """The cursor serves the worker's next task: it starts without this one's tables."""
        for quoted in self._temp_tables:
            self.native.execute(f"DROP TABLE IF EXISTS temp.{quoted}")
        self._temp_tables.clear()

    def write(
        self, output: Output, data: Any, *, replace: bool = False, native: Any = None, append: bool = False
    ) -> int | None:
        if native is not None and output.lake is None:
            raise ValueError(
                f"{output.table} is a warehouse table: it is written in the task's transaction, not on another connection"
            )
        return self._writes.write_data(output, data, replace=replace, cursor=native, append=append)

    def has_table(self, output: Output) -> bool | None:
        schema, _, name = output.table.rpartition(".")
        found = self.native.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND lower(table_schema) = ? AND lower(table_name) = ?",
            [schema or "main", name],
        ).fetchone()
        return bool(found and found[0])

    def record_typer(self, schema: RecordSchema) -> RecordTyper:
        from daglake.engines.duckdb_json import DuckDBRecordTyper

        return DuckDBRecordTyper(self.native, schema)
