"""What the API shares about the warehouse: which dataset takes appends, who holds it when it
is busy, and engine values as JSON."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

from daglake.api.errors import ApiError
from daglake.lock import holder

APPENDABLE_SCHEMA = "raw"


def busy(state_dir: Path) -> ApiError:
    owner = holder(state_dir)
    who = f"run {owner['run_id']} (pid {owner['pid']})" if owner else "another process"
    return ApiError(
        409,
        "warehouse_busy",
        f"the warehouse is in use by {who}; try again when it has finished",
        run_id=owner.get("run_id") if owner else None,
    )


def json_value(value: Any) -> Any:
    """An engine's value as JSON shows it without losing anything."""
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
