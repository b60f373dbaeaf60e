"""Run a check through any engine's ``fetch`` and keep what a person needs to act on it: how many
rows fail and a few of them, as JSON-friendly values for the state store, API and UI."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from daglake.checks.queries import check_sql
from daglake.checks.spec import CheckSpec

SAMPLE_SIZE = 5
_FAILING = "_daglake_failing"

Fetch = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@dataclass
class CheckResult:
    """The outcome of one check in one run; ``error`` means it could not run, which fails it."""

    name: str
    table: str
    kind: str
    severity: str
    passed: bool
    failing: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def blocks(self) -> bool:
        """A failed error-severity check fails the run and blocks what depends on the table."""
        return not self.passed and self.severity == "error"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_check(
    spec: CheckSpec,
    fetch: Fetch,
    dialect: str = "duckdb",
    *,
    now: datetime | None = None,
    tables: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run ``spec``: one COUNT(*) over the failing rows, then a sample of them only when some fail.

    Any exception from building or running the query (a missing column, a type error) makes a
    failed result carrying the message: the engine knows best what is wrong with the data."""
    result = CheckResult(spec.name, spec.table, spec.kind, spec.severity, passed=False, failing=0)
    try:
        sql = check_sql(spec, dialect, now=now, tables=tables)
        if spec.is_aggregate:
            columns, rows = fetch(sql)
            result.failing = 1 if rows else 0
        else:
            _, counted = fetch(f"SELECT COUNT(*) FROM (\n{sql}\n) AS {_FAILING}")
            result.failing = int(counted[0][0])
            columns, rows = (
                fetch(f"SELECT * FROM (\n{sql}\n) AS {_FAILING} LIMIT {SAMPLE_SIZE}")
                if result.failing
                else ([], [])
            )
    except Exception as exc:  # any engine's error: the check failed to run, the run goes on
        from daglake.errors import TaskError

        result.error = (exc.message if isinstance(exc, TaskError) else str(exc)).strip() or type(exc).__name__
        return result
    result.passed = result.failing == 0
    result.sample = [_row(columns, row) for row in rows[:SAMPLE_SIZE]]
    return result


def _row(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a dict; a repeated column name (``a.id, b.id``) gets a numbered suffix."""
    found: dict[str, Any] = {}
    for column, value in zip(columns, row, strict=False):
        name, number = column, 1
        while name in found:
            number += 1
            name = f"{column}_{number}"
        found[name] = json_value(value)
    return found


def json_value(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes faithfully (dates as ISO text, NaN as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_value(v) for v in value]
    return str(value)
