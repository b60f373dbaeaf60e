"""``POST /{table}``: rows appended to ``raw.<table>`` by one writer thread.

Requests queue up; the writer takes everything queued (up to a limit) and writes it in one
transaction, one Arrow insert per table, and hands each request its stored row read back with
``RETURNING``. Names are checked against the warehouse's information_schema and values are
bound (as Arrow strings that DuckDB casts to the column types), never spliced into SQL. A batch
that fails is retried row by row, so one bad value fails one request. The writer holds the
warehouse only while rows keep coming, sharing the database of a run in progress.
"""

from __future__ import annotations

import contextlib
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
CONFLICT_RETRIES = 5
APPEND_VIEW = "daglake_appended_rows"


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
    def __init__(self, warehouse: Path, *, batch_limit: int = 2000, linger: float = 0.05) -> None:
        self.warehouse = warehouse
        self.batch_limit = batch_limit
        self.linger = linger  # seconds the file stays open after the last row, for the next one
        self._queue: queue.SimpleQueue[Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="daglake-appender", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread and let go of the warehouse."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join()

    def submit(self, table: str, values: Sequence[tuple[str, str]]) -> Future[dict[str, Any]]:
        if self._stopping.is_set():
            raise ApiError(503, "shutting_down", "the server is shutting down")
        item = Append(table, values)
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
                cursor = open_cursor(self.warehouse, read_only=False)
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

    def _append(self, cursor: duckdb.DuckDBPyConnection, batch: list[Append]) -> None:
        """One transaction for the batch; when it fails, each append alone."""
        for attempt in range(CONFLICT_RETRIES + 1):
            cursor.execute("BEGIN TRANSACTION")
            try:
                stored = self._insert_all(cursor, batch)
                cursor.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(cursor)
                if len(batch) > 1:
                    for item in batch:
                        if not item.future.done():
                            self._append(cursor, [item])
                    return
                if isinstance(exc, duckdb.TransactionException) and attempt < CONFLICT_RETRIES:
                    continue  # a run replaced the table meanwhile: check the names again
                _fail(batch, _db_error(exc))
                return
            except BaseException:
                _rollback(cursor)
                raise
            for item, row in stored:
                item.future.set_result(row)
            return

    def _insert_all(self, cursor: duckdb.DuckDBPyConnection, batch: list[Append]) -> list[tuple[Append, dict[str, Any]]]:
        inserts: dict[str, _Insert | None] = {}
        stored: list[tuple[Append, dict[str, Any]]] = []
        for item in batch:
            if item.future.done():
                continue
            key = item.table.lower()
            if key not in inserts:
                found = raw_columns(cursor, item.table)
                inserts[key] = _Insert(found[0], found[1]) if found else None
            insert = inserts[key]
            if insert is None:
                raise_for = ApiError(
                    404, "unknown_table", f"no table {APPENDABLE_SCHEMA}.{item.table} to append to",
                    tables=raw_tables(cursor),
                )
                item.future.set_exception(raise_for)
                continue
            try:
                insert.rows.append((item, _checked(item, insert)))
            except ApiError as exc:
                item.future.set_exception(exc)
        for insert in inserts.values():
            if insert is not None and insert.rows:
                stored.extend(_insert(cursor, insert))
        return stored


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


def _insert(cursor: duckdb.DuckDBPyConnection, insert: _Insert) -> list[tuple[Append, dict[str, Any]]]:
    used = [c.name for c in insert.columns if any(c.name in values for _, values in insert.rows)]
    data = pa.table({name: pa.array([v.get(name) for _, v in insert.rows], pa.string()) for name in used})
    view = APPEND_VIEW
    cursor.register(view, data)
    try:
        result = cursor.execute(
            f"INSERT INTO {quoted(APPENDABLE_SCHEMA, insert.table)} ({', '.join(quoted(n) for n in used)}) "
            f"SELECT * FROM {view} RETURNING *"
        )
        names = [d[0] for d in result.description or []]
        rows = result.fetchall()
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses; rollback clears it
            cursor.unregister(view)
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


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already rolled back
        cursor.execute("ROLLBACK")
    with contextlib.suppress(duckdb.Error):
        cursor.unregister(APPEND_VIEW)


def _fail(batch: list[Append], error: ApiError) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)
