"""``POST /{table}``: rows appended to ``raw.<table>`` by one writer thread.

Requests queue up; the writer takes everything queued (up to a limit) and writes it with one
INSERT per table (one transaction each), and hands each request its stored row read back with
``RETURNING``. Names are checked against the warehouse's information_schema and values are
bound as strings that DuckDB casts to the column types, never spliced into SQL. A statement
that fails is retried row by row, so one bad value fails one request. The writer holds the
warehouse only while rows keep coming, sharing the database of a run in progress.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from daglake.api.errors import ApiError
from daglake.api.warehouse import (
    APPENDABLE_SCHEMA,
    Column,
    json_value,
    open_cursor,
    quoted,
    raw_columns,
    raw_tables,
)
from daglake.engines import duckdb_files
from daglake.engines.duckdb import engine_message

log = logging.getLogger("daglake.api")
BAD_VALUE = (duckdb.ConversionException, duckdb.DataError, duckdb.ConstraintException, duckdb.InvalidInputException)
STALE = (duckdb.TransactionException, duckdb.CatalogException, duckdb.BinderException)
CONFLICT_RETRIES = 5


@dataclass
class Append:
    table: str
    values: Sequence[tuple[str, str]]  # (column, value) as the client sent them
    future: Future[dict[str, Any]] = field(default_factory=Future)


@dataclass
class _Insert:
    """Checked appends to one table: its catalogue name and columns, and each row's values."""

    table: str
    columns: list[Column]
    rows: list[tuple[Append, dict[str, str]]] = field(default_factory=list)


class Appender:
    def __init__(self, warehouse: Path, state_dir: Path, *, batch_limit: int = 500, linger: float = 0.05) -> None:
        self.warehouse = warehouse
        self.state_dir = state_dir  # whose run lock names who holds the warehouse
        self.batch_limit = batch_limit
        self.linger = linger  # seconds the file stays open after the last row, for the next one
        self._queue: queue.SimpleQueue[Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="daglake-appender", daemon=True)
        self._stopping = threading.Event()
        self._accepting = threading.Lock()
        self._schemas: dict[str, tuple[str, list[Column]]] = {}  # writer thread only

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread and let go of the warehouse."""
        with self._accepting:
            self._stopping.set()
            self._queue.put(None)  # nothing is queued behind this marker
        if self._thread.is_alive():
            self._thread.join()

    def submit(self, table: str, values: Sequence[tuple[str, str]]) -> Future[dict[str, Any]]:
        item = Append(table, values)
        with self._accepting:
            if self._stopping.is_set():
                raise ApiError(503, "shutting_down", "the server is shutting down")
            self._queue.put(item)
        return item.future

    def _loop(self) -> None:
        cursor: duckdb.DuckDBPyConnection | None = None
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.linger if cursor is not None else None)
                except queue.Empty:
                    self._close(cursor)
                    cursor = None
                    continue
                if item is None:
                    return
                batch = [item]
                while len(batch) < self.batch_limit:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(more)
                cursor = self._write(cursor, batch)
        finally:
            self._close(cursor)

    def _write(self, cursor: duckdb.DuckDBPyConnection | None, batch: list[Append]) -> duckdb.DuckDBPyConnection | None:
        try:
            if cursor is None:
                if not self.warehouse.exists():
                    raise ApiError(404, "unknown_table", "the warehouse is empty: run the project first", tables=[])
                cursor = open_cursor(self.warehouse, self.state_dir, read_only=False)
            self._append(cursor, batch)
        except ApiError as exc:
            _fail(batch, exc)
        except BaseException as exc:
            log.error("appending %d rows failed", len(batch), exc_info=exc)
            _fail(batch, ApiError(500, "internal_error", "appending failed (details in the server log)"))
            self._close(cursor)
            return None
        return cursor

    def _close(self, cursor: duckdb.DuckDBPyConnection | None) -> None:
        if cursor is not None:
            duckdb_files.release(self.warehouse, cursor)

    def _append(self, cursor: duckdb.DuckDBPyConnection, batch: list[Append], *, alone: bool = False) -> None:
        """One INSERT statement (one transaction) per table for the batch; when one fails,
        each of its appends alone, so the error goes to the request that caused it."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                for insert in self._inserts(cursor, batch):
                    for item, row in _insert(cursor, insert, precise=alone):
                        item.future.set_result(row)
                return
            except duckdb.Error as exc:
                if isinstance(exc, STALE) and attempt < CONFLICT_RETRIES:
                    self._schemas.clear()  # a run replaced a table meanwhile: look again
                    continue
                pending = [item for item in batch if not item.future.done()]
                if not alone:
                    for item in pending:
                        self._append(cursor, [item], alone=True)
                    return
                _fail(pending, _db_error(exc))
                return

    def _schema(self, cursor: duckdb.DuckDBPyConnection, table: str, *, fresh: bool = False) -> _Insert | None:
        """The table's catalogue name and columns, from information_schema when not cached.
        A cached schema is only ever too old when a run replaced the table: the insert then
        fails (STALE) and is retried with the cache cleared."""
        key = table.lower()
        if fresh or key not in self._schemas:
            found = raw_columns(cursor, table)
            if found is None:
                self._schemas.pop(key, None)
                return None
            self._schemas[key] = found
        name, columns = self._schemas[key]
        return _Insert(name, columns)

    def _inserts(self, cursor: duckdb.DuckDBPyConnection, batch: list[Append]) -> list[_Insert]:
        """The batch's pending appends grouped by table, checked; the others answered 404/422."""
        inserts: dict[str, _Insert] = {}
        for item in batch:
            if item.future.done():
                continue
            insert = inserts.get(item.table.lower()) or self._schema(cursor, item.table)
            if insert is None:
                message = f"no table {APPENDABLE_SCHEMA}.{item.table} to append to"
                item.future.set_exception(ApiError(404, "unknown_table", message, tables=raw_tables(cursor)))
                continue
            inserts[item.table.lower()] = insert
            try:
                values = _checked(item, insert)
            except ApiError as exc:
                fresh = self._schema(cursor, item.table, fresh=True) if exc.code == "unknown_column" else None
                if fresh is None:
                    item.future.set_exception(exc)
                    continue
                fresh.rows.extend(insert.rows)  # a run may have added the column: check again
                insert = inserts[item.table.lower()] = fresh
                try:
                    values = _checked(item, insert)
                except ApiError as again:
                    item.future.set_exception(again)
                    continue
            insert.rows.append((item, values))
        return [insert for insert in inserts.values() if insert.rows]


def _checked(item: Append, insert: _Insert) -> dict[str, str]:
    """The append's values by catalogue column name; 422 for what no column takes."""
    by_name = {c.name.lower(): c.name for c in insert.columns}
    valid = [c.name for c in insert.columns]
    if not item.values:
        raise ApiError(422, "no_values", f"give at least one column of {APPENDABLE_SCHEMA}.{insert.table}", columns=valid)
    values: dict[str, str] = {}
    for given, value in item.values:
        column = by_name.get(given.lower())
        if column is None:
            raise ApiError(
                422, "unknown_column", f"{APPENDABLE_SCHEMA}.{insert.table} has no column {given!r}", columns=valid
            )
        if column in values:
            raise ApiError(422, "duplicate_column", f"column {column!r} is given more than once", columns=valid)
        values[column] = value
    return values


def _insert(cursor: duckdb.DuckDBPyConnection, insert: _Insert, *, precise: bool) -> list[tuple[Append, dict[str, Any]]]:
    """Insert the rows, values bound as strings that DuckDB casts to the column types, and
    read them back. A VALUES list costs the least; an Arrow table (``precise``) makes a
    conversion error name its column, for the append that failed alone."""
    used = [c.name for c in insert.columns if any(c.name in values for _, values in insert.rows)]
    target = f"{quoted(APPENDABLE_SCHEMA, insert.table)} ({', '.join(quoted(n) for n in used)})"
    if precise:
        daglake_api_appended_rows = pa.table(  # noqa: F841 - read by DuckDB by name (replacement scan)
            {name: pa.array([v.get(name) for _, v in insert.rows], pa.string()) for name in used}
        )
        result = cursor.execute(f"INSERT INTO {target} SELECT * FROM daglake_api_appended_rows RETURNING *")
    else:
        row = "(" + ", ".join("?" for _ in used) + ")"
        values = [v.get(name) for _, v in insert.rows for name in used]
        result = cursor.execute(f"INSERT INTO {target} VALUES {', '.join([row] * len(insert.rows))} RETURNING *", values)
    names = [d[0] for d in result.description or []]
    rows = result.fetchall()
    if len(rows) != len(insert.rows):
        raise AssertionError(f"inserted {len(insert.rows)} rows, {len(rows)} came back")
    return [
        (item, {name: json_value(value) for name, value in zip(names, row, strict=True)})
        for (item, _), row in zip(insert.rows, rows, strict=True)
    ]


def _db_error(exc: duckdb.Error) -> ApiError:
    message = engine_message(exc)
    if isinstance(exc, BAD_VALUE):
        return ApiError(422, "invalid_value", message)
    if isinstance(exc, duckdb.TransactionException):
        return ApiError(409, "write_conflict", f"the table kept changing during the append: {message}")
    log.error("append failed: %s", message)
    return ApiError(500, "warehouse_error", message)


def _fail(batch: list[Append], error: ApiError) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)
