"""``POST /{table}``: rows appended to ``raw.<table>`` by one writer thread.

Requests queue up; the writer takes everything queued (up to a limit) and writes it with one
insert per table (one transaction each) through the engine's
:class:`~daglake.engines.base.RowWriter`, and hands each request its stored row. Names are
checked against the engine's catalogue and values checked against their column's type
(:mod:`daglake.api.values`: stored exactly or refused) and bound as strings the engine casts
to the column types, never spliced into SQL. An insert that fails is retried row by row, so one bad
value fails one request. The writer holds the warehouse only while rows keep coming, sharing
the database of a run in progress.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.api.errors import ApiError
from daglake.api.warehouse import APPENDABLE_SCHEMA, busy, json_value
from daglake.engines.base import AppendError, Column, Engine, RowWriter
from daglake.errors import EnvironmentProblem, WarehouseBusy

if TYPE_CHECKING:
    from daglake.engine_settings import EngineSettings
    from daglake.state import StateStore

log = logging.getLogger("daglake.api")
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


@dataclass
class _Open:
    """The engine while rows keep coming, and its row writer."""

    engine: Engine
    writer: RowWriter


class Appender:
    def __init__(
        self, settings: EngineSettings, root: Path, state_dir: Path, *, batch_limit: int = 500, linger: float = 0.05
    ) -> None:
        self.settings = settings
        self.root = root
        self.state_dir = state_dir  # whose run lock names who holds the warehouse
        self.batch_limit = batch_limit
        self.linger = linger  # seconds the file stays open after the last row, for the next one
        self._queue: queue.SimpleQueue[Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="daglake-appender", daemon=True)
        self._stopping = threading.Event()
        self._accepting = threading.Lock()
        self._schemas: dict[str, tuple[str, list[Column]]] = {}  # writer thread only
        self._versions: StateStore | None = None  # the state, while rows keep coming
        self._project = ""

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
        opened: _Open | None = None
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.linger if opened is not None else None)
                except queue.Empty:
                    self._close(opened)
                    opened = None
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
                opened = self._write(opened, batch)
        finally:
            self._close(opened)

    def _write(self, opened: _Open | None, batch: list[Append]) -> _Open | None:
        try:
            if opened is None:
                opened = self._open()
            self._append(opened.writer, batch)
        except ApiError as exc:
            _fail(batch, exc)
        except BaseException as exc:
            log.error("appending %d rows failed", len(batch), exc_info=exc)
            _fail(batch, ApiError(500, "internal_error", "appending failed (details in the server log)"))
            self._close(opened)
            return None
        return opened

    def _open(self) -> _Open:
        from daglake.engines import create_engine, nothing_built

        if nothing_built(self.settings, self.root):
            raise ApiError(404, "unknown_table", "the warehouse is empty: run the project first", tables=[])
        try:
            engine = create_engine(self.settings, self.root)
        except WarehouseBusy:
            raise busy(self.state_dir) from None
        try:
            return _Open(engine, engine.row_writer())
        except BaseException:
            engine.close()
            raise

    def _close(self, opened: _Open | None) -> None:
        if opened is not None:
            opened.engine.close()
        if self._versions is not None:
            self._versions.close()
            self._versions = None

    def _changed(self, table: str) -> None:
        """One more change of ``raw.<table>`` in the state: the next run rebuilds its readers
        (only what changed runs), and only them."""
        from daglake.config import load_config
        from daglake.state import StateStore, state_url
        from daglake.state.builds import bump_versions

        if self._versions is None:
            config = load_config(self.root, [])
            self._project = config.name
            self._versions = StateStore(state_url(self.root, config.state_url))  # refused: EnvironmentProblem, a 503
        bump_versions(self._versions, self._project, [f"{APPENDABLE_SCHEMA}.{table}"])

    def _append(self, writer: RowWriter, batch: list[Append], *, alone: bool = False) -> None:
        """One insert (one transaction) per table for the batch; when one fails, each of its
        appends alone, so the error goes to the request that caused it."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                for insert in self._inserts(writer, batch):
                    stored = _insert(writer, insert, precise=alone)
                    try:
                        self._changed(insert.table)  # before answering: a run started next sees it
                    except EnvironmentProblem as exc:  # the state's disk is full: say what happened
                        refused = ApiError(
                            503, exc.code, f"{exc}; the row was stored, but the next run will not know to rebuild the "
                            f"readers of {APPENDABLE_SCHEMA}.{insert.table} (use daglake run --force)", stored=True,
                        )
                        _fail([item for item, _ in stored], refused)
                        continue
                    for item, row in stored:
                        item.future.set_result(row)
                return
            except AppendError as exc:
                if exc.retry and attempt < CONFLICT_RETRIES:
                    self._schemas.clear()  # a run replaced a table meanwhile: look again
                    continue
                pending = [item for item in batch if not item.future.done()]
                if not alone:
                    for item in pending:
                        self._append(writer, [item], alone=True)
                    return
                _fail(pending, _append_error(exc))
                return

    def _schema(self, writer: RowWriter, table: str, *, fresh: bool = False) -> _Insert | None:
        """The table's catalogue name and columns, from the engine when not cached.
        A cached schema is only ever too old when a run replaced the table: the insert then
        fails (STALE) and is retried with the cache cleared."""
        key = table.lower()
        if fresh or key not in self._schemas:
            found = writer.columns(APPENDABLE_SCHEMA, table)
            if found is None:
                self._schemas.pop(key, None)
                return None
            self._schemas[key] = found
        name, columns = self._schemas[key]
        return _Insert(name, columns)

    def _inserts(self, writer: RowWriter, batch: list[Append]) -> list[_Insert]:
        """The batch's pending appends grouped by table, checked; the others answered 404/422."""
        inserts: dict[str, _Insert] = {}
        for item in batch:
            if item.future.done():
                continue
            insert = inserts.get(item.table.lower()) or self._schema(writer, item.table)
            if insert is None:
                message = f"no table {APPENDABLE_SCHEMA}.{item.table} to append to"
                item.future.set_exception(ApiError(404, "unknown_table", message, tables=writer.tables(APPENDABLE_SCHEMA)))
                continue
            inserts[item.table.lower()] = insert
            try:
                values = _checked(item, insert, self.settings.engine)
            except ApiError as exc:
                fresh = self._schema(writer, item.table, fresh=True) if exc.code == "unknown_column" else None
                if fresh is None:
                    item.future.set_exception(exc)
                    continue
                fresh.rows.extend(insert.rows)  # a run may have added the column: check again
                insert = inserts[item.table.lower()] = fresh
                try:
                    values = _checked(item, insert, self.settings.engine)
                except ApiError as again:
                    item.future.set_exception(again)
                    continue
            insert.rows.append((item, values))
        return [insert for insert in inserts.values() if insert.rows]


def _checked(item: Append, insert: _Insert, engine: str) -> dict[str, str]:
    """The append's values by catalogue column name, each spelt as the engine reads it back
    unchanged; 422 for what no column takes."""
    from daglake.api.values import checked_value

    by_name = {c.name.lower(): c.name for c in insert.columns}
    types = {c.name: c.type for c in insert.columns}
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
        values[column] = checked_value(engine, column, types[column], value)
    return values


def _insert(writer: RowWriter, insert: _Insert, *, precise: bool) -> list[tuple[Append, dict[str, Any]]]:
    """Insert the rows and read them back as JSON values."""
    used = [c.name for c in insert.columns if any(c.name in values for _, values in insert.rows)]
    stored = writer.insert(APPENDABLE_SCHEMA, insert.table, used, [values for _, values in insert.rows], precise=precise)
    if len(stored) != len(insert.rows):
        raise AssertionError(f"inserted {len(insert.rows)} rows, {len(stored)} came back")
    return [
        (item, {name: json_value(value) for name, value in row.items()})
        for (item, _), row in zip(insert.rows, stored, strict=True)
    ]


def _append_error(exc: AppendError) -> ApiError:
    if exc.kind == "invalid_value":
        return ApiError(422, "invalid_value", exc.message)
    if exc.kind == "conflict":
        return ApiError(409, "write_conflict", f"the table kept changing during the append: {exc.message}")
    log.error("append failed: %s", exc.message)
    return ApiError(500, "warehouse_error", exc.message)


def _fail(batch: list[Append], error: ApiError) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)
