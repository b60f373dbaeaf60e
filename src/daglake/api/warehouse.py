"""The API's access to the DuckDB warehouse: through the process's shared database (so a run,
appends and reads coexist), never holding the file while idle (so a CLI run can open it)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from daglake.api.errors import ApiError
from daglake.engines import duckdb_files
from daglake.lake.tables import quote_identifier
from daglake.lock import holder

APPENDABLE_SCHEMA = "raw"
BUSY_WAIT = 2.0  # seconds to wait for another process to let go of the file


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def open_cursor(path: Path, state_dir: Path, *, read_only: bool, wait: float = BUSY_WAIT) -> duckdb.DuckDBPyConnection:
    """A cursor on the warehouse (give it back with ``duckdb_files.release``); 409
    ``warehouse_busy`` naming the run that holds the project's lock when another process
    keeps the file past ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            return duckdb_files.connect(path, read_only=read_only)
        except duckdb.IOException:
            if time.monotonic() >= deadline:
                raise busy(state_dir) from None
        time.sleep(delay)  # another process's lock: nothing to wait on but time
        delay = min(delay * 2, 0.2)


def busy(state_dir: Path) -> ApiError:
    owner = holder(state_dir)
    who = f"run {owner['run_id']} (pid {owner['pid']})" if owner else "another process"
    return ApiError(
        409,
        "warehouse_busy",
        f"the warehouse is in use by {who}; try again when it has finished",
        run_id=owner.get("run_id") if owner else None,
    )


def raw_columns(cursor: duckdb.DuckDBPyConnection, table: str) -> tuple[str, list[Column]] | None:
    """The catalogue name and columns of the base table ``raw.<table>``, matched without case."""
    rows = cursor.execute(
        "SELECT c.table_name, c.column_name, c.data_type "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "  ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema "
        "  AND t.table_name = c.table_name "
        "WHERE c.table_catalog = current_database() AND c.table_schema = $schema "
        "  AND t.table_type = 'BASE TABLE' AND lower(c.table_name) = lower($table) "
        "ORDER BY c.ordinal_position",
        {"schema": APPENDABLE_SCHEMA, "table": table},
    ).fetchall()
    if not rows:
        return None
    return rows[0][0], [Column(name, kind) for _, name, kind in rows]


def raw_tables(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cursor.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = $schema AND table_type = 'BASE TABLE' ORDER BY table_name",
        {"schema": APPENDABLE_SCHEMA},
    ).fetchall()
    return [row[0] for row in rows]


def quoted(*parts: str) -> str:
    """An identifier from the catalogue, quoted for SQL (never a name a client sent)."""
    return ".".join(quote_identifier(part) for part in parts)


def json_value(value: Any) -> Any:
    """A DuckDB value as JSON shows it without losing anything."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)
